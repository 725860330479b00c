/* In-application programming: unlock, erase a page, program half-words, and the refusals —
 * programming a half-word that is not erased (PGERR) and a locked interface. */
#include "clock.h"
#include "console.h"
#include "stm32f103.h"

#define PAGE 0x08010000u
#define KEYS() (FLASH->KEYR = 0x45670123u, FLASH->KEYR = 0xCDEF89ABu)

int main(void)
{
    clock_72mhz();
    console_init();
    volatile uint16_t *p = (volatile uint16_t *)PAGE;
    KEYS();
    FLASH->CR = 2;        /* PER */
    FLASH->AR = PAGE;
    FLASH->CR = 2 | 64;   /* PER | STRT */
    while (FLASH->SR & 1)
        ;
    FLASH->SR = 0x34;
    FLASH->CR = 1;        /* PG */
    p[0] = 0x1234;
    p[1] = 0xBEEF;
    unsigned eop = FLASH->SR >> 5 & 1;
    p[0] = 0x5678;        /* not erased: PGERR, nothing written */
    unsigned pgerr = FLASH->SR >> 2 & 1;
    FLASH->CR = 128;      /* LOCK */
    console_printf("iap: %x %x eop %u pgerr %u", (unsigned)p[0], (unsigned)p[1], eop, pgerr);
    for (;;)
        wfi();
}
