"""Reading the files a spec names, safely: a regular file of bounded size, or a clear error.

Every path that comes from a rig, suite or stack (DBC, stimulus, shipped files, images, keys, …) is
opened here. The file is opened without blocking (a FIFO named as a DBC must not hang ``hil check``),
checked on the open descriptor (no race between the check and the read: the checked file is the
one read), and read no further than its limit (a file that grows, or ``/dev/zero`` behind a link,
cannot exhaust memory). Errors are :class:`FileRefused` with the path and the reason, so callers
raise them as their own kind (a spec error at the field's position, a stimulus error, …).

:func:`name_problem` is the other direction: spec text (a stack version, a component name) that
becomes a file name must stay one name in its folder and print as what it is.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

MiB = 1 << 20
GiB = 1 << 30


class FileRefused(Exception):
    """A named file is missing, not a regular file, too large or unreadable; ``str()`` says which."""


@contextmanager
def open_regular(path: str | Path, limit: int, what: str = "file") -> Iterator[BinaryIO]:
    """Open ``path`` for reading as a binary file after checking, on the open descriptor, that it
    is a regular file of at most ``limit`` bytes. ``what`` names it in errors ("DBC file")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileRefused(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise FileRefused(f"cannot open {what} {path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"{what} {path} is not a regular file ({kind_text(st.st_mode)})")
        if st.st_size > limit:
            raise FileRefused(f"{what} {path} is {size_text(st.st_size)}; at most {size_text(limit)} is accepted")
        os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_bytes(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    with open_regular(path, limit, what) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"{what} {path} grew beyond {size_text(limit)} while it was read")
    return data


def read_text(path: str | Path, limit: int, what: str = "file") -> str:
    """:func:`read_bytes` decoded as UTF-8 (an error names the byte offset)."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def name_problem(text: str) -> str | None:
    """Why ``text`` cannot be (part of) one file name, or None: it must be non-empty, not ``.`` or
    ``..``, without ``/``, NUL or other control characters (a newline or a terminal escape), valid
    UTF-8 and at most 255 bytes, so that it names one entry of its folder and prints as itself."""
    if not text:
        return "is empty"
    if text in (".", ".."):
        return f"is {text!r}, which names a folder, not a file"
    if "/" in text:
        return "contains '/'"
    for c in text:
        if unicodedata.category(c) == "Cs":  # an undecodable byte, as os.fsdecode keeps it
            return "is not valid UTF-8"
        if unicodedata.category(c) == "Cc":
            return f"contains the control character {c!r}"
    if (size := len(text.encode())) > 255:
        return f"is {size} bytes; a file name holds at most 255"
    return None


def kind_text(mode: int) -> str:
    """What a file that is not a regular one is, for messages: "a FIFO", "a character device", …"""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def size_text(n: int) -> str:
    """A byte count as people read it: 4,096 bytes, 12.5 MiB."""
    if n >= GiB:
        return f"{n / GiB:,.1f} GiB"
    return f"{n / MiB:,.1f} MiB" if n >= MiB else f"{n:,} bytes"
