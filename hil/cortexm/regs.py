"""Fast access to a fixed set of 32-bit core registers.

unicorn's Python binding picks a ctypes type per register on every call (~10 µs a batch); the
machine reads and writes the same few registers at every exception, many thousand times a
second. A :class:`RegisterSet` prepares the id and value arrays once and calls unicorn's own
``uc_reg_read_batch`` / ``uc_reg_write_batch`` on them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from unicorn import Uc, UcError
from unicorn.unicorn_py3.unicorn import uclib


class RegisterSet:
    def __init__(self, ids: Sequence[int]):
        self.count = len(ids)
        self.ids = (ctypes.c_int * self.count)(*ids)
        self.values = (ctypes.c_uint32 * self.count)()
        self.pointers = (ctypes.c_void_p * self.count)(
            *(ctypes.addressof(self.values) + 4 * i for i in range(self.count)))

    def read(self, uc: Uc) -> list[int]:
        status = uclib.uc_reg_read_batch(uc._uch, self.ids, self.pointers, self.count)
        if status:
            raise UcError(status)
        return list(self.values)

    def write(self, uc: Uc, values: Sequence[int]) -> None:
        for i, value in enumerate(values):
            self.values[i] = value & 0xFFFF_FFFF
        status = uclib.uc_reg_write_batch(uc._uch, self.ids, self.pointers, self.count)
        if status:
            raise UcError(status)
