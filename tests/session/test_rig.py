"""RigSession's guarded life cycle and recorded-bus rule (no process needed)."""

from __future__ import annotations

import pytest

from hil.errors import SessionStateError
from hil.session import RigSession
from hil.session.held import Held
from hil.spec.rig import Rig

RIG = {"name": "guarded", "buses": {"chassis": {"kind": "can", "emulated": True},
                                    "uart": {"kind": "serial", "emulated": True},
                                    "log": {"kind": "serial", "emulated": True}},
       "targets": {"mcu": {"kind": "mcu", "emulated": True, "buses": ["chassis"], "console": "uart"}}}


def rig() -> Rig:
    return Rig.model_validate(RIG)


def held(consoles: list[str]) -> Held:
    return Held("guarded", 1, 0, "hil deploy", "/runs/d", {}, None, {}, {}, 0, consoles, None)


def test_a_step_out_of_order_is_refused_naming_the_state(tmp_path):
    with RigSession(rig(), tmp_path) as session, pytest.raises(SessionStateError) as err:
        session.record()
    assert str(err.value) == "rig 'guarded': cannot record while idle; expected up or deployed"


def test_a_joined_session_deploys_nothing(tmp_path):
    with RigSession(rig(), tmp_path, joined=held(["uart"])) as session, pytest.raises(SessionStateError) as err:
        session.deploy(None)
    assert "cannot deploy onto rig 'guarded': the session holding rig 'guarded' (pid 1" in str(err.value)


def test_consoles_reach_the_recording_as_lines_not_as_bytes(tmp_path):
    assert RigSession(rig(), tmp_path).recorded() == ["chassis", "log"]  # uart is the MCU's console
    joined = RigSession(rig(), tmp_path, joined=held(["uart"]))
    assert joined.recorded() == ["chassis", "log"]
    with pytest.raises(SessionStateError, match="bus 'uart' is a console the session holding"):
        joined.recorded(["chassis", "uart"])  # a tty has one reader: the holder's
