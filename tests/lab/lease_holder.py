"""A process that holds a rig's lease until told to let go: the other side of the lease tests.

Usage: python lease_holder.py RIG [WAIT_SECONDS] [fork] [hang]
Prints one JSON line once the lease is held, then waits for a line on stdin (or EOF) and releases it.
With ``fork`` it first forks a child that sleeps on (to show the child does not keep the lock); with
``hang`` its teardown never finishes (to show that SIGTERM still ends it). Like every entry point it
installs the stop policy, and exits as the CLI does when stopped.
"""

import json
import logging
import os
import sys
import time
from dataclasses import asdict

from hil.bench.lease import Lease
from hil.errors import RigBusyError
from hil.lifecycle import signals

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
signals.install()
rig = sys.argv[1]
wait = float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] != "-" else None
try:
    with Lease(rig, wait=wait, command="lease_holder " + rig) as lease:
        child = os.fork() if "fork" in sys.argv[3:] else None
        if child == 0:  # let go of the test's pipes, keep everything else (the lock fd included)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            time.sleep(600)
            os._exit(0)
        try:  # the signal tests send theirs once this line is out: be inside the try by then
            print(json.dumps({**asdict(lease.record), "child": child}), flush=True)
            sys.stdin.readline()
        finally:
            print("finally ran", file=sys.stderr, flush=True)
            while "hang" in sys.argv[3:]:
                time.sleep(1)
except RigBusyError as exc:
    print(f"busy: {exc}", file=sys.stderr, flush=True)
    sys.exit(exc.exit_code)
except KeyboardInterrupt as exc:
    sys.exit(signals.stopped(exc).exit_code)
