"""Lab operations around the suite runner: benches sent to the lab host that owns their rig (Dask:
:mod:`~hil.cluster.worker`, :mod:`~hil.cluster.dispatch`, :mod:`~hil.cluster.tasks`), rig health
(:mod:`~hil.cluster.health`), retries of infrastructure errors (:mod:`~hil.cluster.retry`), several
rigs at once (:mod:`~hil.cluster.lab`) and side by side (:mod:`~hil.cluster.report`). See docs/lab.md."""
