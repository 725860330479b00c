"""``uds``: flash an image with UDS (ISO 14229) over ISO-TP, using udsoncan as the tester.

Sequence: extended session → programming session → SecurityAccess (seed/key, the rig's key
algorithm) → RoutineControl 0xFF00 erase → RequestDownload → TransferData blocks → RequestTransferExit
→ ECUReset → read DID F195 back (retrying while the ECU reboots) and compare with the image version.
Each step that fails raises :class:`FlashError` with the step, and the negative response code and
name (or that no response came).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import can
import isotp
import udsoncan
from udsoncan.client import Client
from udsoncan.connections import PythonIsoTpConnection
from udsoncan.exceptions import NegativeResponseException, TimeoutException, UnexpectedResponseException
from udsoncan.exceptions import InvalidResponseException

from hil.errors import FlashError
from hil.firmware.image import Image, RawImage
from hil.flash import FlashJob, FlashMethod, FlashProgress, no_progress
from hil.protocol.seedkey import key_function
from hil.protocol.uds import DID_BOOT_VERSION, DID_SOFTWARE_VERSION, DID_VIN, ERASE_MEMORY, EXTENDED, HARD_RESET, PROGRAMMING, isotp_params
from hil.spec.rig import UdsFlash

RESPONSE_TIMEOUT_S = 2.0
REBOOT_TIMEOUT_S = 10.0
RETRY_PAUSE_S = 0.1  # between version reads while the ECU reboots


class _Text(udsoncan.DidCodec):
    """A DID holding text of any length (F195, F190, F180)."""

    def encode(self, value: str) -> bytes:
        return value.encode()

    def decode(self, payload: bytes) -> str:
        return bytes(payload).decode(errors="replace")

    def __len__(self) -> int:
        raise udsoncan.DidCodec.ReadAllRemainingData


class _Answers(PythonIsoTpConnection):
    """An ISO-TP connection that hands the client only answers to its last request. An ECU that
    took a reset's version poll twice while it booted answers twice; the late answer belongs to no
    request of this tester (nor of the next one on the bus) and is dropped."""

    _sid: int | None = None

    def specific_send(self, payload: bytes, timeout: float | None = None) -> None:
        self._sid = payload[0]
        super().specific_send(payload, timeout)

    def specific_wait_frame(self, timeout: float | None = None) -> bytes | None:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            frame = super().specific_wait_frame(None if end is None else max(0.0, end - time.monotonic()))
            sid = self._sid
            if not frame or sid is None or frame[0] == sid + 0x40 or frame[:2] == bytes([0x7F, sid]):
                return frame


class UdsFlasher:
    """A udsoncan client on ``bus`` addressed as ``spec`` says; one method per flashing step."""

    def __init__(self, bus: can.BusABC, spec: UdsFlash, timeout_s: float = RESPONSE_TIMEOUT_S):
        self.spec = spec
        while bus.recv(0) is not None:  # frames queued before the tester connected are not answers
            pass
        self._notifier = can.Notifier(bus, [], timeout=0.1)
        address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=spec.tx_id, rxid=spec.rx_id)
        self._stack = isotp.NotifierBasedCanStack(bus, self._notifier, address=address, params=isotp_params())
        algo = key_function(spec.key)
        config = udsoncan.configs.default_client_config.copy()
        config.update({"request_timeout": timeout_s * 2, "p2_timeout": timeout_s, "p2_star_timeout": timeout_s * 5,
                       "use_server_timing": False, "security_algo": lambda level, seed, params: algo(level, seed),
                       "data_identifiers": {d: _Text for d in (DID_SOFTWARE_VERSION, DID_VIN, DID_BOOT_VERSION)}})
        self.client = Client(_Answers(self._stack), config=config)
        self.client.logger.addHandler(logging.NullHandler())  # failures surface as FlashError instead
        self.client.logger.propagate = False
        self.client.open()
        self.block_length = 0

    def close(self) -> None:
        self.client.close()
        self._notifier.stop()

    def __enter__(self) -> UdsFlasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- steps ---------------------------------------------------------------------------------

    def session(self, session: int) -> None:
        name = {PROGRAMMING: "programming", EXTENDED: "extended"}.get(session, f"{session:#04x}")
        with _step(f"DiagnosticSessionControl {name}"):
            self.client.change_session(session)

    def unlock(self) -> None:
        with _step(f"SecurityAccess level {self.spec.security_level}"):
            self.client.unlock_security_access(self.spec.security_level)

    def erase(self, address: int, size: int) -> None:
        option = b"\x44" + address.to_bytes(4, "big") + size.to_bytes(4, "big")
        with _step(f"RoutineControl erase {size} bytes at {address:#010x}"):
            self.client.start_routine(ERASE_MEMORY, option)

    def request_download(self, address: int, size: int) -> int:
        """Returns the data bytes per TransferData block the ECU accepts."""
        location = udsoncan.MemoryLocation(address, size, address_format=32, memorysize_format=32)
        with _step(f"RequestDownload {size} bytes at {address:#010x}"):
            response = self.client.request_download(location)
        assert response is not None  # None only for a suppressed positive response, never asked for here
        self.block_length = response.service_data.max_length - 2
        return self.block_length

    def transfer(self, counter: int, data: bytes) -> None:
        with _step(f"TransferData block counter {counter}"):
            self.client.transfer_data(counter, data)

    def transfer_exit(self) -> None:
        with _step("RequestTransferExit"):
            self.client.request_transfer_exit()

    def reset(self) -> None:
        with _step("ECUReset hard"):
            self.client.ecu_reset(HARD_RESET)

    def read_text(self, did: int) -> str:
        with _step(f"ReadDataByIdentifier {did:#06x}"):
            return self.client.read_data_by_identifier_first(did)

    def read_version(self, timeout_s: float = REBOOT_TIMEOUT_S) -> str:
        """F195 once the ECU answers again after a reset (it may miss requests while rebooting)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.read_text(DID_SOFTWARE_VERSION)
            except FlashError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(RETRY_PAUSE_S)  # a quick "not now" (a negative response) must not flood the bus


def flash(bus: can.BusABC, spec: UdsFlash, image: Image | RawImage, progress: FlashProgress = no_progress) -> str:
    """Download ``image`` at ``spec.address``, reset, and check F195; returns the version read back."""
    data, address = image.to_bytes(), spec.address
    with UdsFlasher(bus, spec) as uds:
        progress("session", 0, 1)
        uds.session(EXTENDED)
        uds.session(PROGRAMMING)
        uds.unlock()
        progress("session", 1, 1)
        progress("erase", 0, 1)
        uds.erase(address, len(data))
        progress("erase", 1, 1)
        step = uds.request_download(address, len(data))
        for i, off in enumerate(range(0, len(data), step)):
            uds.transfer((i + 1) & 0xFF, data[off:off + step])
            progress("transfer", min(off + step, len(data)), len(data))
        uds.transfer_exit()
        uds.reset()
        progress("verify", 0, 1)
        version = uds.read_version()
        if version != image.version:
            raise FlashError(f"uds read back F195: expected software version {image.version!r}, "
                             f"the ECU reports {version!r}")
        progress("verify", 1, 1)
        return version


@contextmanager
def _step(step: str) -> Iterator[None]:
    try:
        yield
    except NegativeResponseException as exc:
        r = exc.response
        raise FlashError(f"uds {step}: negative response {r.code:#04x} {r.code_name}") from None
    except TimeoutException as exc:
        raise FlashError(f"uds {step}: no response ({exc})") from None
    except (UnexpectedResponseException, InvalidResponseException) as exc:
        raise FlashError(f"uds {step}: unexpected response: {exc}") from None


class UdsMethod(FlashMethod):
    """``method: uds``: the download on the rig's CAN bus; an emulated MCU runs its application
    (whose UDS server takes the download), so it boots without BOOT0."""

    boot0 = False

    def flash(self, job: FlashJob) -> None:
        assert isinstance(job.spec, UdsFlash)  # the registry runs this method for its own model
        bus = job.buses.open_can(job.spec.bus)
        try:
            flash(bus, job.spec, job.image, progress=job.progress)
        finally:
            bus.shutdown()
