"""One component, three behaviours for the lab tests (argv[1]):

flaky   fails the first time it starts (marker in $HIL_FLAKY_DIR), works from then on — an
        infrastructure hiccup that a retry gets past
health  works while $HIL_HEALTH_FILE says "good", fails otherwise — the rig's health
idle    just works
"""

import os
import sys
import time
from pathlib import Path

mode = sys.argv[1]
if mode == "flaky":
    marker = Path(os.environ["HIL_FLAKY_DIR"]) / "started-once"
    if not marker.exists():
        marker.touch()
        print("power glitch", flush=True)
        sys.exit(3)
if mode == "health" and Path(os.environ["HIL_HEALTH_FILE"]).read_text().strip() != "good":
    print("bus dead", flush=True)
    sys.exit(1)
print("up", flush=True)
time.sleep(3600)
