"""The benchmark suite: every performance figure in the README comes from here.

    python -m benchmarks [--quick] [--only inference,e2e,train,quality]

See benchmarks/__main__.py for the sections and benchmarks/results/RESULTS.md for the latest run.
"""
