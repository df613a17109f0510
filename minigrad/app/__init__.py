"""The application layer, on top of the library: the training loop (``train``, behind ``minigrad train``), the
model zoo (``models``), checkpoints (``checkpoint``) and the benchmark report (``bench_report``, behind
``minigrad bench``). The command line (``minigrad.cli``) and the experiments (``minigrad.experiments``) sit above
it. ``minigrad.checkpoint`` and ``minigrad.models`` stay importable under their old names.
"""
