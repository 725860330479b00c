"""Synthetic approach scene for the AEB demo's camera and lidar: JPEG frames and VLP-16 packets.

The scene of make_stimulus.py's approach scenarios, seen by a front camera (30 fps, a red car rear
on a grey road under a blue sky, pinhole model) and a VLP-16 lidar on the roof (600 rpm, the car
rear as a box face, the road as a plane), from log time 1 s like the CAN logs so all sources start
together. Written as an MCAP of ``foxglove.CompressedImage`` (topic /camera/front) and a pcap of
UDP datagrams to 192.168.1.201:2368, as a Velodyne sends them. Both are made when needed (tests,
benches), never committed:

    python benches/aeb/scene.py [SCENARIO] [OUT_DIR] [--width W --height H]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hil.net import vlp16

HERE = Path(__file__).resolve().parent
START_NS = 1_000_000_000  # log time of the first frame / packet, as in make_stimulus.py
FPS = 30
CAMERA_TOPIC = "/camera/front"
LIDAR_DESTINATION = ("192.168.1.201", vlp16.PORT)
LIDAR_SOURCE = ("192.168.1.200", 2368)
FOXGLOVE_IMAGE_SCHEMA = {
    "type": "object", "title": "foxglove.CompressedImage",
    "properties": {"timestamp": {"type": "object", "properties": {"sec": {"type": "integer"},
                                                                   "nsec": {"type": "integer"}}},
                   "frame_id": {"type": "string"}, "data": {"type": "string", "contentEncoding": "base64"},
                   "format": {"type": "string"}}}


@dataclass(frozen=True)
class Scene:
    """An object ahead at ``distance`` m at the start, closing at ``closing`` m/s, seen from
    ``appears`` s on (make_stimulus.py's parameters); the sensors' mounting and the object's size."""

    seconds: float = 3.5
    distance: float = 60.0
    closing: float = 15.0
    appears: float = 0.0
    object_width: float = 1.8
    object_height: float = 1.5
    camera_height: float = 1.3
    lidar_height: float = 1.8
    min_distance: float = 1.0

    def distance_at(self, t_ns: np.ndarray | int) -> np.ndarray:
        """Distance to the object at log time ``t_ns`` (inf before it appears)."""
        t = (np.asarray(t_ns, dtype=float) - START_NS) / 1e9 - self.appears
        return np.where(t >= 0, np.maximum(self.distance - self.closing * t, self.min_distance), np.inf)


def focal_px(width: int) -> float:
    """The camera's focal length in pixels: a 60° horizontal field of view."""
    return width / 2 / np.tan(np.radians(30))


def frame(scene: Scene, t_ns: int, width: int, height: int, quality: int = 85, noise: float = 0.0) -> bytes:
    """One camera frame at log time ``t_ns`` as a baseline JPEG (4:2:0, standard tables); ``noise``
    (sensor noise, standard deviation in grey levels) makes it as large as a real camera's."""
    img = np.empty((height, width, 3), np.uint8)
    horizon = height // 2
    img[:horizon] = (135, 170, 205)
    img[horizon:] = (70, 70, 72)
    f, d = focal_px(width), float(scene.distance_at(t_ns))
    below = np.arange(height - horizon)[:, None]  # a road row: the ground at f * camera_height / below
    offset = np.abs(np.abs(np.arange(width)[None, :] - width / 2) - 1.75 * below / scene.camera_height)
    img[horizon:][offset < 1 + below / 60] = (220, 220, 220)  # lane lines 1.75 m left and right
    if np.isfinite(d):
        half = f * scene.object_width / 2 / d
        left, right = int(round(width / 2 - half)), int(round(width / 2 + half))
        bottom = int(round(horizon + f * scene.camera_height / d))
        top = int(round(horizon + f * (scene.camera_height - scene.object_height) / d))
        img[max(top, 0):min(bottom, height), max(left, 0):min(right, width)] = (190, 25, 30)
    if noise:
        img = np.clip(img + np.random.default_rng(t_ns).normal(0, noise, img.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(img).save(out, "JPEG", quality=quality, subsampling=2)
    return out.getvalue()


def frames(scene: Scene, width: int, height: int) -> Iterator[tuple[int, bytes]]:
    """(log time ns, JPEG) of every frame of the scene, 30 per second."""
    for i in range(int(scene.seconds * FPS)):
        t = START_NS + i * 1_000_000_000 // FPS
        yield t, frame(scene, t, width, height)


def lidar_ranges(scene: Scene):
    """The scene as a VLP-16 range function: the object's rear face, else the road, else nothing."""

    def ranges(azimuth: np.ndarray, elevation: np.ndarray, t_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = scene.distance_at(t_ns)
        cos_el, sin_el = np.cos(elevation), np.sin(elevation)
        ahead = np.cos(azimuth) * cos_el
        with np.errstate(divide="ignore", invalid="ignore"):
            to_face = np.where(ahead > 0, d / ahead, np.inf)
            x, z = to_face * cos_el * np.sin(azimuth), to_face * sin_el
            hit = (np.abs(x) <= scene.object_width / 2) & (z >= -scene.lidar_height) \
                & (z <= scene.object_height - scene.lidar_height) & np.isfinite(to_face)
            to_road = np.where(sin_el < 0, scene.lidar_height / -sin_el, np.inf)
        distance = np.where(hit, to_face, np.where(to_road < 100, to_road, 0.0))
        return distance, np.where(hit, 100, np.where(distance > 0, 20, 0))

    return ranges


def lidar_packets(scene: Scene) -> Iterator[tuple[int, bytes]]:
    """(log time ns, 1206-byte payload) of every VLP-16 packet of the scene, 753.5 per second."""
    return vlp16.spin(lidar_ranges(scene), START_NS, int(scene.seconds * 1e9 / vlp16.PACKET_NS))


def write_mcap(path: Path, images: Iterator[tuple[int, bytes]], topic: str = CAMERA_TOPIC) -> int:
    """The images as ``foxglove.CompressedImage`` (JSON) messages on ``topic``; returns how many."""
    from mcap.writer import Writer

    n = 0
    with path.open("wb") as f:
        writer = Writer(f)
        writer.start()
        schema = writer.register_schema("foxglove.CompressedImage", "jsonschema",
                                        json.dumps(FOXGLOVE_IMAGE_SCHEMA).encode())
        channel = writer.register_channel(topic, "json", schema)
        for t, jpeg in images:
            msg = {"timestamp": {"sec": t // 1_000_000_000, "nsec": t % 1_000_000_000}, "frame_id": "camera_front",
                   "format": "jpeg", "data": base64.b64encode(jpeg).decode()}
            writer.add_message(channel, log_time=t, publish_time=t, data=json.dumps(msg).encode(), sequence=n)
            n += 1
        writer.finish()
    return n


def write_pcap(path: Path, datagrams: Iterator[tuple[int, bytes]], source=LIDAR_SOURCE,
               destination=LIDAR_DESTINATION) -> int:
    """The datagrams as Ethernet/IPv4/UDP packets in a ns-resolution pcap; returns how many."""
    from hil.net.capture import udp_frame, write_pcap as write_frames

    frames = [(t, udp_frame(source, destination, payload)) for t, payload in datagrams]
    with path.open("wb") as f:
        write_frames(f, frames)
    return len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="approach")
    parser.add_argument("out", nargs="?", type=Path, default=HERE / "stimulus")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    from make_stimulus import SCENARIOS  # noqa: E402  (beside this script)

    seconds, distance, closing, _speed, appears = SCENARIOS[args.scenario]
    scene = Scene(seconds, distance, closing, appears)
    args.out.mkdir(parents=True, exist_ok=True)
    images = write_mcap(args.out / f"{args.scenario}-camera.mcap", frames(scene, args.width, args.height))
    packets = write_pcap(args.out / f"{args.scenario}-lidar.pcap", lidar_packets(scene))
    print(f"wrote {images} frames and {packets} lidar packets to {args.out}")


if __name__ == "__main__":
    main()
