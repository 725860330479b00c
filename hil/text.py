"""Control characters: which ones a spec may not hold, and how hil shows them on a terminal.

A rig ``description`` carrying ``ESC ] 0 ; … BEL`` sets the terminal's title; ``ESC [ 2 J`` clears
the screen; a right-to-left override reorders what the reader sees. Specs refuse them where they
are written (``hil.spec.common``); everything else that reaches the terminal — console lines, DBC
names, error messages quoting a file — is shown with them escaped (``hil.cli.app``).
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls (0x9B is a one-byte CSI on some terminals), and
# the Unicode bidirectional overrides and isolates ("Trojan Source")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# the same and tab and newline: what a one-line value (a name, a path, a host) may not hold
LINE_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with every :data:`CONTROL` character written as a visible escape (``\\x1b``, ``\\u202e``)."""
    return CONTROL.sub(_visible, text)


def _visible(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
