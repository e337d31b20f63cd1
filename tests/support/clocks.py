"""A clock the test moves by hand, for code that takes its clock as an argument."""

from __future__ import annotations


class ManualClock:
    """Returns ``now`` (seconds) until the test changes it."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
