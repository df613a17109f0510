"""tune_allocator: applied on glibc, harmless elsewhere, never at import."""
import platform
import subprocess
import sys


def test_not_applied_on_import():
    r = subprocess.run([sys.executable, "-c", "import minigrad.allocator as a, minigrad; print(a.allocator_tuning())"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "None"


def test_tune_allocator_applies_on_glibc():
    r = subprocess.run([sys.executable, "-c", "import minigrad as m, minigrad.allocator as a, numpy as np\n"
                        "ok = m.tune_allocator()\n"
                        "x = np.ones(1 << 22); del x\n"
                        "print(ok, a.allocator_tuning())"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ok, _, rest = r.stdout.strip().partition(" ")
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert ok == "True" and rest == f"({32 << 20}, {256 << 20})"
    else:
        assert ok in ("True", "False")


def test_cli_applies_it():
    r = subprocess.run([sys.executable, "-c", "import minigrad.cli as c, minigrad.allocator as a\n"
                        "c.main([])\n"  # no subcommand: prints help, returns 2, after tuning
                        "print(a.allocator_tuning() is not None)"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    on_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert r.stdout.strip().splitlines()[-1] == str(on_glibc)
