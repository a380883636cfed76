"""The bridge: follows collectors over gRPC and serves their channels to browsers over WebSocket."""
