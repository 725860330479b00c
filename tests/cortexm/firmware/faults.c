/* A fault chosen by the configuration block: the emulated MCU must stop and report it. */
#include "clock.h"
#include "console.h"
#include "hil_config.h"
#include "stm32f103.h"

HIL_CONFIG_BLOCK(fault_config, config, 1) = {HIL_CONFIG_MAGIC, HIL_CONFIG_VERSION, 1, {HIL_INTEGER("fault", 0)}};

__attribute__((noinline)) uint32_t read_nowhere(void) { return *(volatile uint32_t *)0x60000000u; }
static volatile int forever = 1;

__attribute__((noinline)) int recurse(int depth)
{
    volatile uint32_t pad[16];
    pad[depth & 15] = depth;
    return forever ? recurse(depth + 1) + pad[0] : 0;
}

int main(void)
{
    clock_72mhz();
    console_init();
    int which = hil_int(&config.entry[0]);
    console_printf("faults: %d", which);
    for (volatile int i = 0; i < 20000; i++) /* let the console drain */
        ;
    switch (which) {
    case 1: read_nowhere(); break;                              /* forced HardFault from a BusFault */
    case 2: SCB->SHCSR |= 1u << 17; read_nowhere(); break;      /* BusFault itself, enabled */
    case 3: __asm volatile(".short 0xde00"); break;             /* UDF: UsageFault, forced */
    case 4: nvic_enable(5, 0); *(REG *)0xE000E200u = 1u << 5; break; /* IRQ 5 has no handler */
    case 5: recurse(0); break;                                  /* the stack runs off the bottom of RAM */
    case 6: __asm volatile("bkpt #1"); break;                   /* BKPT and no debugger */
    }
    for (;;)
        wfi();
}
