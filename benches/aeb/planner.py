"""AEB planner (runs on the HPC): radar object, camera frames, lidar packets and wheel speed in,
brake requests out.

For every RadarObject frame on the sensor bus, and for every camera frame (RTP/JPEG) and lidar
packet (VLP-16) that shows the object, it takes the distance to the object ahead (the nearest of
the sensors' estimates from the last ``fresh`` seconds), the time to collision (distance / closing
speed: the radar's, else the vehicle's speed) and sends one BrakeRequest on the chassis bus
(brake_ecu DBC), with a rolling 4-bit counter: full deceleration below ``ttc_brake``, partial below
``ttc_warn``, none otherwise. Before a request that a camera frame or lidar packet caused, it sends
a CameraObject (with the frame's RTP timestamp) or a LidarObject (with the packet's timestamp), so
probes pair each hop. Configuration comes as JSON in HIL_CONFIG, the buses from HIL_BUSES
(hil.buses.bus_from_env); the camera and lidar listen on the ports named ``camera`` and ``lidar``
of network ``network`` in HIL_NETS, if the target has them (else the planner is radar only).
"""

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import can
import cantools

from hil import net
from hil.buses import bus_from_env
from hil.net.rtpjpeg import depacketize
from perception import camera_distance, lidar_distance

HERE = Path(__file__).resolve().parent
OBJECTS = {"camera": ("CameraObject", "FrameTimestamp", "CameraCounter"),
           "lidar": ("LidarObject", "PacketTimestamp", "LidarCounter")}


class Planner:
    """The decision shared by the radar loop and the camera and lidar threads."""

    def __init__(self, cfg: dict, db: cantools.database.Database, chassis: can.BusABC):
        self.cfg, self.db, self.chassis = cfg, db, chassis
        self.request = db.get_message_by_name("BrakeRequest")
        self.lock = threading.Lock()
        self.estimates: dict[str, tuple[float, float]] = {}  # source → (distance m, monotonic s)
        self.closing: float | None = None
        self.speed, self.counter, self.level = 0.0, 0, None
        self.object_counters = dict.fromkeys(OBJECTS, 0)

    def on_radar(self, obj: dict) -> None:
        with self.lock:
            self.closing = obj["ClosingSpeed"] if obj["ObjectValid"] else None
            self._estimate("radar", obj["ObjectDistance"] if obj["ObjectValid"] else None)
            self._decide()

    def on_sensor(self, source: str, distance: float | None, stamp: int) -> None:
        """A camera frame or lidar packet: its object message and a BrakeRequest, if it saw the object."""
        if distance is None:
            return
        name, stamp_signal, counter_signal = OBJECTS[source]
        obj = self.db.get_message_by_name(name)
        with self.lock:
            self._estimate(source, distance)
            data = obj.encode({stamp_signal: stamp & 0xFFFFFFFF, "ObjectDistance": min(distance, 655.35),
                               counter_signal: self.object_counters[source]})
            self.chassis.send(can.Message(arbitration_id=obj.frame_id, data=data, is_extended_id=False))
            self.object_counters[source] = (self.object_counters[source] + 1) % 16
            self._decide()

    def _estimate(self, source: str, distance: float | None) -> None:
        if distance is None:
            self.estimates.pop(source, None)
        else:
            self.estimates[source] = (distance, time.monotonic())

    def _decide(self) -> None:
        cfg, now = self.cfg, time.monotonic()
        fresh = [d for d, t in self.estimates.values() if now - t <= cfg["fresh"]]
        closing = self.closing if self.closing is not None else self.speed
        ttc = min(fresh) / closing if fresh and closing > cfg["min_closing"] else float("inf")
        decel = cfg["full_decel"] if ttc < cfg["ttc_brake"] else cfg["partial_decel"] if ttc < cfg["ttc_warn"] else 0.0
        data = self.request.encode({"RequestCounter": self.counter, "RequestMode": 1, "DecelRequest": decel,
                                    "PressureRequest": 0.0})
        self.chassis.send(can.Message(arbitration_id=self.request.frame_id, data=data, is_extended_id=False))
        self.counter = (self.counter + 1) % 16
        if decel != self.level:
            print(f"planner: ttc {ttc:.2f} s at {self.speed:.1f} m/s -> decel {decel:.1f} m/s^2", flush=True)
            self.level = decel


def _listen(cfg: dict, port_name: str) -> socket.socket | None:
    """A UDP socket on this target's port ``port_name`` of the configured network, if it has one."""
    if not os.environ.get(net.ENV_VAR):
        return None
    me = net.from_env(cfg["network"])
    if port_name not in me["ports"]:
        return None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)  # a 1080p frame arrives as one burst
    sock.bind((me["address"], me["ports"][port_name]))
    return sock


def _datagrams(sock: socket.socket):
    while True:
        yield sock.recv(65536)


def camera_loop(planner: Planner, sock: socket.socket) -> None:
    cfg = planner.cfg
    for frame in depacketize(_datagrams(sock)):
        planner.on_sensor("camera", camera_distance(frame.jpeg, cfg["focal_px"], cfg["object_width"]), frame.timestamp)


def lidar_loop(planner: Planner, sock: socket.socket) -> None:
    for payload in _datagrams(sock):
        if len(payload) == 1206:
            planner.on_sensor("lidar", lidar_distance(payload), int.from_bytes(payload[1200:1204], "little"))


def main() -> int:
    cfg = {"sensor_bus": "sensor", "chassis_bus": "chassis", "ttc_warn": 2.5, "ttc_brake": 1.5,
           "partial_decel": 3.0, "full_decel": 8.0, "min_closing": 0.1, "fresh": 0.3, "network": "lan",
           "focal_px": 554.26, "object_width": 1.8, **json.loads(os.environ.get("HIL_CONFIG", "{}"))}
    db = cantools.database.Database()
    db.add_dbc_file(str(HERE / "aeb.dbc"))
    db.add_dbc_file(str(HERE / "brake.dbc"))
    radar = db.get_message_by_name("RadarObject")
    sensor, chassis = bus_from_env(cfg["sensor_bus"]), bus_from_env(cfg["chassis_bus"])
    planner = Planner(cfg, db, chassis)
    inputs = ["radar"]
    for name, loop in (("camera", camera_loop), ("lidar", lidar_loop)):
        sock = _listen(cfg, name)
        if sock is not None:
            threading.Thread(target=loop, args=(planner, sock), name=name, daemon=True).start()
            inputs.append(f"{name} on {sock.getsockname()[0]}:{sock.getsockname()[1]}")
    print(f"planner: ready ({', '.join(inputs)}), ttc brake {cfg['ttc_brake']} s, warn {cfg['ttc_warn']} s", flush=True)
    try:
        while True:
            msg = sensor.recv(1.0)
            if msg is None or msg.is_error_frame:
                continue
            if msg.arbitration_id == 0x130:
                planner.speed = db.decode_message(0x130, msg.data)["VehicleSpeed"]
            elif msg.arbitration_id == radar.frame_id:
                planner.on_radar(radar.decode(msg.data))
    except KeyboardInterrupt:
        return 0
    finally:
        sensor.shutdown()
        chassis.shutdown()


if __name__ == "__main__":
    sys.exit(main())
