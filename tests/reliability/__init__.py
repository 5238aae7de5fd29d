"""The reliability suite (issue 8); see README.md. A package, so that its conftest does not shadow tests/conftest.py."""
