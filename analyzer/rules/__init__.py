"""analyzer/rules."""
