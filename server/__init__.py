"""The service around the graph: HTTP API, SSE, history, the CLI and the fixture cluster."""
