"""Recording: the lossless MCAP capture of a run, and its loader into numpy columns.

``Recorder(path, buses, names, metadata)`` writes; ``load(path) -> Recording`` reads back;
``export(rec_path, out_path)`` converts to BLF / ASC / MF4 / CSV with python-can's writers.
"""

from hil.recording.loader import RecordedEvent, Recording, load
from hil.recording.recorder import Recorder

__all__ = ["Recorder", "Recording", "RecordedEvent", "load"]
