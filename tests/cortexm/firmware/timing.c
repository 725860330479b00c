/* Time on the run clock: SysTick at 1 kHz counts 200 ticks while TIM2 (1 MHz) measures them; then
 * a busy loop of known length at HSI 8 MHz, which must not run faster than 8 MHz. */
#include "console.h"
#include "clock.h"
#include "stm32f103.h"

static volatile uint32_t ticks;
void systick_handler(void) { ticks++; }

int main(void)
{
    clock_72mhz();
    console_init();
    RCC->APB1ENR |= RCC_APB1ENR_TIM2EN;
    TIM2->PSC = 7199; /* 10 kHz */
    TIM2->ARR = 0xFFFF;
    TIM2->EGR = TIM_EGR_UG;
    TIM2->CR1 = TIM_CR1_CEN;
    SYSTICK->LOAD = 72000 - 1;
    SYSTICK->VAL = 0;
    uint32_t start = TIM2->CNT;
    SYSTICK->CTRL = 7;
    while (ticks < 200)
        wfi();
    uint32_t elapsed = TIM2->CNT - start;
    SYSTICK->CTRL = 0;
    console_printf("timing: 200 ticks in %u00 us", (unsigned)elapsed);
    /* a busy loop: 4 instructions per turn, 2,000,000 turns = 8,000,000 cycles = 111 ms at 72 MHz */
    start = TIM2->CNT;
    __asm volatile("1: subs %0, #1\n nop\n nop\n bne 1b" : : "r"(2000000) : "cc");
    elapsed = TIM2->CNT - start;
    console_printf("timing: busy loop %u00 us", (unsigned)elapsed);
    for (;;)
        wfi();
}
