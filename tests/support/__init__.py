"""What the tests share: fixtures, builders, fake trackers and paths."""
