"""The collector: samples its host with psutil, takes pushed and OTLP metrics, streams snapshots and updates over gRPC."""
