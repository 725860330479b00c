"""The part the Cortex-M core emulates: an STM32F103 high-density device (STM32F103xE).

Its memory map is a superset of the F103RB's (Nucleo-F103RB, "Blue Pill": 128 KiB flash, 20 KiB RAM)
with the same peripherals at the same addresses, so their firmware runs unchanged; and it is the
part the emulated AN3155 bootloader already reports (PID 0x414: 512 KiB flash in 2 KiB pages,
64 KiB RAM). Cortex-M3 (no FPU): generated control code is what ships on these parts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hil.protocol.an3155 import DEVICES, Stm32Device

RAM_START = 0x2000_0000
PERIPH_START = 0x4000_0000
PERIPH_END = 0x4002_4000
PPB_START = 0xE000_0000  # private peripheral bus: ITM, DWT, SCS (NVIC, SysTick, SCB)
PPB_SIZE = 0x0010_0000


@dataclass(frozen=True)
class Part:
    device: Stm32Device
    irqs: int  # external interrupt lines
    hsi_hz: int
    hse_hz: int  # the crystal a Nucleo's ST-LINK or a Blue Pill feeds: 8 MHz
    lsi_hz: int  # the independent watchdog's clock

    @property
    def flash_start(self) -> int:
        return self.device.flash_start

    @property
    def flash_size(self) -> int:
        return self.device.flash_size

    @property
    def ram_size(self) -> int:
        return self.device.ram_end - RAM_START


PART = Part(DEVICES[0x414], irqs=60, hsi_hz=8_000_000, hse_hz=8_000_000, lsi_hz=40_000)

# Peripheral base addresses and their interrupt lines (RM0008)
TIM2, TIM2_IRQ = 0x4000_0000, 28
IWDG = 0x4000_3000
USART2, USART2_IRQ = 0x4000_4400, 38
USART3, USART3_IRQ = 0x4000_4800, 39
CAN1 = 0x4000_6400
CAN1_TX_IRQ, CAN1_RX0_IRQ, CAN1_RX1_IRQ, CAN1_SCE_IRQ = 19, 20, 21, 22
AFIO = 0x4001_0000
GPIOA = 0x4001_0800  # then B..E every 0x400
USART1, USART1_IRQ = 0x4001_3800, 37
RCC = 0x4002_1000
FLASH_IF = 0x4002_2000


def is_machine_code(flash: bytes, part: Part = PART) -> bool:
    """True when ``flash`` starts with a Cortex-M vector table for this part: an initial stack
    pointer inside RAM and a Thumb reset vector inside flash (a hil image starts with ``HILF``,
    erased flash with 0xFF: neither passes)."""
    if len(flash) < 8:
        return False
    sp, reset = struct.unpack_from("<II", flash)
    in_flash = part.flash_start <= reset & ~1 < part.flash_start + part.flash_size or reset & ~1 < part.flash_size
    return RAM_START < sp <= RAM_START + part.ram_size and sp % 4 == 0 and bool(reset & 1) and in_flash
