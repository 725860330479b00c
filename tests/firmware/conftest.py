"""A minimal firmware stub folder, for the image tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def stub(tmp_path):
    folder = tmp_path / "blink"
    folder.mkdir()
    (folder / "firmware.yaml").write_text("name: blink\nversion: 1.0.3\nentry: blink:setup\n")
    (folder / "blink.py").write_text("def setup(mcu):\n    pass\n")
    return folder
