"""The ECU side of UDS, request by request: positive responses and every negative response code."""

from __future__ import annotations

import pytest

from hil.firmware.flashmem import FlashMemory, OptionBytes
from hil.firmware.uds import EcuHooks, UdsServer
from hil.protocol import an3155
from hil.protocol.seedkey import key_function

BASE = 0x0800_0000
KEY = key_function("xor:0x5A5A5A5A")


@pytest.fixture
def flash(tmp_path):
    return FlashMemory(tmp_path / "flash.bin", an3155.DEVICES[an3155.DEFAULT_PID])


@pytest.fixture
def ecu(flash):
    version = {"v": None}
    programming, sent = [], []
    server = UdsServer(flash, KEY, 1, EcuHooks(software_version=lambda: version["v"],
                                               enter_programming=lambda: programming.append(True),
                                               send=sent.append))
    server.version, server.programming, server.sent = version, programming, sent
    return server


def nrc(ecu, request: bytes) -> int:
    response = ecu.handle(request)
    assert response[:2] == bytes([0x7F, request[0]]), response.hex()
    return response[2]


def unlock(ecu) -> None:
    assert ecu.handle(b"\x10\x02")[:2] == b"\x50\x02"
    seed = ecu.handle(b"\x27\x01")[2:]
    assert ecu.handle(b"\x27\x02" + KEY(1, seed)) == b"\x67\x02"


def address_size(address: int, size: int) -> bytes:
    return b"\x44" + address.to_bytes(4, "big") + size.to_bytes(4, "big")


def test_download_programs_flash(ecu, flash):
    unlock(ecu)
    assert ecu.programming == [True]
    assert ecu.handle(b"\x31\x01\xff\x00" + address_size(BASE, 4096)) == b"\x71\x01\xff\x00\x00"
    assert ecu.handle(b"\x34\x00" + address_size(BASE, 6)) == b"\x74\x20\x04\x02"
    assert ecu.handle(b"\x36\x01abc") == b"\x76\x01"
    assert ecu.handle(b"\x36\x01abc") == b"\x76\x01"  # a repeated block is acknowledged, not rewritten
    assert ecu.handle(b"\x36\x02def") == b"\x76\x02"
    assert ecu.handle(b"\x37") == b"\x77"
    assert flash.read(BASE, 8) == b"abcdef\xff\xff"


def test_an_erase_longer_than_p2_answers_response_pending_first(ecu, flash):
    unlock(ecu)
    flash.program(BASE, b"old")
    assert ecu.handle(b"\x31\x01\xff\x00" + address_size(BASE, 2048)) == b"\x71\x01\xff\x00\x00"
    assert ecu.sent == []  # one page: 20 ms, inside P2 (50 ms)
    assert ecu.handle(b"\x31\x01\xff\x00" + address_size(BASE, 5 * 2048)) == b"\x71\x01\xff\x00\x00"
    assert ecu.sent == [b"\x7f\x31\x78"]  # five pages: 100 ms, so 0x78 before P2 runs out
    assert flash.read(BASE, 3) == b"\xff\xff\xff"


def test_write_protected_pages_fail_erase_and_download(ecu, flash):
    """Pages write-protected through the AN3155 bootloader's option bytes: 0x72 generalProgrammingFailure."""
    unlock(ecu)
    flash.set_options(OptionBytes(write_protected=[1]))
    assert nrc(ecu, b"\x31\x01\xff\x00" + address_size(BASE, 4096)) == 0x72
    assert nrc(ecu, b"\x31\x01\xff\x00") == 0x72  # a mass erase too
    assert ecu.handle(b"\x34\x00" + address_size(BASE + 2048, 4))[:1] == b"\x74"
    assert nrc(ecu, b"\x36\x01abcd") == 0x72


def test_wrong_block_sequence_counter(ecu):
    unlock(ecu)
    ecu.handle(b"\x34\x00" + address_size(BASE, 16))
    assert nrc(ecu, b"\x36\x02abcd") == 0x73
    assert ecu.handle(b"\x36\x01abcd") == b"\x76\x01"
    assert nrc(ecu, b"\x36\x03abcd") == 0x73


def test_sequence_errors(ecu):
    unlock(ecu)
    assert nrc(ecu, b"\x36\x01abcd") == 0x24  # TransferData without RequestDownload
    assert nrc(ecu, b"\x37") == 0x24  # RequestTransferExit without RequestDownload
    ecu.handle(b"\x34\x00" + address_size(BASE, 16))
    ecu.handle(b"\x36\x01abcd")
    assert nrc(ecu, b"\x37") == 0x24  # 4 of 16 bytes: the transfer is incomplete
    assert nrc(ecu, b"\x34\x00" + address_size(BASE, 16)) == 0x22  # a download is already active
    assert nrc(ecu, b"\x36\x02" + b"x" * 13) == 0x71  # more than requested


def test_security(ecu):
    assert nrc(ecu, b"\x27\x01") == 0x7F  # not in the default session
    ecu.handle(b"\x10\x02")
    assert nrc(ecu, b"\x27\x02\x00\x00\x00\x00") == 0x24  # key before seed
    assert nrc(ecu, b"\x27\x03") == 0x12  # level 3 is not offered
    assert nrc(ecu, b"\x34\x00" + address_size(BASE, 16)) == 0x33  # locked
    assert nrc(ecu, b"\x31\x01\xff\x00") == 0x33
    for expected in (0x35, 0x35, 0x36):
        ecu.handle(b"\x27\x01")
        assert nrc(ecu, b"\x27\x02\x00\x00\x00\x00") == expected
    assert nrc(ecu, b"\x27\x01") == 0x37  # attempts used up until reset
    assert ecu.handle(b"\x11\x01") == b"\x51\x01" and ecu.reset_requested
    unlock(ecu)
    assert ecu.handle(b"\x27\x01") == b"\x67\x01\x00\x00\x00\x00"  # already unlocked: zero seed


def test_leaving_the_programming_session_restarts_the_ecu(ecu):
    """The application stopped for programming comes back: a tester that gives up (a wrong key,
    say) must not leave the ECU halted in its bootloader until someone resets it."""
    assert ecu.handle(b"\x10\x03")[:2] == b"\x50\x03" and ecu.reset_requested is None  # no reset for this
    assert ecu.handle(b"\x10\x02")[:2] == b"\x50\x02" and ecu.programming == [True]
    assert ecu.handle(b"\x10\x01")[:2] == b"\x50\x01"
    assert ecu.reset_requested == "programming session ended"


def test_session_rules(ecu):
    assert nrc(ecu, b"\x34\x00" + address_size(BASE, 16)) == 0x7F
    assert nrc(ecu, b"\x36\x01ab") == 0x7F
    assert nrc(ecu, b"\x31\x01\xff\x00") == 0x22  # erase only in the programming session
    assert nrc(ecu, b"\x10\x05") == 0x12
    assert ecu.handle(b"\x10\x03") == b"\x50\x03\x00\x32\x01\xf4"
    assert ecu.programming == []
    unlock(ecu)
    ecu.handle(b"\x10\x01")  # leaving the session locks again
    ecu.handle(b"\x10\x02")
    assert nrc(ecu, b"\x34\x00" + address_size(BASE, 16)) == 0x33


def test_lengths_ranges_and_unknown_services(ecu):
    assert nrc(ecu, b"\x10") == 0x13
    assert nrc(ecu, b"\x10\x01\x00") == 0x13
    assert nrc(ecu, b"\x22\xf1") == 0x13
    assert nrc(ecu, b"\x22\x12\x34") == 0x31
    assert nrc(ecu, b"\x22\xf1\x95") == 0x22  # no valid image: no software version
    assert nrc(ecu, b"\x85\x01") == 0x11
    unlock(ecu)
    assert nrc(ecu, b"\x34\x00" + address_size(0x0900_0000, 16)) == 0x31
    assert nrc(ecu, b"\x34\x01" + address_size(BASE, 16)) == 0x31  # compressed: not supported
    assert nrc(ecu, b"\x34\x00\x44\x08") == 0x13
    assert nrc(ecu, b"\x31\x01\x12\x34") == 0x31
    assert nrc(ecu, b"\x31\x01\xff\x00" + address_size(BASE, 0)) == 0x31


def test_read_identifiers_and_tester_present(ecu):
    ecu.version["v"] = "2.1.0"
    assert ecu.handle(b"\x22\xf1\x95\xf1\x90") == b"\x62\xf1\x952.1.0\xf1\x90HILEMULATEDECU001"
    assert ecu.handle(b"\x3e\x00") == b"\x7e\x00"
    assert ecu.handle(b"\x3e\x80") is None  # suppressed positive response
    assert nrc(ecu, b"\x3e\x01") == 0x12


def test_s3_timeout_returns_to_the_default_session_and_locks(ecu):
    unlock(ecu)
    ecu.expire(ecu.last_request_s + 4.9)  # within S3: still in the programming session, unlocked
    assert ecu.session == 0x02 and ecu.unlocked
    ecu.expire(ecu.last_request_s + 5.1)
    assert ecu.session == 0x01
    assert ecu.reset_requested == "programming session timed out (S3)"  # back to the application
    assert nrc(ecu, b"\x34\x00" + address_size(BASE, 16)) == 0x7F
