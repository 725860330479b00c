/* Reset and the vector table: copy .data, clear .bss, run main. Handlers are weak: a program
 * defines the ones it uses by name; every other exception and interrupt goes to default_handler,
 * an endless loop (the emulated MCU reports entering it as an unhandled interrupt). */
#include <stdint.h>

extern uint32_t _stack_top, _data_start, _data_end, _data_load, _bss_start, _bss_end;
extern int main(void);

void reset_handler(void)
{
    uint32_t *src = &_data_load, *dst = &_data_start;
    while (dst < &_data_end)
        *dst++ = *src++;
    for (dst = &_bss_start; dst < &_bss_end;)
        *dst++ = 0;
    main();
    for (;;)
        ;
}

void default_handler(void)
{
    for (;;)
        ;
}

#define WEAK __attribute__((weak, alias("default_handler")))
void nmi_handler(void) WEAK;
void hardfault_handler(void) WEAK;
void memmanage_handler(void) WEAK;
void busfault_handler(void) WEAK;
void usagefault_handler(void) WEAK;
void svc_handler(void) WEAK;
void pendsv_handler(void) WEAK;
void systick_handler(void) WEAK;
void wwdg_handler(void) WEAK;      /* IRQ 0 */
void pvd_handler(void) WEAK;       /* IRQ 1 */
void tamper_handler(void) WEAK;    /* IRQ 2 */
void can1_tx_handler(void) WEAK;   /* IRQ 19 */
void can1_rx0_handler(void) WEAK;  /* IRQ 20 */
void can1_rx1_handler(void) WEAK;  /* IRQ 21 */
void can1_sce_handler(void) WEAK;  /* IRQ 22 */
void tim2_handler(void) WEAK;      /* IRQ 28 */
void usart1_handler(void) WEAK;    /* IRQ 37 */

#define IRQ(n) (16 + (n))

__attribute__((section(".vectors"), used)) void (*const vectors[16 + 60])(void) = {
    [0] = (void (*)(void))&_stack_top,
    [1] = reset_handler,
    [2] = nmi_handler,
    [3] = hardfault_handler,
    [4] = memmanage_handler,
    [5] = busfault_handler,
    [6] = usagefault_handler,
    [7 ... 10] = default_handler,
    [11] = svc_handler,
    [12 ... 13] = default_handler,
    [14] = pendsv_handler,
    [15] = systick_handler,
    [IRQ(0)] = wwdg_handler,
    [IRQ(1)] = pvd_handler,
    [IRQ(2)] = tamper_handler,
    [IRQ(3) ... IRQ(18)] = default_handler,
    [IRQ(19)] = can1_tx_handler,
    [IRQ(20)] = can1_rx0_handler,
    [IRQ(21)] = can1_rx1_handler,
    [IRQ(22)] = can1_sce_handler,
    [IRQ(23) ... IRQ(27)] = default_handler,
    [IRQ(28)] = tim2_handler,
    [IRQ(29) ... IRQ(36)] = default_handler,
    [IRQ(37)] = usart1_handler,
    [IRQ(38) ... IRQ(59)] = default_handler,
};
