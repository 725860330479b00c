"""A component for the dispatch test: it only becomes ready once a bench on ANOTHER rig has started
too, so a suite run only passes if benches of different rigs really run at the same time.

Each start leaves a marker ``$HIL_MEET_DIR/<host>-<pid>`` (``HIL_MEET_HOST`` names the test worker,
hence the rig) and waits (at most 120 s) until a marker of another host exists.
"""

import os
import time
from pathlib import Path

meet = Path(os.environ["HIL_MEET_DIR"])
rig = os.environ["HIL_MEET_HOST"]
(meet / f"{rig}-{os.getpid()}").touch()
deadline = time.monotonic() + 120
while not any(not p.name.startswith(rig + "-") for p in meet.iterdir()):
    if time.monotonic() > deadline:
        print("no bench of another rig started within 120 s", flush=True)
        raise SystemExit(1)
    time.sleep(0.05)
print("met", flush=True)
time.sleep(3600)
