"""The investigation graph: state, builders, registries, settings and runtime dependencies."""
