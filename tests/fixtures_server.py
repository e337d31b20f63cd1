"""Fixtures for server tests: a real greenflame serve on a free port."""
