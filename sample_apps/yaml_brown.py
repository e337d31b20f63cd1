"""Lambda handler that parses its feature-flag document with ``yaml.safe_load`` on every call.

``safe_load`` reads, scans, parses and composes the YAML in Python. Triggers
``yaml-pure-python``; ``yaml_green`` is the fixed twin. (The document arrives with each event,
as a config service's response would.)

    greenflame lambda invoke greenflame.sample_apps.yaml_brown.lambda_handler --invocations 30 --out yaml_brown.json
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

from ._feature_flags import FLAGS_YAML, enabled_for

# PyYAML ships no type hints (types-PyYAML is a separate package): typed as Any here.
yaml: Any = importlib.import_module("yaml")


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """The flags enabled for the user of ``event``."""
    document = yaml.safe_load(event.get("flags", FLAGS_YAML))
    return {"enabled": enabled_for(document, event.get("country", "DE"), event.get("plan", "pro"))}
