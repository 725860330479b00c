#ifndef CONSOLE_H
#define CONSOLE_H

void console_init(void);
/* printf for %d %u %x %s and %c; never blocks (a full buffer drops the rest of the line). */
void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Each byte received, from the USART interrupt; a program that reads its console defines it. */
void console_received(char c);

#endif
