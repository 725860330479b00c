/* Reset and the vector table: copy .data, clear .bss, run main. Every interrupt this firmware does
 * not handle goes to default_handler, an endless loop (the emulated MCU reports it as unhandled). */
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

void systick_handler(void) __attribute__((weak, alias("default_handler")));
void can1_rx0_handler(void) __attribute__((weak, alias("default_handler")));
void tim2_handler(void) __attribute__((weak, alias("default_handler")));
void usart1_handler(void) __attribute__((weak, alias("default_handler")));

#define IRQ(n) (16 + (n))

__attribute__((section(".vectors"), used)) void (*const vectors[16 + 60])(void) = {
    [0] = (void (*)(void))&_stack_top,
    [1] = reset_handler,
    [2 ... 14] = default_handler,
    [15] = systick_handler,
    [IRQ(0) ... IRQ(19)] = default_handler,
    [IRQ(20)] = can1_rx0_handler,
    [IRQ(21) ... IRQ(27)] = default_handler,
    [IRQ(28)] = tim2_handler,
    [IRQ(29) ... IRQ(36)] = default_handler,
    [IRQ(37)] = usart1_handler,
    [IRQ(38) ... IRQ(59)] = default_handler,
};
