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



def test_a_filter_for_what_a_source_does_not_hold_is_refused_at_its_place(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.split("      sources:")[0] + """      sources:
        - {file: drive.blf, include_ports: [2368]}
        - {file: lidar.pcap, exclude_ids: [0x100], include_ports: [2368]}
""")
    with pytest.raises(SpecError) as err:
        load_suite(path)
    assert err.value.problems == [f"{path}:{where}" for where in (
        "7:29: benches[0].stimulus.sources[0].include_ports: 'include_ports' filters a packet capture's (pcap, "
        "pcapng) datagrams by destination port; this source is blf",
        "8:30: benches[0].stimulus.sources[1].exclude_ids: a packet capture holds UDP datagrams, not CAN frames: "
        "filter them by destination port with 'exclude_ports'",
    )]
