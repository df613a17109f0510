"""What every ``minigrad`` command's parser shares: one-line usage errors, and help that shows defaults."""
import argparse

__all__ = ["ArgumentParser", "HelpFormatter"]


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr (and exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks; appends ``(default: X)`` to an option's help unless the help already
    speaks of its default or there is none to show (None, False, "")."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings or "default" in text or action.default in (None, False, "", argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"
