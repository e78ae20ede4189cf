"""The benchmark suite: every measured figure in the README and docs/ comes from here.

    make bench                                  # the full run, the one that updates the docs
    python -m pix2pix_edge.benchmarks --quick   # from any folder (installed with the package)
    python -m benchmarks [--quick] [--only SECTIONS]   # the same, in the checkout's root

benchmarks/__main__.py lists the sections; benchmarks/report.py turns the JSON results into
benchmarks/results/RESULTS.md, the README's Performance summary and the tables of docs/.
"""
