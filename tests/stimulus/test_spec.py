"""Stimulus mistakes in a suite file are reported at load time, at their line and column."""

from __future__ import annotations

import pytest

from hil.errors import SpecError
from hil.spec.load import load_suite

SUITE = """name: s
defaults: {stack: stack.yaml}
benches:
  - name: b
    stimulus:
      sources:
        - {file: drive.blf, start: 5s, end: 2s}
      overrides:
        - {message: Speed, action: scale}
        - {message: Speed, signal: VehicleSpeed, action: drop, start: 3s, end: 1s}
      waits:
        - {at: 1s, until: {bus: body, message: Ack}}
"""


def test_stimulus_problems_come_with_positions(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    with pytest.raises(SpecError) as err:
        load_suite(path)
    assert err.value.problems == [f"{path}:{where}" for where in (
        "7:45: benches[0].stimulus.sources[0].end: expected 'end' after 'start'",
        "8:7: benches[0].stimulus.overrides: overrides name DBC messages: the stimulus needs 'dbc' files",
        "9:11: benches[0].stimulus.overrides[0]: 'scale' needs 'signal'",
        "9:11: benches[0].stimulus.overrides[0]: 'scale' needs 'value'",
        "10:80: benches[0].stimulus.overrides[1].end: expected 'end' after 'start'",
        "12:48: benches[0].stimulus.waits[0].until.message: a DBC message needs 'dbc' files in the stimulus",
    )]
