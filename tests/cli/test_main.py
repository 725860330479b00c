"""The `hil` executable: exit codes, output streams, global options — run as a real process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.hilcli import hil

ROOT = Path(__file__).resolve().parents[2]
HIL = [sys.executable, "-m", "hil"]


def test_check_valid_rig_prints_topology_and_exits_0():
    r = hil("check", "rigs/sim-minimal.yaml")
    assert r.returncode == 0, r.stderr
    assert "rig sim-minimal" in r.stdout
    assert "chassis can · emulated (simbus) · 500 kbit/s" in r.stdout
    assert r.stdout.rstrip().endswith("ok rigs/sim-minimal.yaml")
    assert r.stderr == ""


def test_check_lab_example_shows_real_interfaces():
    r = hil("check", "rigs/lab-example.yaml")
    assert r.returncode == 0, r.stderr
    assert "socketcan:can0" in r.stdout
    assert "ssh hil@orin-bench3.lab:22" in r.stdout
    # piped output (a CI log) is never cut at 80 columns
    assert "brake-console serial · /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0 · 115200 baud" in r.stdout


def test_check_shows_networks_with_addresses_and_ports():
    r = hil("check", "rigs/sim-aeb-sensors.yaml")
    assert r.returncode == 0, r.stderr
    assert "lan ethernet · emulated (loopback) · hil at 127.0.1.1" in r.stdout
    assert "network lan: 127.0.1.2, ports camera 5004, lidar 2368" in r.stdout


def test_spec_error_exits_2_on_stderr_without_traceback():
    r = hil("check", "tests/spec/files/bad/rig-unknown-key.yaml")
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith("error: tests/spec/files/bad/rig-unknown-key.yaml:6:5: buses.can1.bitrat:")
    assert "Traceback" not in r.stderr


def test_debug_shows_the_traceback():
    r = hil("--debug", "check", "tests/spec/files/bad/rig-unknown-key.yaml")
    assert r.returncode != 0
    assert "Traceback" in r.stderr and "SpecError" in r.stderr


def test_rig_from_environment():
    r = hil("check", env={"HIL_RIG": "rigs/sim-minimal.yaml"})
    assert r.returncode == 0, r.stderr
    assert "rig sim-minimal" in r.stdout


def test_a_rig_on_the_command_line_wins_over_the_environment():
    r = hil("check", "rigs/lab-example.yaml", env={"HIL_RIG": "rigs/sim-minimal.yaml"})
    assert r.returncode == 0, r.stderr  # it was read as a suite against sim-minimal
    assert "rig lab-example" in r.stdout
    r = hil("check", "benches/aeb-smoke.yaml", env={"HIL_RIG": "rigs/sim-aeb.yaml"})
    assert r.returncode == 0, r.stderr  # HIL_RIG names the rig; the files are suites
    assert "rig sim-aeb" in r.stdout and "suite aeb-smoke" in r.stdout


def test_check_without_rig_is_a_usage_error():
    r = hil("check")
    assert r.returncode == 2
    assert r.stderr.startswith("error: expected a rig file")


def test_unknown_command_is_a_usage_error():
    r = hil("frobnicate")
    assert r.returncode == 2
    assert "No such command 'frobnicate'" in r.stderr


def test_version():
    r = hil("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == "hil, version 0.1.0"


def test_quiet_suppresses_topology_but_keeps_errors():
    r = hil("-q", "-q", "check", "rigs/sim-minimal.yaml")
    assert r.returncode == 0 and r.stdout == ""


def test_no_color_env_and_flag_give_plain_output():
    for args, env in ((("--no-color",), {}), ((), {"NO_COLOR": "1"}), ((), {"NO_COLOR": "yes please"})):
        r = hil(*args, "check", "tests/spec/files/bad/rig-unknown-key.yaml", env={**env, "FORCE_COLOR": "1"})
        assert r.returncode == 2 and "unknown key" in r.stderr, r.stderr  # any value: no-color.org
        assert "\x1b[" not in r.stderr, (args, env)
    for env in ({}, {"NO_COLOR": ""}):  # unset or empty: colours
        r = hil("check", "tests/spec/files/bad/rig-unknown-key.yaml", env={**env, "FORCE_COLOR": "1"})
        assert "\x1b[" in r.stderr


@pytest.mark.parametrize("kind,files", [
    ("rig", ["rigs/sim-minimal.yaml", "rigs/lab-example.yaml", "tests/spec/files/good/rig.yaml"]),
    ("suite", ["tests/spec/files/good/suite.yaml"]),
    ("stack", ["tests/spec/files/good/stack.yaml"]),
])
def test_schema_accepts_the_example_files(kind, files):
    r = hil("schema", kind)
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    for f in files:
        doc = YAML(typ="safe").load((ROOT / f).read_text())
        jsonschema.validate(doc, schema)


def test_schema_rejects_unknown_keys():
    schema = json.loads(hil("schema", "rig").stdout)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "r", "buses": {"a": {"kind": "can", "bogus": 1}}}, schema)


def test_check_finds_what_run_would_refuse_in_the_dbc(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ndefaults: {stack: " + str(ROOT / "benches" / "aeb" / "stack.yaml") + "}\n"
                     "benches:\n  - name: b\n    measurements:\n      - {name: p, signal: Nope.Sig, bus: chassis, le: 1}\n")
    r = hil("check", "rigs/sim-aeb.yaml", str(suite))
    assert r.returncode == 2
    assert r.stderr == (f"error: {suite}:6:27: benches[0].measurements[0].signal: no DBC message 'Nope'; "
                        "known messages: none (no DBC loaded)\n")


@pytest.mark.parametrize("where", ["before", "after", "both"])
def test_global_options_are_accepted_after_the_command_name(where):
    """`hil check -q -q RIG` is `hil -q -q check RIG` (the docs write `hil replay -v ...`)."""
    before, after = {"before": (("-q", "-q"), ()), "after": ((), ("-q", "-q")), "both": (("-q",), ("-q",))}[where]
    r = hil(*before, "check", *after, "rigs/sim-minimal.yaml")
    assert r.returncode == 0 and r.stdout == "", r.stderr


def test_debug_and_no_color_after_the_command_name():
    r = hil("check", "--debug", "tests/spec/files/bad/rig-unknown-key.yaml")
    assert r.returncode != 0 and "Traceback" in r.stderr and "SpecError" in r.stderr
    r = hil("check", "tests/spec/files/bad/rig-unknown-key.yaml", "--no-color", env={"FORCE_COLOR": "1"})
    assert r.returncode == 2 and "unknown key" in r.stderr and "\x1b[" not in r.stderr, r.stderr


def test_verbose_after_a_subcommand_of_a_group():
    r = hil("rig", "status", "-v", "--no-color")
    assert r.returncode == 0, r.stderr
    r = hil("rig", "status", "--bogus")
    assert r.returncode == 2 and "--bogus" in r.stderr
