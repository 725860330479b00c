"""The AEB planner's perception: distance to the object ahead from a camera frame or a lidar packet.

Deliberately simple numpy, enough for scene.py's world: the camera finds the red car rear and
takes its distance from its width in pixels (pinhole: d = f · W / w); the lidar takes the nearest
return inside the lane, above the road, ahead.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hil.net import vlp16

MIN_COLUMNS = 3  # an object narrower than this many columns (at the decoded scale) is not reported


def camera_distance(jpeg: bytes, focal_px: float, object_width: float, max_width: int = 640) -> float | None:
    """Distance (m) to the red object in a frame whose full-size focal length is ``focal_px``;
    None if there is none. Large frames are decoded at a reduced scale (JPEG draft mode)."""
    img = Image.open(io.BytesIO(jpeg))
    full = img.width
    img.draft("RGB", (max_width, max_width * img.height // img.width))
    rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    red = (rgb[..., 0] > 140) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
    columns = np.flatnonzero(red.sum(axis=0) >= 2)
    if len(columns) < MIN_COLUMNS:
        return None
    width_px = (columns[-1] - columns[0] + 1) * full / rgb.shape[1]
    return focal_px * object_width / width_px


def lidar_distance(payload: bytes, lane_half_width: float = 1.5, sensor_height: float = 1.8,
                   above_road: float = 0.3) -> float | None:
    """Distance (m, forward) to the nearest return of a VLP-16 packet in the lane ahead and above
    the road; None if the packet has none."""
    pts = vlp16.points(vlp16.decode(payload))
    ahead = pts[(pts[:, 1] > 0.5) & (np.abs(pts[:, 0]) < lane_half_width) & (pts[:, 2] > above_road - sensor_height)]
    return float(ahead[:, 1].min()) if len(ahead) else None
