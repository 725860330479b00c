/* The independent watchdog: started and never reloaded, it resets the MCU; after that reset the
 * firmware sees IWDGRSTF in RCC_CSR and reloads it from then on. */
#include "clock.h"
#include "console.h"
#include "stm32f103.h"

int main(void)
{
    clock_72mhz();
    console_init();
    int bitten = (RCC->CSR >> 29) & 1;
    RCC->CSR |= 1u << 24; /* RMVF */
    console_printf("watchdog: reset by watchdog %d", bitten);
    IWDG->KR = 0x5555;
    IWDG->PR = 0;  /* LSI / 4: 100 us a count */
    IWDG->RLR = 500; /* 50 ms */
    IWDG->KR = 0xCCCC;
    for (;;) {
        if (bitten)
            IWDG->KR = 0xAAAA;
    }
}
