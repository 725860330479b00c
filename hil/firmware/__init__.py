"""Emulated microcontrollers: image format and build, the firmware runtime, the MCU process with
its flash memory and its two bootloaders (STM32 AN3155 on UART, UDS on CAN)."""
