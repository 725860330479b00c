"""Generate the AEB demo's stimulus recordings (canutils .log files, small and readable).

Approach-and-brake scenarios on the ``sensor`` channel: a radar object ahead (distance, closing
speed, every 20 ms) and the vehicle speed (every 20 ms, 10 ms apart from the radar); and, for the
calibration suite, plain frames for the echo stub and BrakeRequests for the brake ECU on ``chassis``.

    python benches/aeb/make_stimulus.py [OUT_DIR]     (default: benches/aeb/stimulus)
"""

from __future__ import annotations

import sys
from pathlib import Path

import can
import cantools

HERE = Path(__file__).resolve().parent
PERIOD = 0.020

# name: (seconds, initial distance m, closing speed m/s, vehicle speed m/s, object appears at s)
SCENARIOS = {
    "approach": (3.5, 60.0, 15.0, 15.0, 0.0),
    "cruise": (3.0, 80.0, 0.0, 25.0, 0.0),
    "approach-slow": (5.0, 40.0, 8.0, 8.0, 0.0),
    "cut-in": (2.0, 14.0, 6.0, 20.0, 0.5),
}


def scenario(seconds: float, distance: float, closing: float, speed: float, appears: float, db) -> list[can.Message]:
    radar, wheel = db.get_message_by_name("RadarObject"), db.get_message_by_name("WheelSpeed")
    out = []
    for i in range(int(seconds / PERIOD)):
        t = 1.0 + i * PERIOD  # logs start at 1 s, like a logger switched on before the drive
        seen = t - 1.0 >= appears
        d = max(distance - closing * (t - 1.0 - appears), 1.0) if seen else 0.0
        out.append(can.Message(timestamp=t, arbitration_id=radar.frame_id, channel="sensor", is_extended_id=False,
                               data=radar.encode({"ObjectDistance": d, "ClosingSpeed": closing if seen else 0.0,
                                                  "ObjectValid": int(seen), "RadarCounter": i % 16})))
        out.append(can.Message(timestamp=t + PERIOD / 2, arbitration_id=wheel.frame_id, channel="sensor",
                               is_extended_id=False, data=wheel.encode({"VehicleSpeed": speed, "WheelCounter": i % 16})))
    return out


def echo_frames(seconds: float = 2.0, period: float = 0.010) -> list[can.Message]:
    """0x500 frames with a counter in byte 0: the echo stub answers each on 0x580."""
    return [can.Message(timestamp=1.0 + i * period, arbitration_id=0x500, channel="chassis", is_extended_id=False,
                        data=bytes([i % 256, 0x55, 0xAA, 0, 0, 0, 0, i // 256 % 256])) for i in range(int(seconds / period))]


def brake_requests(db, seconds: float = 2.0) -> list[can.Message]:
    """BrakeRequests with a rolling counter (2 m/s² in deceleration mode): the brake ECU answers each
    with a BrakeCommand echoing the counter."""
    req = db.get_message_by_name("BrakeRequest")
    return [can.Message(timestamp=1.0 + i * PERIOD, arbitration_id=req.frame_id, channel="chassis", is_extended_id=False,
                        data=req.encode({"RequestCounter": i % 16, "RequestMode": 1, "DecelRequest": 2.0,
                                         "PressureRequest": 0.0})) for i in range(int(seconds / PERIOD))]


def write(path: Path, messages: list[can.Message]) -> None:
    with can.CanutilsLogWriter(path) as writer:
        for msg in sorted(messages, key=lambda m: m.timestamp):
            writer.on_message_received(msg)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "stimulus"
    out.mkdir(parents=True, exist_ok=True)
    db = cantools.database.Database()
    db.add_dbc_file(str(HERE / "aeb.dbc"))
    db.add_dbc_file(str(HERE.parent.parent / "firmware_stubs" / "brake_ecu" / "brake.dbc"))
    for name, params in SCENARIOS.items():
        write(out / f"{name}.log", scenario(*params, db))
    write(out / "echo.log", echo_frames())
    write(out / "brake-requests.log", brake_requests(db))
    print(f"wrote {len(SCENARIOS) + 2} stimulus files to {out}")


if __name__ == "__main__":
    main()
