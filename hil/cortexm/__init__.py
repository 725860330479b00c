"""The Cortex-M emulated MCU: real machine code on an emulated STM32F103.

An emulated MCU whose flash holds a Cortex-M image (a vector table at the start of flash, as
``objcopy -O binary`` writes it) runs it here instead of on the Python firmware runtime: the
instructions on unicorn (an instruction-set emulator), the silicon around them as models written
here — the core's exception model and the System Control Space (:mod:`.scs`), RCC and the flash
interface (:mod:`.rcc`), GPIO, USART, bxCAN, a general-purpose timer and the independent watchdog
(one module each) — on the run clock (:mod:`.core`). Faults stop the core with a report
(:mod:`.faults`); a GDB server (:mod:`.gdb`) lets ``gdb-multiarch`` attach. The image's
configuration block (:mod:`.config`) carries a component's ``config:`` into the flashed bytes.
"""

from __future__ import annotations

from hil.cortexm.part import PART, is_machine_code

__all__ = ["PART", "is_machine_code"]
