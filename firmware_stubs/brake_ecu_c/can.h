#ifndef CAN_H
#define CAN_H

#include <stdint.h>

/* bxCAN at `bitrate` (PCLK1 36 MHz), receiving the identifiers in `ids` into FIFO 0. */
void can_init(uint32_t bitrate, const uint16_t *ids, int count);
/* Queue a standard frame in a free mailbox; 0 when all three are pending (the frame is dropped). */
int can_send(uint16_t id, const uint8_t *data, uint8_t len);
/* Called from the FIFO 0 interrupt for every received frame. */
void can_received(uint16_t id, const uint8_t *data, uint8_t len);

#endif
