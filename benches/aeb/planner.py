"""AEB planner (runs on the HPC): radar object + wheel speed in, brake requests out.

For every RadarObject frame on the sensor bus it computes the time to collision (distance / closing
speed) and sends one BrakeRequest on the chassis bus (brake_ecu DBC), with a rolling 4-bit counter:
full deceleration below ``ttc_brake``, partial below ``ttc_warn``, none otherwise. Configuration
comes as JSON in HIL_CONFIG, the buses from HIL_BUSES (hil.buses.bus_from_env).
"""

import json
import os
import sys
from pathlib import Path

import cantools
import can

from hil.buses import bus_from_env

HERE = Path(__file__).resolve().parent


def main() -> int:
    cfg = {"sensor_bus": "sensor", "chassis_bus": "chassis", "ttc_warn": 2.5, "ttc_brake": 1.5,
           "partial_decel": 3.0, "full_decel": 8.0, "min_closing": 0.1, **json.loads(os.environ.get("HIL_CONFIG", "{}"))}
    db = cantools.database.Database()
    db.add_dbc_file(str(HERE / "aeb.dbc"))
    db.add_dbc_file(str(HERE / "brake.dbc"))
    radar, request = db.get_message_by_name("RadarObject"), db.get_message_by_name("BrakeRequest")
    sensor, chassis = bus_from_env(cfg["sensor_bus"]), bus_from_env(cfg["chassis_bus"])
    counter, level, speed = 0, None, 0.0
    print(f"planner: ready, ttc brake {cfg['ttc_brake']} s, warn {cfg['ttc_warn']} s", flush=True)
    try:
        while True:
            msg = sensor.recv(1.0)
            if msg is None or msg.is_error_frame:
                continue
            if msg.arbitration_id == 0x130:
                speed = db.decode_message(0x130, msg.data)["VehicleSpeed"]
                continue
            if msg.arbitration_id != radar.frame_id:
                continue
            obj = radar.decode(msg.data)
            closing = obj["ClosingSpeed"]
            ttc = obj["ObjectDistance"] / closing if obj["ObjectValid"] and closing > cfg["min_closing"] else float("inf")
            decel = cfg["full_decel"] if ttc < cfg["ttc_brake"] else cfg["partial_decel"] if ttc < cfg["ttc_warn"] else 0.0
            data = request.encode({"RequestCounter": counter, "RequestMode": 1, "DecelRequest": decel,
                                   "PressureRequest": 0.0})
            chassis.send(can.Message(arbitration_id=request.frame_id, data=data, is_extended_id=False))
            counter = (counter + 1) % 16
            if decel != level:
                print(f"planner: ttc {ttc:.2f} s at {speed:.1f} m/s -> decel {decel:.1f} m/s^2", flush=True)
                level = decel
    except KeyboardInterrupt:
        return 0
    finally:
        sensor.shutdown()
        chassis.shutdown()


if __name__ == "__main__":
    sys.exit(main())
