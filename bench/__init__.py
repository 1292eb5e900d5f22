"""Benchmarks for trialproof: ``make bench`` or ``python -m bench.run [--only core] [--quick]``.

``bench.harness`` runs each measured step in a fresh process (wall time and
peak resident memory), ``bench.core`` holds the Merkle/log/record-proof suite, and
``bench.run`` runs the suites and writes ``bench/out/results-<suite>.json``
and the tables in ``docs/benchmarks.md``.
"""
