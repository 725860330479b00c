"""``kind: journal``: a power switch for emulated targets that writes each step to a journal file,
as a lab's relay board logs its relays."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from hil.spec.rig import PowerSpec
from hil.targets.power import Switch


class JournalPower(PowerSpec):
    kind: Literal["journal"]
    journal: Path


class JournalSwitch(Switch):
    """Off cuts the targets it feeds, on boots them; both steps are appended to the journal."""

    model = JournalPower

    def on(self) -> None:
        for target in self.targets:
            target.power_on()
        self._log("on")

    def off(self) -> None:
        for target in reversed(self.targets):
            target.power_off()
        self._log("off")

    def _log(self, step: str) -> None:
        with open(self.spec.journal, "a", encoding="utf-8") as f:
            f.write(f"{time.time():.3f} {self.name} {step} {' '.join(t.name for t in self.targets)}\n")
