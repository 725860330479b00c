"""Protocols spoken both by hil's flash clients (which serve real boards) and by the emulated
MCUs they flash: the STM32 bootloader (:mod:`~hil.protocol.an3155`, with its device table), UDS
flashing (:mod:`~hil.protocol.uds`) and the seed → key algorithms (:mod:`~hil.protocol.seedkey`).

Kept below both sides, so a client never imports an emulator to learn a constant.
"""
