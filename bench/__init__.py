"""Fan-out benchmark: the bridge against naive and broadcast() baselines.

`python -m bench` (or `make bench`) runs bench.run; bench.load is the load
client process and bench.baselines the baseline servers.
"""
