"""greenflame analyzer: pure functions over profiles."""
