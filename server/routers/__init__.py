"""One router per resource: alerts, events (SSE), history, health."""
