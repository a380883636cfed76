"""The collector: samples its host, takes pushed and OTLP metrics, streams them over gRPC."""
