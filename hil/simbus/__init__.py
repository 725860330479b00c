"""simbus: the emulated CAN bus shared by processes, and emulated serial links.

One broker process per running rig (:mod:`hil.simbus.broker`) serves every emulated CAN bus over a
Unix socket and every emulated serial link as a pair of ptys. Programs join a bus through the
python-can interface ``simcan`` (:mod:`hil.simbus.plugin`). The broker simulates the wire
(:mod:`hil.simbus.wire`: frame duration, arbitration, end-of-frame timestamps) and injects faults
(:mod:`hil.simbus.faults`). Most code never imports this package: :mod:`hil.buses` brings the broker
up for a rig and hands out buses.
"""
