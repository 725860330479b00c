"""The ECU side of UDS (ISO 14229-1) for flashing, as a request → response function.

Services: DiagnosticSessionControl 0x10, ECUReset 0x11, SecurityAccess 0x27 (seed/key with the
configured algorithm, three attempts), RoutineControl 0x31 (0xFF00 erase memory), RequestDownload
0x34, TransferData 0x36, RequestTransferExit 0x37, ReadDataByIdentifier 0x22 (F180 boot version,
F190 VIN, F195 software version), TesterPresent 0x3E. Negative responses follow the standard:
0x11 service not supported, 0x12 sub-function not supported, 0x13 wrong length or format,
0x22 conditions not correct, 0x24 request sequence error, 0x31 request out of range, 0x33 security
access denied, 0x35 invalid key, 0x36 attempts exceeded, 0x72 programming failure, 0x73 wrong
block sequence counter, 0x7F service not supported in the active session. A non-default session
left without requests for S3 (5 s; TesterPresent keeps it) falls back to the default session.
Erasing takes the time flash takes (20 ms a page, 40 ms for a mass erase, as an STM32F1's
datasheet gives): when that outlasts P2 the server answers 0x78 response pending first, again
every second, then the result.

The transport (ISO-TP over CAN) and the effects on the MCU (stop the application for programming,
reset) are the caller's: :class:`UdsServer` only says what happened through :class:`EcuHooks`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from udsoncan.ResponseCode import ResponseCode as NRC

from hil.firmware.flashmem import FlashMemory
from hil.protocol.seedkey import KeyFunction
from hil.protocol.uds import DEFAULT, DID_BOOT_VERSION, DID_SOFTWARE_VERSION, DID_VIN, ERASE_MEMORY, PROGRAMMING, EXTENDED

BOOT_VERSION = "hil-boot 1"
MAX_BLOCK = 0x402  # TransferData: SID + counter + 1024 data bytes
MAX_ATTEMPTS = 3
S3_S = 5.0  # a non-default session without requests for this long falls back to default (ISO 14229 S3)
P2_MS, P2_STAR_10MS = 50, 500  # timing reported by DiagnosticSessionControl
PAGE_ERASE_S, MASS_ERASE_S = 0.020, 0.040
PENDING_FIRST_S, PENDING_EVERY_S = 0.040, 1.0  # 0x78 well inside P2, then well inside P2*


class Negative(Exception):
    def __init__(self, code: int):
        self.code = code


@dataclass
class EcuHooks:
    """What the server asks of the MCU it runs on."""

    software_version: Callable[[], str | None]  # version of the valid image in flash, or None
    enter_programming: Callable[[], None] = lambda: None  # stop the application ("jump to boot")
    send: Callable[[bytes], None] = lambda response: None  # a response before the final one (0x78)
    vin: str = "HILEMULATEDECU001"


@dataclass
class _Download:
    address: int
    size: int
    received: int = 0
    next_counter: int = 1


class UdsServer:
    def __init__(self, flash: FlashMemory, key: KeyFunction, level: int, hooks: EcuHooks):
        self.flash = flash
        self.key = key
        self.level = level if level % 2 else level - 1
        self.hooks = hooks
        self.reset_requested: str | None = None  # why the ECU must restart (it does, then clears this)
        self.last_request_s = time.monotonic()
        self._reset_state()
        self.services = {0x10: self._session, 0x11: self._ecu_reset, 0x22: self._read_did, 0x27: self._security,
                         0x31: self._routine, 0x34: self._request_download, 0x36: self._transfer_data,
                         0x37: self._transfer_exit, 0x3E: self._tester_present}

    def _reset_state(self) -> None:
        self.session = DEFAULT
        self.unlocked = False
        self.seed: bytes | None = None
        self.failed_keys = 0
        self.download: _Download | None = None

    def expire(self, now_s: float) -> None:
        """Called while idle: the S3 timer returns a forgotten session to default (and locks)."""
        if self.session != DEFAULT and now_s - self.last_request_s > S3_S:
            if self.session == PROGRAMMING:
                self.reset_requested = "programming session timed out (S3)"
            self._reset_state()

    def handle(self, request: bytes) -> bytes | None:
        """The response to ``request``; None when the positive response is suppressed (bit 0x80)."""
        self.last_request_s = time.monotonic()
        if not request:
            return None
        sid = request[0]
        service = self.services.get(sid)
        if service is None:
            return bytes([0x7F, sid, NRC.ServiceNotSupported])
        try:
            response = service(request)
        except Negative as neg:
            return bytes([0x7F, sid, neg.code])
        if sid in (0x10, 0x11, 0x3E, 0x31) and len(request) > 1 and request[1] & 0x80:
            return None
        return bytes([sid + 0x40]) + response

    # -- services ------------------------------------------------------------------------------

    def _session(self, req: bytes) -> bytes:
        _length(req, 2)
        session = req[1] & 0x7F
        if session not in (DEFAULT, PROGRAMMING, EXTENDED):
            raise Negative(NRC.SubFunctionNotSupported)
        if session != self.session:
            self.unlocked, self.seed, self.download = False, None, None
        if session == PROGRAMMING:
            self.hooks.enter_programming()
        elif self.session == PROGRAMMING:  # the bootloader hands back to the application by a reset
            self.reset_requested = "programming session ended"
        self.session = session
        return bytes([session]) + P2_MS.to_bytes(2, "big") + P2_STAR_10MS.to_bytes(2, "big")

    def _ecu_reset(self, req: bytes) -> bytes:
        _length(req, 2)
        if req[1] & 0x7F not in (0x01, 0x03):
            raise Negative(NRC.SubFunctionNotSupported)
        self._reset_state()
        self.reset_requested = "ECUReset"
        return bytes([req[1] & 0x7F])

    def _read_did(self, req: bytes) -> bytes:
        if len(req) < 3 or len(req) % 2 == 0:
            raise Negative(NRC.IncorrectMessageLengthOrInvalidFormat)
        out = b""
        for i in range(1, len(req), 2):
            did = int.from_bytes(req[i:i + 2], "big")
            if did == DID_SOFTWARE_VERSION:
                version = self.hooks.software_version()
                if version is None:
                    raise Negative(NRC.ConditionsNotCorrect)  # no valid application in flash
                value = version.encode()
            elif did == DID_VIN:
                value = self.hooks.vin.encode()
            elif did == DID_BOOT_VERSION:
                value = BOOT_VERSION.encode()
            else:
                raise Negative(NRC.RequestOutOfRange)
            out += req[i:i + 2] + value
        return out

    def _security(self, req: bytes) -> bytes:
        if len(req) < 2:
            raise Negative(NRC.IncorrectMessageLengthOrInvalidFormat)
        sub = req[1] & 0x7F
        if sub not in (self.level, self.level + 1):
            raise Negative(NRC.SubFunctionNotSupported)
        if self.session == DEFAULT:
            raise Negative(NRC.ServiceNotSupportedInActiveSession)
        if sub == self.level:  # requestSeed
            _length(req, 2)
            if self.failed_keys >= MAX_ATTEMPTS:
                raise Negative(NRC.RequiredTimeDelayNotExpired)
            self.seed = bytes(4) if self.unlocked else os.urandom(4)
            return bytes([sub]) + self.seed
        if self.seed is None:  # sendKey without a seed
            raise Negative(NRC.RequestSequenceError)
        expected = self.key(self.level, self.seed)
        if len(req) != 2 + len(expected):
            raise Negative(NRC.IncorrectMessageLengthOrInvalidFormat)
        self.seed = None
        if req[2:] != expected:
            self.failed_keys += 1
            raise Negative(NRC.ExceedNumberOfAttempts if self.failed_keys >= MAX_ATTEMPTS else NRC.InvalidKey)
        self.unlocked, self.failed_keys = True, 0
        return bytes([sub])

    def _routine(self, req: bytes) -> bytes:
        if len(req) < 4:
            raise Negative(NRC.IncorrectMessageLengthOrInvalidFormat)
        rid = int.from_bytes(req[2:4], "big")
        if rid != ERASE_MEMORY:
            raise Negative(NRC.RequestOutOfRange)
        if req[1] & 0x7F != 0x01:
            raise Negative(NRC.SubFunctionNotSupported)
        if self.session != PROGRAMMING:
            raise Negative(NRC.ConditionsNotCorrect)
        self._require_unlocked()
        if len(req) == 4:
            pages = list(range(self.flash.device.pages))
            self._take(MASS_ERASE_S)
        else:
            address, size = _address_and_size(req[4:])
            if size == 0 or not self.flash.contains(address, size):
                raise Negative(NRC.RequestOutOfRange)
            dev = self.flash.device
            pages = list(range(dev.page_of(address), dev.page_of(address + size - 1) + 1))
            self._take(len(pages) * PAGE_ERASE_S)
        try:
            self.flash.erase_pages(pages)
        except (OSError, ValueError):  # a write-protected page
            raise Negative(NRC.GeneralProgrammingFailure) from None
        return req[1:4] + b"\x00"  # routine status: done, no error

    def _take(self, seconds: float) -> None:
        """Be busy for ``seconds``, telling the tester the response is pending while it lasts."""
        end = time.monotonic() + seconds
        nap = PENDING_FIRST_S
        while (left := end - time.monotonic()) > 0:
            if left <= nap:
                time.sleep(left)
                return
            time.sleep(nap)
            self.hooks.send(bytes([0x7F, 0x31, NRC.RequestCorrectlyReceived_ResponsePending]))
            nap = PENDING_EVERY_S

    def _request_download(self, req: bytes) -> bytes:
        self._require_programming()
        if len(req) < 3:
            raise Negative(NRC.IncorrectMessageLengthOrInvalidFormat)
        if req[1] != 0x00:  # dataFormatIdentifier: no compression, no encryption
            raise Negative(NRC.RequestOutOfRange)
        address, size = _address_and_size(req[2:])
        if self.download is not None:
            raise Negative(NRC.ConditionsNotCorrect)
        if size == 0 or not self.flash.contains(address, size):
            raise Negative(NRC.RequestOutOfRange)
        self.download = _Download(address, size)
        return b"\x20" + MAX_BLOCK.to_bytes(2, "big")

    def _transfer_data(self, req: bytes) -> bytes:
        self._require_programming()
        if len(req) < 2 or len(req) > MAX_BLOCK:
            raise Negative(NRC.IncorrectMessageLengthOrInvalidFormat)
        dl = self.download
        if dl is None:
            raise Negative(NRC.RequestSequenceError)
        counter, data = req[1], req[2:]
        if counter == (dl.next_counter - 1) & 0xFF and dl.received:
            return bytes([counter])  # a repeated block (lost response): acknowledge, do not write again
        if counter != dl.next_counter:
            raise Negative(NRC.WrongBlockSequenceCounter)
        if dl.received + len(data) > dl.size:
            raise Negative(NRC.TransferDataSuspended)
        try:
            self.flash.program(dl.address + dl.received, data)
        except (OSError, ValueError):
            raise Negative(NRC.GeneralProgrammingFailure) from None
        dl.received += len(data)
        dl.next_counter = (counter + 1) & 0xFF
        return bytes([counter])

    def _transfer_exit(self, req: bytes) -> bytes:
        self._require_programming()
        dl = self.download
        if dl is None or dl.received != dl.size:  # no download, or not every byte transferred yet
            raise Negative(NRC.RequestSequenceError)
        self.download = None
        return b""

    def _tester_present(self, req: bytes) -> bytes:
        _length(req, 2)
        if req[1] & 0x7F != 0x00:
            raise Negative(NRC.SubFunctionNotSupported)
        return b"\x00"

    # -- checks --------------------------------------------------------------------------------

    def _require_programming(self) -> None:
        if self.session != PROGRAMMING:
            raise Negative(NRC.ServiceNotSupportedInActiveSession)
        self._require_unlocked()

    def _require_unlocked(self) -> None:
        if not self.unlocked:
            raise Negative(NRC.SecurityAccessDenied)


def _length(req: bytes, n: int) -> None:
    if len(req) != n:
        raise Negative(NRC.IncorrectMessageLengthOrInvalidFormat)


def _address_and_size(raw: bytes) -> tuple[int, int]:
    """addressAndLengthFormatIdentifier, then the address and the size, big-endian."""
    if not raw:
        raise Negative(NRC.IncorrectMessageLengthOrInvalidFormat)
    n_size, n_addr = raw[0] >> 4, raw[0] & 0x0F
    if not (1 <= n_addr <= 4 and 1 <= n_size <= 4) or len(raw) != 1 + n_addr + n_size:
        raise Negative(NRC.IncorrectMessageLengthOrInvalidFormat)
    return int.from_bytes(raw[1:1 + n_addr], "big"), int.from_bytes(raw[1 + n_addr:], "big")
