"""The fixed twin of ``yaml_brown``: libyaml's ``CSafeLoader`` parses the document in C.

Falls back to the pure-Python ``SafeLoader`` only where PyYAML was built without libyaml (its
wheels include it). Must not trigger ``yaml-pure-python``.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

from ._feature_flags import FLAGS_YAML, enabled_for

# PyYAML ships no type hints (types-PyYAML is a separate package): typed as Any here.
yaml: Any = importlib.import_module("yaml")

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """The flags enabled for the user of ``event``."""
    document = yaml.load(event.get("flags", FLAGS_YAML), Loader=LOADER)
    return {"enabled": enabled_for(document, event.get("country", "DE"), event.get("plan", "pro"))}
