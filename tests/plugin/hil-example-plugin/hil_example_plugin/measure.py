"""``source: {kind: gap, bus: NAME, id: ID}``: the longest silence between two frames of an id on a
bus — how long a consumer of that frame went without news."""

from __future__ import annotations

from typing import Literal

import numpy as np

from hil.analysis.bench import Evidence, Source
from hil.analysis.measure import MeasurementResult, judge, ns_to
from hil.analysis.signals import frames_with_id
from hil.spec.common import CanId, Name
from hil.spec.suite import Measurement, SourceSpec


class GapSpec(SourceSpec):
    kind: Literal["gap"]
    bus: Name
    id: CanId


class GapSource(Source):
    model = GapSpec

    def measure(self, m: Measurement, got: Evidence) -> MeasurementResult:
        t = frames_with_id(got.buses, self.spec.bus, self.spec.id).t_ns
        where = f"gap {self.spec.id:#x} on {self.spec.bus}"
        if len(t) < 2:
            return judge(m, None, where, detail=f"{len(t)} frame(s): no gap to measure")
        return judge(m, ns_to(m.unit, float(np.diff(t).max())), where)
