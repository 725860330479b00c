"""A plugin distribution adds a power switch, a flash method, a stimulus reader, a probe pairing,
a measurement source and a report format through entry points — with no edit to ``hil/``: its settings are checked
like the built-ins' (file:line:col), and a bench runs with all of them on an emulated rig (its power switch
cycling the target before deploy, as a nightly suite asks with ``power_cycle``)."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from hil.recording import load
from tests.outcomes import explain, pass_or_harness_error

from .conftest import ROOT, hil

FRAMES = 40


def write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def at(path: Path, text: str) -> str:
    """``FILE:LINE:COL`` of the first ``text`` in the file (where an error about it must point)."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return f"{path}:{n}:{line.index(text) + 1}"
    raise AssertionError(f"{text!r} is not in {path}")


def rig(tmp: Path, **flash) -> dict:
    return {
        "name": "sim-plugin",
        "buses": {"chassis": {"kind": "can", "emulated": True},
                  "echo-uart": {"kind": "serial", "emulated": True, "baudrate": 115200}},
        "power": {"relay": {"kind": "journal", "journal": str(tmp / "journal.txt")}},
        "targets": {"echo-mcu": {"kind": "mcu", "emulated": True, "buses": ["chassis"], "console": "echo-uart",
                                 "power": "relay", "flash": {"method": "uart-loader", "bus": "echo-uart", **flash}}},
    }


def suite(tmp: Path, pair: str = "exclusive", report: dict | None = None) -> dict:
    stimulus = tmp / "echo.jsonl"
    lines = [json.dumps({"comment": "echo requests, 10 ms apart"})]
    lines += [json.dumps({"t": 1 + k / 100, "ch": "can0", "id": 0x500, "data": f"{k:02x}55aa"}) for k in range(FRAMES)]
    stimulus.write_text("\n".join(lines) + "\n")
    write(tmp / "stack.yaml", {"name": "echo", "version": "1.0.0", "components": {"echo": {
        "kind": "firmware", "target": "echo-mcu", "image": str(ROOT / "firmware_stubs" / "echo"), "version": "1.0.0"}}})
    return {
        "name": "plugin-demo",
        "defaults": {"settle": "200ms", "power_cycle": True, "harness": {"p50": "100us", "p99": "500us", "max": "5ms"}},
        "reports": [report or {"format": "csv", "file": "m.csv", "delimiter": ";"}],
        "benches": [{
            "name": "echo", "stack": "stack.yaml",
            "stimulus": {"sources": [{"file": "echo.jsonl", "map": {"can0": "chassis"}}]},
            "probes": [{"name": "echo", "pair": pair, "from": {"bus": "chassis", "id": 0x500},
                        "to": {"bus": "chassis", "id": 0x580}, "window": "100ms"}],
            "measurements": [{"name": "echo-missed", "probe": "echo", "stat": "missed", "le": 0},
                             {"name": "echo-count", "probe": "echo", "stat": "count", "ge": FRAMES},
                             {"name": "echo-gap", "source": {"kind": "gap", "bus": "chassis", "id": 0x580},
                              "unit": "ms", "le": 1000}],
        }],
    }


def test_a_bench_runs_with_the_plugins_power_flash_stimulus_pairing_and_report(plugin_site, tmp_path):
    write(tmp_path / "rig.yaml", rig(tmp_path))
    write(tmp_path / "suite.yaml", suite(tmp_path))
    r = hil(plugin_site, tmp_path, "run", str(tmp_path / "suite.yaml"), "--rig", str(tmp_path / "rig.yaml"),
            "--out", str(tmp_path / "run"))
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    bench = results["benches"][0]
    assert pass_or_harness_error(bench), explain(bench) + r.stdout + r.stderr
    stats = bench["probes"]["echo"]["stats"]
    assert stats["count"] + stats["missed"] == FRAMES  # every frame of the .jsonl played and paired or missed
    if bench["verdict"] == "pass":  # flashed by the loader, so the echo firmware answered every one at once
        assert (stats["count"], stats["missed"]) == (FRAMES, 0)
    gap = bench["measurements"][2]
    rows = list(csv.reader((tmp_path / "run" / "m.csv").open(), delimiter=";"))
    assert rows == [["bench", "measurement", "value", "unit", "outcome"],
                    ["echo", "echo-missed", repr(float(stats["missed"])), "", bench["measurements"][0]["outcome"]],
                    ["echo", "echo-count", repr(float(stats["count"])), "", bench["measurements"][1]["outcome"]],
                    ["echo", "echo-gap", repr(gap["value"]), "ms", gap["outcome"]]]
    assert gap["source"] == "gap 0x580 on chassis" and 5 < gap["value"] < 1000  # answers come 10 ms apart
    journal = [line.split()[1:] for line in (tmp_path / "journal.txt").read_text().splitlines()]
    assert journal == [["relay", "off", "echo-mcu"], ["relay", "on", "echo-mcu"]]  # cycled once, before deploy
    assert bench["power_cycled"] == ["echo-mcu"] and bench["warnings"] == []
    assert json.loads(load(tmp_path / "run" / bench["files"]["recording"]).metadata["power_cycled"]) == ["echo-mcu"]


def test_hil_deploy_cycles_the_plugins_power_switch_and_flashes_with_its_loader(plugin_site, tmp_path):
    write(tmp_path / "rig.yaml", rig(tmp_path))
    suite(tmp_path)
    r = hil(plugin_site, tmp_path, "deploy", str(tmp_path / "rig.yaml"), str(tmp_path / "stack.yaml"),
            "--power-cycle", "--for", "0.5", "--run-dir", str(tmp_path / "dep"))
    assert r.returncode == 0, r.stdout + r.stderr
    journal = [line.split()[1:] for line in (tmp_path / "journal.txt").read_text().splitlines()]
    assert journal == [["relay", "off", "echo-mcu"], ["relay", "on", "echo-mcu"]]
    console = "\n".join(p.read_text() for p in (tmp_path / "dep").rglob("*.log"))
    assert "echo: answering 0x500..0x57f on 0x580" in console  # the image the loader wrote booted


def test_plugin_settings_are_checked_with_their_place_in_the_file(plugin_site, tmp_path):
    bad_rig = rig(tmp_path, blok=64)
    bad_rig["power"]["relay"]["jurnal"] = bad_rig["power"]["relay"].pop("journal")
    write(tmp_path / "rig.yaml", bad_rig)
    r = hil(plugin_site, tmp_path, "check", str(tmp_path / "rig.yaml"))
    assert r.returncode == 2, r.stdout + r.stderr
    rig_file = tmp_path / "rig.yaml"
    assert (f"{at(rig_file, 'jurnal:')}: power.relay.jurnal: unknown key 'jurnal'; did you mean 'journal'? "
            "expected one of: kind, journal") in r.stderr, r.stderr
    assert (f"{at(rig_file, 'blok:')}: targets.echo-mcu.flash.blok: unknown key 'blok'; did you mean 'block'? "
            "expected one of: method, bus, address, block") in r.stderr, r.stderr

    write(tmp_path / "rig.yaml", rig(tmp_path))
    write(tmp_path / "suite.yaml", suite(tmp_path, pair="exclusiv", report={"format": "csv", "delimiter": "|"}))
    r = hil(plugin_site, tmp_path, "check", str(tmp_path / "rig.yaml"), str(tmp_path / "suite.yaml"))
    assert r.returncode == 2, r.stdout + r.stderr
    suite_file = tmp_path / "suite.yaml"
    bar = at(suite_file, "'|'")
    assert (f"{bar}: reports[0].delimiter: expected ',', ';' or '\\t', "
            "got '|'") in r.stderr, r.stderr
    assert (f"{at(suite_file, 'exclusiv')}: benches[0].probes[0].pair: expected 'counter', 'edge', 'next' or "
            "'exclusive', got 'exclusiv'") in r.stderr, r.stderr


def test_without_the_plugin_its_names_are_unknown(tmp_path):
    write(tmp_path / "rig.yaml", rig(tmp_path))
    r = hil(Path("/nonexistent"), tmp_path, "check", str(tmp_path / "rig.yaml"))
    assert r.returncode == 2
    assert "power.relay.kind: expected 'kind' to be one of 'command', 'emulated', got 'journal'" in r.stderr, r.stderr


def test_hil_plugins_lists_what_the_plugin_adds_beside_the_built_ins(plugin_site, tmp_path):
    r = hil(plugin_site, tmp_path, "plugins")
    assert r.returncode == 0, r.stdout + r.stderr
    listed = [line.split(None, 1) for line in r.stdout.splitlines() if line.startswith("  ")]
    assert ["journal", "hil_example_plugin.power:JournalSwitch (hil-example-plugin 0.1.0)"] in listed
    assert ["uart-loader", "hil_example_plugin.flash:UartLoader (hil-example-plugin 0.1.0)"] in listed
    assert ["emulated", "built in"] in listed and "hil.report (report format)" in r.stdout


def test_python_cans_reader_plugins_are_stimulus_formats_also_gzipped(plugin_site, tmp_path):
    text = "".join(f"{10 + k / 100:.2f} 123 {k:02x}0102\n" for k in range(5))
    (tmp_path / "drive.canl.gz").write_bytes(gzip.compress(text.encode()))
    code = ("import sys; from hil.stimulus.readers import read_source; log = read_source(sys.argv[1]); "
            "print(log.format, [(e.t_ns, e.channel, e.id, e.data.hex()) for e in log.events])")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "drive.canl.gz")], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(plugin_site)}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "python-can " + repr([(10_000_000_000 + k * 10_000_000, "can0", 0x123, f"{k:02x}0102")
                                                     for k in range(5)])
