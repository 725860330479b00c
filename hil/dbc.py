"""DBC files: the one loader every part of hil reads them with.

A DBC a spec names is read through :mod:`hil.files` — a regular file of at most ``DBC_FILE.limit``
bytes, so ``/dev/urandom`` or a FIFO is refused at once instead of filling memory or hanging — then
decoded as cp1252 (the DBC convention, and cantools' default) and parsed by cantools. Parsing costs
about 2 s and 80 MB per MiB of DBC, which is why the limit is what it is (docs/specs.md). Every
problem is a :class:`~hil.files.FileRefused` naming the file; callers raise it as their own kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hil.files import FileRefused, read_bytes
from hil.spec.common import DBC_FILE


def load_dbc(paths: Iterable[str | Path]) -> Any:
    """The DBC files ``paths`` merged into one cantools database (empty when there are none)."""
    import cantools

    db = cantools.database.can.Database()
    for path in paths:
        add_dbc(db, path)
    return db


def add_dbc(db: Any, path: str | Path) -> None:
    """Merge the DBC file ``path`` into the cantools database ``db``."""
    data = read_bytes(path, DBC_FILE.limit, DBC_FILE.what)
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"{DBC_FILE.what} {path} is not DBC text (byte {data[exc.start]:#04x} at offset "
                          f"{exc.start} is no cp1252 character)") from None
    try:
        db.add_dbc_string(text)
    except Exception as exc:  # cantools raises parser-specific errors (textparser, its own Error, …)
        raise FileRefused(f"{DBC_FILE.what} {path} cannot be parsed: {' '.join(str(exc).split())[:300]}") from None
