"""A component that leaves a daemon behind, as badly written services do: it forks, the child
calls setsid (its own session and process group) and forks again; the grandchild sleeps on,
reparented away from the component. Then the component itself runs until it is stopped.

With ``scrub`` the daemon also starts afresh with an empty environment (no marker of the run's
tree is left on it); its command line names the test (``HIL_KILL_TEST``) so the test finds it."""

import os
import sys
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        sys.stdout.write(f"daemon {os.getpid()}\n")
        sys.stdout.flush()
        if sys.argv[1:] == ["scrub"]:
            os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)",
                                       f"escaper-daemon-{os.environ.get('HIL_KILL_TEST')}"], {})
        time.sleep(3600)
    os._exit(0)
os.wait()
print("ready", flush=True)
time.sleep(3600)
