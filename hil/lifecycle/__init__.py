"""The process-lifecycle layer: how hil's processes start, stop and end together.

* :mod:`hil.lifecycle.signals` — one stop policy (SIGINT, SIGTERM, SIGHUP), installed once by each
  entry point, and the watchdog that bounds the teardown after a stop;
* :mod:`hil.lifecycle.children` — the one supervisor of every child process hil starts: how its
  argv and environment are built, how it is watched, and how it ends with everything it started;
* :mod:`hil.lifecycle.leash` — the supervising process a target's component runs under;
* :mod:`hil.lifecycle.procfs` — what the kernel says about processes (and lock holders) in /proc;
* :mod:`hil.cancel` — cooperative cancellation of a run in a thread.

Importing this package imports nothing else: the leash starts with it.
"""

#: In a supervised process's environment: the pid of the process that supervises it.
SUPERVISOR_ENV = "HIL_SUPERVISOR"
#: In every process of a supervised tree: the token naming the tree (inherited by all it starts).
TREE_ENV = "HIL_TREE"
