"""UDS flashing of an emulated MCU end to end: udsoncan (tester) ↔ ISO-TP on simbus ↔ the MCU's
UDS bootloader. Wrong key, wrong block counter and an interrupted transfer each give the right
negative response (or none) and a FlashError naming the step."""

from __future__ import annotations

import pytest

from hil.errors import FlashError
from hil.firmware.build import build
from hil.flash import uds

from .test_mcu import STUBS, rig_buses, sim, wait_for  # noqa: F401  (shared fixtures)

BASE = 0x0800_0000


@pytest.fixture
def tester(rig_buses):
    bus = rig_buses[1].open_can("chassis")
    yield bus
    bus.shutdown()


def flasher(sim, bus, **change):
    spec = sim.rig.targets["brake"].flash.model_copy(update=change)
    return uds.UdsFlasher(bus, spec)


def test_deploy_over_uds_reads_back_the_version(sim, tester):
    steps = []
    t, components = sim.target("brake", STUBS / "brake_ecu")
    t.progress = lambda step, done, total: steps.append((step, done, total))
    t.deploy(components)
    size = len(build(STUBS / "brake_ecu").to_bytes())
    assert ("transfer", size, size) in steps and steps[-1] == ("verify", 1, 1)
    t.start()
    t.wait_ready()
    with flasher(sim, tester) as f:
        assert f.read_text(0xF195) == "1.0.0"
        assert f.read_text(0xF190) == "HILEMULATEDECU001"
        assert f.read_text(0xF180) == "hil-boot 1"
    wait_for(lambda: any(x.startswith("boot: image brake_ecu 1.0.0") for x in sim.console("brake-console")),
             "the boot line")
    since = t.states_seen
    with flasher(sim, tester) as f:
        f.reset()  # ECUReset while the application runs: it boots again
    assert t.wait_state("app", since, 30)["boot"] == 2


def test_wrong_security_key(sim, tester):
    sim.up("brake", STUBS / "brake_ecu")
    image = build(STUBS / "brake_ecu")
    with pytest.raises(FlashError, match=r"^uds SecurityAccess level 1: negative response 0x35 InvalidKey$"):
        uds.flash(tester, sim.rig.targets["brake"].flash.model_copy(update={"key": "xor:0x11111111"}), image)
    with flasher(sim, tester, key="xor:0x11111111") as f:
        with pytest.raises(FlashError, match="negative response 0x35 InvalidKey"):
            f.unlock()
        with pytest.raises(FlashError, match="negative response 0x36 ExceedNumberOfAttempts"):
            f.unlock()
        with pytest.raises(FlashError, match="negative response 0x37 RequiredTimeDelayNotExpired"):
            f.unlock()
        f.reset()


def test_session_security_and_block_sequence_counter(sim, tester, rig_buses):
    sim.up("brake", STUBS / "brake_ecu")
    listener = rig_buses[1].open_can("chassis")
    with flasher(sim, tester) as f:
        with pytest.raises(FlashError, match="RequestDownload .*: negative response 0x7f ServiceNotSupportedInActiveSession"):
            f.request_download(BASE, 16)
        f.session(uds.EXTENDED)
        f.session(uds.PROGRAMMING)
        with pytest.raises(FlashError, match="RoutineControl erase .*: negative response 0x33 SecurityAccessDenied"):
            f.erase(BASE, 16)
        f.unlock()
        try:
            f.erase(BASE, 10 * 2048)  # 200 ms of erasing: the ECU answers 0x78 first, the tester waits on
            answers = [bytes(m.data[1:1 + m.data[0]]) for m in iter(lambda: listener.recv(0), None)
                       if m.arbitration_id == 0x7E8]  # single frames: a length byte, then the payload
        finally:
            listener.shutdown()
        assert answers[-2:] == [b"\x7f\x31\x78", b"\x71\x01\xff\x00\x00"]
        assert f.request_download(BASE, 4096) == 1024
        with pytest.raises(FlashError, match=r"^uds TransferData block counter 2: negative response 0x73 "
                                             r"WrongBlockSequenceCounter$"):
            f.transfer(2, b"\x00" * 1024)
        f.transfer(1, b"\x00" * 1024)
        with pytest.raises(FlashError, match=r"^uds RequestTransferExit: negative response 0x24 RequestSequenceError$"):
            f.transfer_exit()  # 1 KiB of 4 KiB
        f.reset()


def test_interrupted_transfer_then_reflash(sim, tester):
    t = sim.up("brake", STUBS / "brake_ecu")
    image = build(STUBS / "brake_ecu")

    def cut_power(step, done, total):
        if step == "transfer" and done < total:
            t.power_off()  # the supply goes mid-download

    spec = sim.rig.targets["brake"].flash
    with pytest.raises(FlashError, match=r"^uds TransferData block counter 2: no response"):
        uds.flash(tester, spec, image, progress=cut_power)
    since = t.states_seen
    t.power_on()
    event = t.wait_state("app", since, 30)
    assert event["state"] == "bootloader" and "payload CRC32 mismatch" in event["reason"]
    with flasher(sim, tester) as f:
        with pytest.raises(FlashError, match="ReadDataByIdentifier 0xf195: negative response 0x22 ConditionsNotCorrect"):
            f.read_text(0xF195)
    since = t.states_seen
    assert uds.flash(tester, spec, image) == "1.0.0"
    assert t.wait_state("app", since, 30)["state"] == "app"


def test_a_tester_that_gives_up_leaves_the_application_running_again(sim, tester):
    t = sim.up("brake", STUBS / "brake_ecu")
    since = t.states_seen
    with flasher(sim, tester) as f:
        f.session(uds.PROGRAMMING)  # the application stops for programming ...
        stopped = t.wait_state("app", since, 30)
        assert (stopped["state"], stopped["reason"]) == ("bootloader", "boot: programming session, application stopped")
        since = t.states_seen
        assert t.wait_state("app", since, 0.5) is None  # ... and stays stopped (it used to boot again at once) ...
        f.session(0x01)  # ... until the tester gives up: back to the default session
    assert t.wait_state("app", since, 30)["state"] == "app"
    wait_for(lambda: "boot: programming session ended" in sim.console("brake-console"), "why it restarted")
