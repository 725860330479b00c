/* The console on USART1 (PA9 TX, PA10 RX), 115200 8N1, transmitted from a ring buffer by the TXE
 * interrupt, so printing never holds up the control loop; received bytes go to console_received. */
#include <stdarg.h>
#include "console.h"
#include "stm32f103.h"

#define SIZE 512u

static volatile char ring[SIZE];
static volatile uint32_t head, tail;

void console_init(void)
{
    RCC->APB2ENR |= RCC_APB2ENR_IOPAEN | RCC_APB2ENR_USART1EN;
    GPIOA->CRH = (GPIOA->CRH & ~0xF0u) | 0xB0u; /* PA9: alternate function push-pull, 50 MHz */
    USART1->BRR = 72000000u / 115200u;
    USART1->CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    nvic_enable(USART1_IRQn, 0x40);
}

__attribute__((weak)) void console_received(char c) { (void)c; }

void usart1_handler(void)
{
    if (USART1->SR & USART_SR_RXNE)
        console_received((char)USART1->DR);
    if (!(USART1->CR1 & USART_CR1_TXEIE) || !(USART1->SR & USART_SR_TXE))
        return;
    if (tail == head) {
        USART1->CR1 &= ~USART_CR1_TXEIE;
        return;
    }
    USART1->DR = (uint8_t)ring[tail % SIZE];
    tail++;
}

static int put(char c)
{
    if (head - tail >= SIZE)
        return 0;
    ring[head % SIZE] = c;
    head++;
    return 1;
}

static int put_number(uint32_t value, unsigned base, int negative)
{
    char digits[12];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    if (negative && !put('-'))
        return 0;
    while (n)
        if (!put(digits[--n]))
            return 0;
    return 1;
}

void console_printf(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    uint32_t primask = irq_save();
    int ok = 1;
    for (const char *p = fmt; *p && ok; p++) {
        if (*p != '%') {
            ok = put(*p);
            continue;
        }
        switch (*++p) {
        case 'd': { int v = va_arg(args, int); ok = put_number(v < 0 ? -(unsigned)v : (unsigned)v, 10, v < 0); break; }
        case 'u': ok = put_number(va_arg(args, unsigned), 10, 0); break;
        case 'x': ok = put_number(va_arg(args, unsigned), 16, 0); break;
        case 'c': ok = put((char)va_arg(args, int)); break;
        case 's': for (const char *s = va_arg(args, const char *); *s && ok; s++) ok = put(*s); break;
        default: ok = put(*p); break;
        }
    }
    if (ok)
        put('\r');
    put('\n');
    USART1->CR1 |= USART_CR1_TXEIE;
    irq_restore(primask);
    va_end(args);
}
