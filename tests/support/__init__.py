"""Helpers that start the project's real processes for integration tests."""
