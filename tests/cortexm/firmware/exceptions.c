/* The exception model: preemption by priority, tail-chaining order, equal priorities by number,
 * BASEPRI and PRIMASK masking, SVC with its immediate, PendSV, and a thread on PSP. Prints the
 * order in which handlers ran. */
#include "clock.h"
#include "console.h"
#include "stm32f103.h"

#define ISPR ((REG *)0xE000E200u)
static char order[64];
static int n;

static void mark(char c) { order[n++] = c; }
static void pend(int irq) { ISPR[irq >> 5] = 1u << (irq & 31); }

void wwdg_handler(void) /* IRQ 0, priority 0x80: pends IRQ 1, which preempts it */
{
    mark('L');
    pend(1);
    mark('l');
}
void pvd_handler(void) { mark('H'); }    /* IRQ 1, priority 0x40 */
void tamper_handler(void) { mark('T'); } /* IRQ 2, priority 0x40: same as IRQ 1, higher number */

void svc_handler(void)
{
    uint32_t *frame;
    __asm volatile("tst lr, #4\n ite eq\n mrseq %0, msp\n mrsne %0, psp" : "=r"(frame));
    uint8_t imm = ((uint8_t *)frame[6])[-2]; /* the SVC instruction before the stacked PC */
    mark('0' + imm);
}
void pendsv_handler(void) { mark('P'); }

static uint32_t psp_stack[64];

int main(void)
{
    clock_72mhz();
    console_init();
    nvic_enable(0, 0x80);
    nvic_enable(1, 0x40);
    nvic_enable(2, 0x40);
    pend(0); /* L H l */
    irq_disable();
    pend(2);
    pend(0);
    pend(1);
    irq_enable(); /* tail-chained: H T (same priority, lower number first) then L H l */
    mark('|');
    __asm volatile("msr basepri, %0" ::"r"(0x60u));
    pend(0); /* 0x80: held back by BASEPRI 0x60 */
    pend(1); /* 0x40: runs */
    mark('b');
    __asm volatile("msr basepri, %0" ::"r"(0u)); /* now L H l */
    mark('|');
    __asm volatile("svc #5");
    SCB->ICSR = 1u << 28; /* PENDSVSET */
    mark('|');
    /* thread mode on the process stack: an interrupt there returns to it */
    __asm volatile("msr psp, %0\n movs r0, #2\n msr control, r0\n isb" ::"r"(psp_stack + 64) : "r0");
    pend(1);
    uint32_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    mark(sp > (uint32_t)psp_stack && sp <= (uint32_t)(psp_stack + 64) ? 'p' : '?');
    order[n] = 0;
    console_printf("exceptions: %s", order);
    for (;;)
        wfi();
}
