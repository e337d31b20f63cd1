"""Shared fixtures: each area keeps its own in a plugin module beside this file."""

pytest_plugins = ["fixtures_agent", "fixtures_server", "fixtures_browser"]
