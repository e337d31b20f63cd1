"""Fixtures for agent tests."""
