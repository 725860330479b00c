"""UDS (ISO 14229) flashing as hil speaks it on both ends: the tester (:mod:`hil.flash.uds`) and
the emulated ECU (:mod:`hil.firmware.uds`) — sessions, the erase routine, the identifiers read
back, and the ISO-TP settings."""

from __future__ import annotations

from typing import Any

DEFAULT, PROGRAMMING, EXTENDED = 0x01, 0x02, 0x03  # DiagnosticSessionControl sessions
HARD_RESET = 0x01  # ECUReset
ERASE_MEMORY = 0xFF00  # RoutineControl: erase the application's flash
DID_BOOT_VERSION, DID_VIN, DID_SOFTWARE_VERSION = 0xF180, 0xF190, 0xF195


def isotp_params() -> dict[str, Any]:
    """ISO-TP settings both ends use: no flow-control pacing on an emulated bus, 8-byte padded frames."""
    return {"stmin": 0, "blocksize": 0, "tx_padding": 0xAA, "tx_data_min_length": 8,
            "rx_flowcontrol_timeout": 1000, "rx_consecutive_frame_timeout": 1000}
