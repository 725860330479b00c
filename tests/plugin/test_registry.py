"""Registries in process: a plugin never silently replaces a built-in, a broken plugin is named
where a file uses it, and a suffix no hil reader claims goes to python-can's reader table."""

from __future__ import annotations

import can
import pytest
import yaml

from hil import registry
from hil.errors import SpecError, StimulusError
from hil.spec import load_rig
from hil.stimulus.readers import read_source

from .test_example_plugin import at


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """``installed(name, group, entry_points, modules)``: a distribution in a folder on sys.path, as
    pip lays one out (its package and its .dist-info), seen by fresh registries."""

    def install(dist: str, group: str, eps: dict[str, str], modules: dict[str, str] | None = None) -> None:
        site = tmp_path / "site"
        info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
        for name, source in (modules or {}).items():
            (site / f"{name}.py").write_text(source)
        monkeypatch.syspath_prepend(str(site))
        for reg in registry.registries():
            reg.forget()

    yield install
    for reg in registry.registries():
        reg.forget()


def rig_file(tmp_path, power: dict, flash: dict | None = None):
    doc = {"name": "r", "power": {"psu": power}, "buses": {"can1": {"kind": "can", "emulated": True}},
           "targets": {"ecu": {"kind": "mcu", "emulated": True, "buses": ["can1"], "power": "psu",
                               **({"flash": flash} if flash else {})}}}
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


SWITCH = ("from typing import Literal\nfrom hil.spec.rig import PowerSpec\nfrom hil.targets.power import Switch\n"
          "class Model(PowerSpec):\n    kind: Literal['emulated']\n"
          "class Relay(Switch):\n    model = Model\n    def on(self): pass\n    def off(self): pass\n")


def test_a_plugin_claiming_a_built_in_name_is_an_error_naming_both(installed, tmp_path):
    installed("hil-clash", "hil.power", {"emulated": "clash_relay:Relay"}, {"clash_relay": SWITCH})
    path = rig_file(tmp_path, {"kind": "emulated"})
    with pytest.raises(SpecError) as err:
        load_rig(path)
    assert (f"{at(path, 'emulated')}: power.psu.kind: power switch 'emulated' is claimed twice: by hil's built-in "
            "'emulated' and by entry point emulated = clash_relay:Relay of hil-clash 0.1; a plugin may not replace "
            "another — uninstall one") in str(err.value)
    assert registry.POWER.problems() == [
        "hil.power: power switch 'emulated' is claimed twice: by hil's built-in 'emulated' and by entry point "
        "emulated = clash_relay:Relay of hil-clash 0.1; a plugin may not replace another — uninstall one"]


def test_a_broken_plugin_is_named_only_where_a_file_uses_it(installed, tmp_path):
    installed("hil-broken", "hil.flash", {"jtag": "no_such_module:Jtag"})
    assert load_rig(rig_file(tmp_path, {"kind": "emulated"})).model.power["psu"].kind == "emulated"
    path = rig_file(tmp_path, {"kind": "emulated"}, {"method": "jtag"})
    with pytest.raises(SpecError) as err:
        load_rig(path)
    assert (f"{at(path, 'jtag')}: targets.ecu.flash.method: flash method 'jtag' (entry point jtag = "
            "no_such_module:Jtag of hil-broken 0.1) cannot be loaded: ModuleNotFoundError: No module named "
            "'no_such_module'") in str(err.value)


def test_an_unknown_name_lists_the_plugins_too(installed, tmp_path):
    installed("hil-relay", "hil.power", {"relay": "clash_relay:Relay"}, {"clash_relay": SWITCH})
    path = rig_file(tmp_path, {"kind": "pdu"})
    with pytest.raises(SpecError, match=r"power\.psu\.kind: expected 'kind' to be one of 'command', 'emulated', "
                                        r"'relay', got 'pdu'"):
        load_rig(path)


def test_a_suffix_hil_does_not_read_goes_to_python_cans_reader_table(tmp_path):
    writer = can.SqliteWriter(tmp_path / "drive.db")
    for k in range(5):
        writer.on_message_received(can.Message(timestamp=10 + k / 100, arbitration_id=0x123, data=[k, 1, 2],
                                               channel="can0", is_extended_id=False))
    writer.stop()
    log = read_source(tmp_path / "drive.db")
    assert log.format == "python-can"
    assert [(e.t_ns, e.channel, e.id, e.data) for e in log.events] == [  # python-can's SQLite log keeps no channel
        (10_000_000_000 + k * 10_000_000, "", 0x123, bytes([k, 1, 2])) for k in range(5)]


def test_a_suffix_nobody_reads_names_the_suffixes_that_are_read(tmp_path):
    (tmp_path / "capture.xyz").write_text("x\n")
    with pytest.raises(StimulusError, match=r"cannot tell the format from the suffix '\.xyz'; expected one of "
                                            r"\.asc, \.blf, \.csv, \.log, \.mcap, \.mf4, \.pcap, \.pcapng, \.scap, \.serial, \.trc"):
        read_source(tmp_path / "capture.xyz")
