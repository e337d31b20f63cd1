"""analyzer/renderers."""
