"""The benchmark harness: proxynow side by side with Traefik and nginx (see docs/benchmarks.md).

Run `python bench/run.py --help`. Modules: procs (processes and /proc), configs (server
configuration files), loadgen (wrk), scenarios (what is measured and the targets), churn
(config changes during a run), harness (one measurement), report (medians, ratios, markdown).
"""
