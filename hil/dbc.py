"""DBC files: the one loader every part of hil reads them with.

A DBC a spec names is read through :mod:`hil.files` — a regular file of at most ``DBC_FILE.limit``
bytes, so ``/dev/urandom`` or a FIFO is refused at once instead of filling memory or hanging — then
decoded as cp1252 (the DBC convention, and cantools' default) and parsed by cantools. Parsing costs
about 2 s and 80 MB per MiB of DBC, which is why the limit is what it is (docs/specs.md). Every
problem is a :class:`~hil.files.FileRefused` naming the file; callers raise it as their own kind.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.files import FileRefused, read_bytes
from hil.spec.common import DBC_FILE

if TYPE_CHECKING:  # cantools costs its import only where a DBC is read
    from cantools.database.can import Database


def load_dbc(paths: Iterable[str | Path]) -> Database:
    """The DBC files ``paths`` merged into one cantools database (empty when there are none)."""
    db = _database()
    for path in paths:
        add_dbc(db, path)
    return db


def load_dbc_data(texts: Mapping[str, bytes]) -> Database:
    """DBC files already read (name → bytes, as a firmware image carries them) merged into one
    cantools database, decoded and parsed as a DBC file is."""
    db = _database()
    for name, data in texts.items():
        add_dbc_data(db, data, name)
    return db


def _database() -> Database:
    import cantools

    return cantools.database.can.Database()


def add_dbc(db: Database, path: str | Path) -> None:
    """Merge the DBC file ``path`` into the cantools database ``db``."""
    add_dbc_data(db, read_bytes(path, DBC_FILE.limit, DBC_FILE.what), path)


def add_dbc_data(db: Database, data: bytes, path: str | Path) -> None:
    """Merge DBC text ``data`` (from ``path``, named in errors) into the cantools database ``db``."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"{DBC_FILE.what} {path} is not DBC text (byte {data[exc.start]:#04x} at offset "
                          f"{exc.start} is no cp1252 character)") from None
    try:
        db.add_dbc_string(text)
    except Exception as exc:  # cantools raises parser-specific errors (textparser, its own Error, …)
        raise FileRefused(f"{DBC_FILE.what} {path} cannot be parsed: {' '.join(str(exc).split())[:300]}") from None


#: The comparisons a frame condition (``op`` of :class:`hil.spec.match.FrameMatch`) may name.
OPS: dict[str, Callable[[Any, Any], bool]] = {"==": operator.eq, "!=": operator.ne, "<": operator.lt,
                                               "<=": operator.le, ">": operator.gt, ">=": operator.ge}


# message: a cantools Message (None without a signal); Any, as cantools types decode() as a union of shapes
def signal_holds(message: Any, data: bytes | bytearray, signal: str | None, op: str | None, value: float | None) -> bool:
    """Whether a frame's payload, decoded as the DBC ``message``, satisfies ``signal op value`` —
    the one evaluation of a frame condition, for ready checks and closed-loop waits alike. No
    signal: any payload holds; a signal without ``op``: any payload it decodes from; a payload that
    does not decode satisfies nothing."""
    if signal is None:
        return True
    try:
        decoded = message.decode(bytes(data), decode_choices=False)[signal]
    except Exception:  # cantools raises per codec (too short, bad choice, ...)
        return False
    return op is None or OPS[op](decoded, value)
