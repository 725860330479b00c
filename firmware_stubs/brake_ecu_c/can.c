/* bxCAN driver: PA11 RX / PA12 TX, identifier-list filters into FIFO 0, receive by interrupt,
 * transmit into the first empty mailbox. */
#include "can.h"
#include "stm32f103.h"

void can_init(uint32_t bitrate, const uint16_t *ids, int count)
{
    RCC->APB2ENR |= RCC_APB2ENR_IOPAEN;
    RCC->APB1ENR |= RCC_APB1ENR_CAN1EN;
    GPIOA->CRH = (GPIOA->CRH & ~0xFF000u) | 0xB4000u; /* PA11 input, PA12 alternate push-pull */
    CAN1->MCR = CAN_MCR_INRQ | CAN_MCR_ABOM;
    while (!(CAN1->MSR & CAN_MSR_INAK))
        ;
    /* 18 time quanta per bit: sync + 13 + 4 (sample point 78 %) */
    CAN1->BTR = (3u << 20) | (12u << 16) | (36000000u / 18u / bitrate - 1u);
    CAN1->FMR |= CAN_FMR_FINIT;
    CAN1->FM1R = 0x3FFFu; /* identifier list mode */
    CAN1->FS1R = 0;       /* 16-bit scale: four identifiers per bank */
    CAN1->FFA1R = 0;      /* FIFO 0 */
    uint32_t active = 0;
    for (int bank = 0; bank * 4 < count; bank++) {
        uint32_t id[4];
        for (int i = 0; i < 4; i++)
            id[i] = (uint32_t)ids[bank * 4 + i < count ? bank * 4 + i : count - 1] << 5;
        CAN1->FILTER[bank].FR1 = id[0] | id[1] << 16;
        CAN1->FILTER[bank].FR2 = id[2] | id[3] << 16;
        active |= 1u << bank;
    }
    CAN1->FA1R = active;
    CAN1->FMR &= ~CAN_FMR_FINIT;
    CAN1->IER = CAN_IER_FMPIE0;
    CAN1->MCR &= ~CAN_MCR_INRQ;
    while (CAN1->MSR & CAN_MSR_INAK)
        ;
    nvic_enable(CAN1_RX0_IRQn, 0x10);
}

int can_send(uint16_t id, const uint8_t *data, uint8_t len)
{
    uint32_t primask = irq_save();
    for (int box = 0; box < 3; box++) {
        if (!(CAN1->TSR & (CAN_TSR_TME0 << box)))
            continue;
        can_txbox_t *tx = &CAN1->TX[box];
        uint8_t bytes[8] = {0};
        for (int i = 0; i < len; i++)
            bytes[i] = data[i];
        tx->TDTR = len;
        tx->TDLR = bytes[0] | bytes[1] << 8 | bytes[2] << 16 | (uint32_t)bytes[3] << 24;
        tx->TDHR = bytes[4] | bytes[5] << 8 | bytes[6] << 16 | (uint32_t)bytes[7] << 24;
        tx->TIR = (uint32_t)id << 21 | CAN_TIR_TXRQ;
        irq_restore(primask);
        return 1;
    }
    irq_restore(primask);
    return 0;
}

void can1_rx0_handler(void)
{
    while (CAN1->RF0R & CAN_RF0R_FMP0) {
        can_rxbox_t *rx = &CAN1->RX[0];
        uint32_t lo = rx->RDLR, hi = rx->RDHR;
        uint8_t data[8] = {lo, lo >> 8, lo >> 16, lo >> 24, hi, hi >> 8, hi >> 16, hi >> 24};
        uint16_t id = rx->RIR >> 21;
        uint8_t len = rx->RDTR & 15;
        CAN1->RF0R = CAN_RF0R_RFOM0;
        can_received(id, data, len > 8 ? 8 : len);
    }
}
