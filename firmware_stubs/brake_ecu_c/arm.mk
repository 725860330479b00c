# Compiler and flags for STM32F103 firmware (Cortex-M3, no FPU), shared by this firmware and the
# test programs in tests/cortexm/firmware. Reproducible: no timestamps, no build id, source paths
# mapped to a fixed name.
CC = arm-none-eabi-gcc
OBJCOPY = arm-none-eabi-objcopy
BSP := $(dir $(lastword $(MAKEFILE_LIST)))
CFLAGS = -mcpu=cortex-m3 -mthumb -Os -g -std=c11 -Wall -Wextra -Werror -ffunction-sections -fdata-sections \
         -ffreestanding -fno-common -ffile-prefix-map=$(abspath $(BSP))=brake_ecu_c -I$(BSP)
LDFLAGS = -nostartfiles -Wl,--gc-sections -Wl,--build-id=none -T $(BSP)stm32f103.ld -lgcc
