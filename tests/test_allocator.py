"""tune_allocator: applied on glibc, harmless elsewhere, never at import; NumPy's huge pages off with it."""
import platform
import subprocess
import sys

import pytest

# NumPy's madvise switch, read in a child process (np.core before NumPy 2)
_MADVISE = "(getattr(np, '_core', None) or np.core).multiarray._get_madvise_hugepage()"


def test_not_applied_on_import():
    r = subprocess.run([sys.executable, "-c", "import minigrad.allocator as a, minigrad; print(a.allocator_tuning())"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "None"


def test_numpy_huge_pages_untouched_on_import():
    r = subprocess.run([sys.executable, "-c", f"import numpy as np\nbefore = {_MADVISE}\nimport minigrad\n"
                        f"print(before == {_MADVISE})"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr


# AnonHugePages (kB) of the mappings holding a fresh, written 16 MiB array, after tune_allocator(ARGS)
_PAGES = f"""
import numpy as np, minigrad
minigrad.tune_allocator(ARGS)
a = np.ones(1 << 21)
lo, kb, hit = a.ctypes.data, 0, False
for line in open("/proc/self/smaps"):
    head = line.split()[0]
    if "-" in head and ":" not in head:
        start, end = (int(v, 16) for v in head.split("-"))
        hit = start < lo + a.nbytes and end > lo
    elif hit and head == "AnonHugePages:":
        kb += int(line.split()[1])
print({_MADVISE}, kb)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="NumPy madvises huge pages on Linux only")
@pytest.mark.parametrize("args,want", [("", "False"), ("numpy_huge_pages=True", "True")])
def test_tune_allocator_sets_numpy_huge_pages(args, want):
    r = subprocess.run([sys.executable, "-c", _PAGES.replace("ARGS", args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    madvise, kb = r.stdout.split()
    assert madvise == want
    try:
        thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        thp = ""
    if want == "False" and "[madvise]" in thp:  # NOTE: only a madvise asks for them here ("[always]" gives them anyway)
        assert kb == "0", f"{kb} kB of huge pages under a 16 MiB array"


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
