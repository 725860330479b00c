"""Analysis of recordings: latency probes, signal columns, statistics and judged measurements.

Reads only frames (``hil.recording.frames.Frames`` per bus), never a live rig, so any recording can
be analysed again later (``hil analyze``).
"""

from hil.analysis.bench import Analysis, analyse, check_bench
from hil.analysis.measure import MeasurementResult
from hil.analysis.signals import Database
from hil.analysis.stats import Stats, describe

__all__ = ["Analysis", "Database", "MeasurementResult", "Stats",
           "analyse", "check_bench", "describe"]
