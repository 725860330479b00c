/* Console input and CAN: bytes typed into USART1 come back upper-cased; CAN frames accepted by the
 * filters (list 0x100 → FIFO 0; mask 0x200..0x20F → FIFO 1) come back on 0x300 + 0x10 × FIFO +
 * filter match index with the same data. Three frames queued in initialisation mode leave by
 * priority (lowest identifier first). The error counters are printed on request (byte '?'). */
#include "clock.h"
#include "console.h"
#include "stm32f103.h"

static void send(uint32_t id, uint32_t lo, uint32_t hi, unsigned len)
{
    for (int box = 0; box < 3; box++)
        if (CAN1->TSR & (CAN_TSR_TME0 << box)) {
            CAN1->TX[box].TDTR = len;
            CAN1->TX[box].TDLR = lo;
            CAN1->TX[box].TDHR = hi;
            CAN1->TX[box].TIR = id << 21 | CAN_TIR_TXRQ;
            return;
        }
}

static void reply(int fifo)
{
    can_rxbox_t *rx = &CAN1->RX[fifo];
    unsigned fmi = rx->RDTR >> 8 & 0xFF;
    send(0x300 + 0x10 * fifo + fmi, rx->RDLR, rx->RDHR, rx->RDTR & 15);
    if (fifo)
        CAN1->RF1R = 1u << 5;
    else
        CAN1->RF0R = 1u << 5;
}

void can1_rx0_handler(void) { while (CAN1->RF0R & 3) reply(0); }
void can1_rx1_handler(void) { while (CAN1->RF1R & 3) reply(1); }

static volatile char typed[16];
static volatile unsigned typed_in, typed_out;

void console_received(char c) { typed[typed_in++ % 16] = c; }

int main(void)
{
    clock_72mhz();
    console_init();
    RCC->APB1ENR |= RCC_APB1ENR_CAN1EN;
    CAN1->MCR = CAN_MCR_INRQ;
    while (!(CAN1->MSR & CAN_MSR_INAK))
        ;
    CAN1->BTR = (3u << 20) | (12u << 16) | 3u; /* 500 kbit/s at 36 MHz */
    CAN1->FMR |= CAN_FMR_FINIT;
    CAN1->FM1R = 1u;             /* bank 0 list, bank 1 mask */
    CAN1->FS1R = 3u;             /* both 32-bit */
    CAN1->FFA1R = 2u;            /* bank 1 → FIFO 1 */
    CAN1->FILTER[0].FR1 = 0x100u << 21;
    CAN1->FILTER[0].FR2 = 0x101u << 21;
    CAN1->FILTER[1].FR1 = 0x200u << 21;
    CAN1->FILTER[1].FR2 = (0x7F0u << 21) | 6u; /* match id bits 10..4, IDE and RTR */
    CAN1->FA1R = 3u;
    CAN1->FMR &= ~CAN_FMR_FINIT;
    send(0x7F0, 1, 0, 1);
    send(0x010, 2, 0, 1);
    send(0x400, 3, 0, 1);
    CAN1->IER = (1u << 1) | (1u << 4); /* FMPIE0, FMPIE1 */
    nvic_enable(CAN1_RX0_IRQn, 0x10);
    nvic_enable(21, 0x10);
    CAN1->MCR &= ~CAN_MCR_INRQ;
    while (CAN1->MSR & CAN_MSR_INAK)
        ;
    console_printf("echo: ready");
    for (;;) {
        wfi();
        while (typed_out != typed_in) {
            char c = typed[typed_out++ % 16];
            if (c == '?')
                console_printf("echo: tec %u rec %u esr %x", (unsigned)(CAN1->ESR >> 16 & 0xFF),
                               (unsigned)(CAN1->ESR >> 24), (unsigned)CAN1->ESR);
            else if (c >= 'a' && c <= 'z')
                console_printf("echo: %c", c - 32);
        }
    }
}
