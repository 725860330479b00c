"""A python-can reader plugin (``can.io.message_reader``, suffix ``.canl``): ``SECONDS ID HEXDATA``
per line. hil reads it through python-can's reader table — no hil entry point — also ``.gz``."""

from __future__ import annotations

from collections.abc import Iterator

import can
from can.io.generic import TextIOMessageReader


class CanLinesReader(TextIOMessageReader):
    def __iter__(self) -> Iterator[can.Message]:
        for line in self.file:
            t, can_id, data = line.split()
            yield can.Message(timestamp=float(t), arbitration_id=int(can_id, 16), data=bytes.fromhex(data),
                              is_extended_id=False, channel="can0")
        self.stop()
