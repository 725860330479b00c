"""Rig sessions: one object brings a rig up and down for every entry point (``hil run``'s benches,
the pytest plugin, ``hil deploy``, ``hil replay``, ``hil record``, ``hil flash``).

It sits above the buses, targets and recording it puts together, and below the bench runner:

``rig``       :class:`RigSession` — buses, deployment, recorder and consoles, the recorded-bus rule,
              the hold / deadline / cancel loop, teardown in order on every exit path
``held``      a rig held open for joiners: the descriptor its holder publishes beside the lease
``folders``   the run-folder policy: where each entry point's folder goes and what is in it
``consoles``  console lines into per-source files and the recording
``inject``    the stimulus onto the buses, faults armed at its first frame
"""

from __future__ import annotations

from hil.session.rig import Deadline, RigSession, State

__all__ = ["Deadline", "RigSession", "State"]
