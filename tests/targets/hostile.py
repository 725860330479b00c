"""Stack content a shell would run, split or expand — for the HPC drivers' command building — and
bundles whose links lead out.

Every value here must reach the component exactly as written; ``marker`` is the file an injection
would create (its absence is the proof nothing ran).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from hil.targets import bundle

# prints its argv and every T_* variable as one JSON line, then "ready"
SHOW = ("import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items() "
        "if k.startswith('T_')}}), flush=True); print('ready', flush=True); __import__('time').sleep(600)")


def values(marker: Path) -> dict[str, str]:
    m = str(marker)
    return {"T_SUBST": f"$(touch {m})", "T_BACKTICKS": f"`touch {m}`", "T_SEMICOLON": f"x; touch {m}; y",
            "T_NEWLINE": f"a\ntouch {m}\nb", "T_QUOTES": f"'\"'\"; touch {m}; '", "T_BACKSLASH": f"\\'; touch {m}; \\",
            "T_GLOB": "*", "T_DOLLARS": "$HOME ${PATH} $$ $0", "T_EMPTY": "", "T_UNICODE": "ünï ✓ ß",
            "T_ESCAPES": "\x1b[2J\t\r", "T_HEREDOC": "EOF\n$(touch " + m + ")\nEOF"}


def argv(marker: Path) -> list[str]:
    m = str(marker)
    return [f"$(touch {m})", f"; touch {m}", f"`touch {m}`", f"| touch {m}", f"&& touch {m}", "a\nb", "'", '"',
            "\\", "*", "~", "-c", "--", " lead", "trail ", "", "$IFS", "{python}x"]


def bad_names(marker: Path) -> list[str]:
    m = str(marker)
    return [f"X=1; touch {m}; Y", "1X", "A-B", "A B", "", "A\nB", f"$(touch {m})", "PATH=/x", "ü"]


def with_links(good: Path, evil: Path, component: str, links: dict[str, str]) -> Path:
    """``good`` with ``links`` added to ``component``, in the manifest too (so only the rules refuse it)."""
    with tarfile.open(good) as tin:
        members = [(m, tin.extractfile(m).read() if m.isfile() else None) for m in tin.getmembers()]
    doc = json.loads(members[0][1])
    doc["components"][component]["files"].update({p: {"link": to} for p, to in links.items()})
    with tarfile.open(evil, "w:gz") as tout:
        for m, data in members:
            if m.name == bundle.MANIFEST:
                data = json.dumps(doc).encode()
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
        for path, to in links.items():
            info = tarfile.TarInfo(f"{bundle.FILES}/{component}/{path}")
            info.type, info.linkname = tarfile.SYMTYPE, to
            tout.addfile(info)
    return evil
