"""What a checked stack bundle costs: build (hash, pack, read back), read (every header and the
manifest checked), unpack (checked, extracted, every checksum verified) — next to GNU tar packing
and unpacking the same tree with gzip in the same run (the anchor: no checks at all).

    python benchmarks/bundle.py [--files N] [--mib M] [--runs R] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from hil.spec.stack import ProcessComponent
from hil.targets import bundle


def make_tree(root: Path, files: int, mib: int) -> None:
    """``files`` files of ``mib`` MiB in all, half random bytes (binaries), half text (configs), in
    nested folders, with a few links."""
    rng = random.Random(12)
    size = mib * 2**20 // files
    for i in range(files):
        path = root / f"d{i % 17}" / f"e{i % 5}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(size) if i % 2 else (f"key_{i} = {i * 0.5}\n" * (size // 16 + 1)).encode()[:size]
        path.write_bytes(data)
    for i in range(min(files, 20)):
        os.symlink(f"e{i % 5}/f{i}.bin", root / f"d{i % 17}" / f"link{i}")


def seconds(action, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        action()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hil-bench-bundle-") as tmp:
        tmp = Path(tmp)
        make_tree(tmp / "app", args.files, args.mib)
        comp = ProcessComponent(kind="process", target="hpc", files=[str(tmp / "app")], argv=["true"])
        out, anchor = tmp / "b.tar.gz", tmp / "anchor.tar.gz"

        def unpack() -> None:
            shutil.rmtree(tmp / "dest", ignore_errors=True)
            bundle.unpack(out, tmp / "dest")

        def tar_x() -> None:
            shutil.rmtree(tmp / "tar-dest", ignore_errors=True)
            (tmp / "tar-dest").mkdir()
            subprocess.run(["tar", "-xzf", str(anchor), "-C", str(tmp / "tar-dest")], check=True)

        cases = {
            "GNU tar -czf (anchor)": lambda: subprocess.run(["tar", "-czf", str(anchor), "-C", str(tmp), "app"],
                                                            check=True),
            "hil bundle build": lambda: bundle.build("bench", "1", {"app": comp}, out),
            "GNU tar -xzf (anchor)": tar_x,
            "hil bundle read": lambda: bundle.read(out),
            "hil bundle unpack + verify": unpack,
        }
        results = {}
        for name, action in cases.items():
            times = seconds(action, args.runs)
            results[name] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                             "runs": args.runs}
        results["tree"] = {"files": args.files, "mib": args.mib, "bundle_bytes": out.stat().st_size,
                           "anchor_bytes": anchor.stat().st_size}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, r in results.items():
            if "median_s" in r:
                print(f"{name:30s} median {r['median_s']:7.3f} s   min {r['min_s']:7.3f} s")
        print(f"tree: {results['tree']}")


if __name__ == "__main__":
    main()
