"""The broker ↔ client wire protocol: one struct-packed record per SOCK_SEQPACKET packet.

Every record starts with the same 16-byte header ``<BBBxIq``: record type, flags, DLC, pad,
CAN id, time (ns on the run clock). The payload (frame data, event detail, control JSON) is the rest of
the packet, so no length field and no framing is needed: one ``send`` is one record, one ``recv`` is
one record, and a client's socket is readable exactly when a record is waiting (which keeps
python-can's ``fileno()``-based Notifier honest).

=========  ==================  =====================================================================
type       direction           meaning of ``id`` / ``t`` / payload
=========  ==================  =====================================================================
HELLO      client → broker     flags = HELLO_* options; payload = client name (utf-8)
HELLO      broker → client     the welcome: the node is on the bus; flags = WELCOME_* (bus is FD);
                               payload = JSON: bitrate, data_bitrate, epoch_offset_ns
FRAME      both                CAN frame; client → broker: ``t`` = release time (0 = now);
                               broker → client: ``t`` = end-of-frame time
EVENT      broker → client     a fault event; flags = event kind code, payload = JSON detail
CONTROL    both                request / reply, payload = JSON (arm, clear, faults, stats)
=========  ==================  =====================================================================
"""

from __future__ import annotations

import os
import socket
import struct

HEADER = struct.Struct("<BBBxIq")
HEADER_SIZE = HEADER.size
MAX_RECORD = 64 * 1024

HELLO, FRAME, EVENT, CONTROL = 1, 2, 3, 4

# frame flags: the same bits as hil.canframe, so a recorder can store them as they come
F_EXTENDED = 0x01
F_REMOTE = 0x02
F_ERROR = 0x04
F_FD = 0x08
F_BRS = 0x10
F_ESI = 0x20
F_OWN = 0x40  # broker → client: the echo of this client's own frame

# hello options
HELLO_OWN = 0x01  # receive_own_messages
HELLO_EVENTS = 0x02  # deliver fault events
HELLO_NO_FRAMES = 0x04  # a control-only connection: deliver no frames

# welcome (broker → client HELLO) flags
WELCOME_FD = 0x01  # the bus is a CAN FD bus

# fault event kinds (EVENT flags)
EVENT_KINDS = ("armed", "cleared", "drop", "delay", "corrupt", "bus_off", "babble")
EVENT_CODE = {kind: i for i, kind in enumerate(EVENT_KINDS)}

SUN_PATH_MAX = 107


def unix_address(path: str) -> tuple[str, int | None]:
    """An address for ``bind``/``connect`` that works even past the 107-byte ``sun_path`` limit.

    Long paths go through ``/proc/self/fd/N/<name>`` of an ``O_PATH`` descriptor of the folder; the
    returned descriptor (or None) must be closed by the caller once bound or connected.
    """
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        return path, None
    folder, name = os.path.split(path)
    fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{name}", fd


def connect(path: str) -> socket.socket:
    """A connected, non-blocking SEQPACKET socket to the broker socket at ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    address, fd = unix_address(path)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    sock.setblocking(False)
    return sock
