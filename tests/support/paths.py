"""Where the project's files are, for tests that read docs, static files or benchmarks."""

from __future__ import annotations

from pathlib import Path

#: The project's root folder (the checkout).
ROOT = Path(__file__).resolve().parents[2]
#: The fake issue trackers (importable once this folder is on sys.path).
TRACKERS = Path(__file__).resolve().parent / "trackers"
