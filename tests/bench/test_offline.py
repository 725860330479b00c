"""`hil analyze` judges logs from other tools too: a candump log and a BLF file written by python-can."""

from __future__ import annotations

import textwrap

import can
import pytest

from hil.bench.offline import analyse_offline

SUITE = textwrap.dedent('''
    name: offline
    defaults: {stack: none.yaml}
    benches:
      - name: echo
        probes:
          - {name: echo, pair: counter, window: 5ms, from: {bus: chassis, id: 0x500, byte: 0}, to: {bus: chassis, id: 0x580, byte: 0}}
        measurements:
          - {name: p50, probe: echo, stat: p50, unit: us, range: [299, 301]}
          - {name: missed, probe: echo, stat: missed, le: 1}
''')


def messages(channel):
    out = []
    for i in range(20):
        out.append(can.Message(timestamp=10 + i * 0.01, arbitration_id=0x500, data=bytes([i]), channel=channel,
                               is_extended_id=False))
        if i != 7:  # one answer missing
            out.append(can.Message(timestamp=10 + i * 0.01 + 0.0003, arbitration_id=0x580, data=bytes([i]),
                                   channel=channel, is_extended_id=False))
    return out


@pytest.mark.parametrize("name, writer, channel", [("log.log", can.CanutilsLogWriter, "can1"),
                                                    ("log.blf", can.BLFWriter, 1)])
def test_a_foreign_log_is_judged_with_its_channel_mapped(tmp_path, name, writer, channel):
    (tmp_path / "suite.yaml").write_text(SUITE)
    with writer(tmp_path / name) as w:
        for msg in messages(channel):
            w.on_message_received(msg)
    result = analyse_offline(tmp_path / name, tmp_path / "suite.yaml", "echo", tmp_path / "out",
                             {str(channel): "chassis"})
    bench = result.benches[0]
    assert bench.verdict == "pass", bench.measurements
    assert bench.probes["echo"]["stats"]["count"] == 19 and bench.probes["echo"]["stats"]["missed"] == 1
    assert (tmp_path / "out" / "results.json").is_file()
