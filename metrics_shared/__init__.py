"""What the collector and the bridge processes share: addresses, command-line
options read from flags and environment variables, the ready file, stop signals.

It lives outside `bridge/` and `collector/` so that neither imports the other,
and outside `metrics_bridge/`, which `make proto` regenerates."""
