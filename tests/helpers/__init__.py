"""Shared builders and reference forms for the tests (not test files themselves)."""
