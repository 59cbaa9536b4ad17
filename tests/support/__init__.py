"""Helpers only the tests use (the package keeps no test-only code)."""
