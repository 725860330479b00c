"""``format: jsonl`` (files ``*.jsonl``): one CAN frame per line, ``{"t": seconds, "ch": channel,
"id": id, "data": "hex"}``; a line with ``"comment"`` only is left out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from hil.stimulus.events import CanEvent, Event, RecordError
from hil.stimulus.readers import StimulusReader


class JsonLinesReader(StimulusReader):
    suffixes = (".jsonl",)
    unit = "line"

    def records(self, stream: BinaryIO, path: Path, lenient: bool) -> Iterator[tuple[int, Event | str]]:
        for n, raw in enumerate(stream, 1):
            try:
                rec = json.loads(raw)
                if set(rec) == {"comment"}:
                    yield n, "comment lines"
                    continue
                ext = rec["id"] > 0x7FF
                yield n, CanEvent(round(rec["t"] * 1e9), str(rec["ch"]), rec["id"], 1 if ext else 0,
                                  bytes.fromhex(rec["data"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise RecordError(f"line {n}", f"expected a JSON frame record: {type(exc).__name__}: {exc}") from None
