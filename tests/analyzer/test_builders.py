"""The shared profile builders make valid profiles."""

from __future__ import annotations

from support.builders import lambda_profile


def test_builder_profiles_are_valid() -> None:
    for profile in (lambda_profile(), lambda_profile(client_in_handler=False, labels=False)):
        profile.validate()
        assert profile.total("wall") > 0
