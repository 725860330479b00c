#ifndef CLOCK_H
#define CLOCK_H

/* SYSCLK 72 MHz from the 8 MHz HSE through the PLL; APB1 36 MHz, APB2 72 MHz; 2 flash wait states. */
void clock_72mhz(void);

#endif
