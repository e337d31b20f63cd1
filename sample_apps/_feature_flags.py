"""The feature-flag document of the ``yaml_*`` samples: YAML, as a config service returns it."""

from __future__ import annotations

#: 40 flags with targeting rules: about 10 KB of YAML.
FLAGS_YAML = "flags:\n" + "".join(
    f"""  - key: feature-{n}
    enabled: {"true" if n % 3 else "false"}
    owner: team-{n % 12}
    rollout: {{percent: {n % 100}, sticky: true}}
    rules:
      - attribute: country
        in: [DE, FR, NL, {"SE" if n % 2 else "ES"}]
      - attribute: plan
        in: [pro, enterprise]
    description: "Gradual rollout of feature {n}, see the design doc"
"""
    for n in range(40)
)


def enabled_for(document: dict, country: str, plan: str) -> list:
    """Keys of the flags on for a user in ``country`` on ``plan``."""
    keys = []
    for flag in document["flags"]:
        rules = {rule["attribute"]: rule["in"] for rule in flag["rules"]}
        if flag["enabled"] and country in rules["country"] and plan in rules["plan"]:
            keys.append(flag["key"])
    return keys
