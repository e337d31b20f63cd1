"""Fixtures shared by the Lambda tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenflame.devtools.lambda_layer import extract_layer, write_layer


@pytest.fixture(scope="session")
def layer_opt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The greenflame layer, built and unpacked into a folder that stands for /opt."""
    root = tmp_path_factory.mktemp("layer")
    write_layer(root / "layer.zip")
    extract_layer(root / "layer.zip", root / "opt")
    return root / "opt"
