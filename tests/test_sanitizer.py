"""The sanitized build (MINIGRAD_SANITIZE=1) must catch a planted fault, or it is no check at all.

The probe (minigrad/_ext/_sanitize_probe.pyx, test-only) indexes a raw pointer with a size the caller gives, the way
the kernels do. Each faulty call runs in its own subprocess, with the sanitizer runtime preloaded, and must die with
the sanitizer's report; the honest call must pass. On a normal build these are skipped, unless
MINIGRAD_EXPECT_SANITIZE=1 (set by .ci/run) says the build should have been sanitized: then they fail.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

try:
    from minigrad import _build_config
except ImportError:  # extensions never built
    _build_config = None

SANITIZED = bool(getattr(_build_config, "SANITIZE", False))
EXPECTED = os.environ.get("MINIGRAD_EXPECT_SANITIZE", "") not in ("", "0")


@pytest.fixture
def sanitized():
    if not SANITIZED:
        if EXPECTED:
            pytest.fail("MINIGRAD_EXPECT_SANITIZE=1 but minigrad._build_config.SANITIZE is not True: "
                        "rebuild with MINIGRAD_SANITIZE=1 python setup.py build_ext --inplace --force")
        pytest.skip("not a sanitized build")


def _run_probe(code):
    env = dict(os.environ)
    preload = [_build_config.SANITIZER_RUNTIME] + [p for p in env.get("LD_PRELOAD", "").split() if p]
    env["LD_PRELOAD"] = " ".join(dict.fromkeys(preload))
    env["ASAN_OPTIONS"] = "detect_leaks=0"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1"
    code = "import numpy as np\nfrom minigrad._ext import _sanitize_probe as probe\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_honest_size_sums_the_buffer():
    probe = pytest.importorskip("minigrad._ext._sanitize_probe", reason="extensions not built")
    x = np.arange(1.0, 6.0)
    assert probe.sum_first(x, 5) == 15.0
    assert probe.shift_left(1, 3) == 8


def test_honest_size_passes_under_the_sanitizer(sanitized):
    r = _run_probe("""
        assert probe.sum_first(np.arange(1.0, 6.0), 5) == 15.0
        assert probe.shift_left(1, 3) == 8
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def test_reading_past_the_end_is_a_heap_buffer_overflow(sanitized):
    r = _run_probe("""
        print(probe.sum_first(np.arange(1.0, 6.0), 7))  # 2 doubles past a 5-double buffer
    """)
    assert r.returncode != 0, f"the lying size went unnoticed: {r.stdout!r}"
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in r.stderr, r.stderr[-3000:]
    assert "sum_first" in r.stderr  # the report points into the probe


def test_undefined_behaviour_aborts(sanitized):
    r = _run_probe("""
        print(probe.shift_left(1, 40))
    """)
    assert r.returncode != 0, f"the UB went unnoticed: {r.stdout!r}"
    assert "runtime error: shift exponent 40 is too large" in r.stderr, r.stderr[-3000:]
