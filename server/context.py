"""Access to the current app's settings from request code."""

from __future__ import annotations

from flask import current_app

from .settings import Settings

SETTINGS_KEY = "GREENFLAME_SETTINGS"


def get_settings() -> Settings:
    """The settings the current app was created with."""
    settings: Settings = current_app.config[SETTINGS_KEY]
    return settings
