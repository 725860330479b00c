"""``pair: exclusive``: each stimulus frame → the first response frame after it, counted only when
no later stimulus came first (the response cannot be told apart otherwise): a request/response
link that must never be overrun."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hil.analysis.probes import MISSING, Pairer, Pairing, pair_next, probe_frames


class ExclusivePairer(Pairer):
    def pair(self, probe, buses: Mapping, db) -> Pairing:
        stim = probe_frames(probe.from_, buses, db).t_ns
        resp = probe_frames(probe.to, buses, db).t_ns
        response = pair_next(stim, resp, probe.window)
        overrun = np.append(stim[1:] <= response[:-1], False) if len(stim) else np.zeros(0, bool)
        return Pairing(stim, np.where(overrun, MISSING, response))
