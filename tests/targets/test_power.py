"""Command power switches run real programs (argv, no shell) with a timeout."""

from __future__ import annotations

import sys

import pytest

from hil.errors import DeployError
from hil.spec.rig import CommandPower
from hil.targets.power import CommandSwitch

LOG = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"


def switch(tmp_path, **over) -> CommandSwitch:
    log = str(tmp_path / "log")
    spec = {"kind": "command", "on": [sys.executable, "-c", LOG, log, "on"],
            "off": [sys.executable, "-c", LOG, log, "off"], "off_time": "10ms"}
    spec.update(over)
    return CommandSwitch("pdu", CommandPower.model_validate(spec))


def test_cycle_without_cycle_command_is_off_then_on(tmp_path):
    sw = switch(tmp_path)
    sw.cycle()
    sw.off()
    assert (tmp_path / "log").read_text() == "off\non\noff\n"


def test_cycle_command_is_used_when_given(tmp_path):
    sw = switch(tmp_path, cycle=[sys.executable, "-c", LOG, str(tmp_path / "log"), "cycle"])
    sw.cycle()
    assert (tmp_path / "log").read_text() == "cycle\n"


def test_arguments_are_not_shell_expanded(tmp_path):
    sw = switch(tmp_path, on=[sys.executable, "-c", LOG, str(tmp_path / "log"), "$(echo pwned); *"])
    sw.on()
    assert (tmp_path / "log").read_text() == "$(echo pwned); *\n"


def test_failure_names_the_switch_step_and_output(tmp_path):
    sw = switch(tmp_path, off=[sys.executable, "-c", "import sys; sys.exit('outlet 3: snmp timeout')"])
    with pytest.raises(DeployError, match="power switch 'pdu': off command .* exited with code 1: outlet 3: snmp timeout"):
        sw.off()


def test_timeout_and_missing_program(tmp_path):
    sw = switch(tmp_path, on=[sys.executable, "-c", "import time; time.sleep(600)"], timeout="200ms")
    with pytest.raises(DeployError, match="on command .* did not finish within 200ms"):
        sw.on()
    sw = switch(tmp_path, on=["/no/such/pdu-tool"])
    with pytest.raises(DeployError, match="could not run: No such file or directory"):
        sw.on()
