"""Stimulus: recorded streams (CAN logs, MCAP, serial captures) put back onto a rig's buses with
exact timing.

``readers.read_source`` reads and checks a file; ``timeline.build_timeline(stimulus, rig)`` merges
sources into play steps; ``injector.play(timeline, buses)`` plays them from its own process and
returns a ``report.ReplayReport``. Submodules are imported where used, so importing this package
stays cheap.
"""
