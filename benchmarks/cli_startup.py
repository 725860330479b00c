"""How long `hil --help` takes (goal ≤ 300 ms), next to a bare `python -c pass` in the same run.

    python benchmarks/cli_startup.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass (anchor)": [sys.executable, "-c", "pass"],
    "hil --help": [sys.executable, "-m", "hil", "--help"],
    "hil --version": [sys.executable, "-m", "hil", "--version"],
    "hil check rigs/sim-minimal.yaml": [sys.executable, "-m", "hil", "check", "rigs/sim-minimal.yaml"],
}


def wall_ms(argv: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true", help="3 runs each")
    args = ap.parse_args()
    runs = 3 if args.quick else args.runs
    results = {}
    for name, argv in CASES.items():
        times = wall_ms(argv, runs)
        results[name] = {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1),
                         "max_ms": round(max(times), 1), "runs": runs}
    results["goal"] = {"hil --help median_ms": 300}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, r in results.items():
            if "median_ms" in r:
                print(f"{name:36s} median {r['median_ms']:7.1f} ms   min {r['min_ms']:7.1f}   max {r['max_ms']:7.1f}")


if __name__ == "__main__":
    main()
