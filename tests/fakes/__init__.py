"""Fakes of external services for the tests (reusable by soak tests)."""
