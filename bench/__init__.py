"""
Benchmarks of twisted_dtls against baselines measured in the same run
(issue 6). Run with C{python -m bench}; see docs/bench.md.
"""
