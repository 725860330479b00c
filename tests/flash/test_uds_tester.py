"""The UDS tester against an ECU on a python-can bus that answers a request twice, as an ECU does
when a reset's version poll reached it twice while it booted: the late answer of the earlier
request must not fail the next request."""

from __future__ import annotations

import threading

import can
import pytest

from hil.flash.uds import UdsFlasher
from hil.protocol.uds import PROGRAMMING
from hil.spec.rig import UdsFlash

REQ, RESP = 0x7E0, 0x7E8


def ecu(bus: can.BusABC, stop: threading.Event) -> None:
    """Single-frame ISO-TP: a DiagnosticSessionControl is answered after a stale ReadDataByIdentifier
    answer (F195 = "1.0.0") that belongs to no request of this tester."""
    while not stop.is_set():
        msg = bus.recv(0.05)
        if msg is None or msg.arbitration_id != REQ or msg.data[1] != 0x10:
            continue
        stale = bytes([0x62, 0xF1, 0x95]) + b"1.0.0"
        for payload in (stale[:7], bytes([0x50, msg.data[2], 0x00, 0x32, 0x01, 0xF4])):
            bus.send(can.Message(arbitration_id=RESP, is_extended_id=False,
                                 data=(bytes([len(payload)]) + payload).ljust(8, b"\xaa")))


@pytest.fixture
def buses():
    channel = f"uds-tester-{id(object())}"
    with can.Bus(interface="virtual", channel=channel) as tester, \
            can.Bus(interface="virtual", channel=channel) as server:
        stop = threading.Event()
        thread = threading.Thread(target=ecu, args=(server, stop), daemon=True)
        thread.start()
        yield tester
        stop.set()
        thread.join(5)


def test_a_late_answer_to_an_earlier_request_is_dropped_not_taken_for_this_ones(buses):
    spec = UdsFlash.model_validate({"method": "uds", "bus": "chassis", "tx_id": REQ, "rx_id": RESP})
    with UdsFlasher(buses, spec, timeout_s=1.0) as tester:
        tester.session(PROGRAMMING)  # was: FlashError "unexpected response ... Received=0x62, Expected=0x50"
