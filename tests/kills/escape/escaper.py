"""A component that leaves a daemon behind, as badly written services do: it forks, the child
calls setsid (its own session and process group) and forks again; the grandchild sleeps on,
reparented away from the component. Then the component itself runs until it is stopped."""

import os
import sys
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        sys.stdout.write(f"daemon {os.getpid()}\n")
        sys.stdout.flush()
        time.sleep(3600)
    os._exit(0)
os.wait()
print("ready", flush=True)
time.sleep(3600)
