"""Benchmark: reading stimulus files strictly (hil.stimulus.readers) against python-can's readers.

hil reads every record of a log and checks it (issue #12); the anchor measured beside it in the
same run is python-can's own reader of the same file (``list(can.LogReader(path))``), which skips
what it cannot parse and checks nothing. Both read the same files written by python-can: classic
and extended frames, 1-8 bytes, two channels.

    python benchmarks/stimulus_read.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import can
from analysis import best_of  # the benchmarks' own timing helper (this folder is on sys.path)

from hil.stimulus.readers import read_source

FORMATS = ("asc", "blf", "trc", "log", "csv")


def write(path: Path, frames: int) -> Path:
    writer = can.Logger(path)
    for i in range(frames):
        writer.on_message_received(can.Message(timestamp=1_700_000_000 + i / 4000, arbitration_id=0x100 + i % 64,
                                               is_extended_id=bool(i % 3 == 0), channel=i % 2,
                                               data=bytes([i % 256] * (1 + i % 8))))
    writer.stop()
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10x fewer frames, one repeat")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = ap.parse_args()
    frames, repeats = (20_000, 1) if args.quick else (200_000, 3)
    result: dict = {"frames": frames, "quick": args.quick, "formats": {}}
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        for fmt in FORMATS:
            path = write(Path(tmp) / f"drive.{fmt}", frames)
            ours = best_of(lambda: read_source(path), repeats)
            theirs = best_of(lambda: list(can.LogReader(path)), repeats)
            result["formats"][fmt] = {"hil_s": ours, "hil_frames_per_s": frames / ours,
                                      "python_can_s": theirs, "python_can_frames_per_s": frames / theirs,
                                      "ratio": ours / theirs}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{frames:,} frames per file, best of {repeats}")
    for fmt, r in result["formats"].items():
        print(f"  {fmt:4}  hil {r['hil_frames_per_s']:>12,.0f} frames/s   python-can {r['python_can_frames_per_s']:>12,.0f}"
              f" frames/s   hil/python-can time {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
