"""Stack content a shell would run, split or expand — for the HPC drivers' command building.

Every value here must reach the component exactly as written; ``marker`` is the file an injection
would create (its absence is the proof nothing ran).
"""

from __future__ import annotations

from pathlib import Path

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
