/* The STM32F103 registers this firmware uses (RM0008, PM0056), as plain structs at their
 * addresses: no vendor HAL, no CMSIS. Only the fields used are named. */
#ifndef STM32F103_H
#define STM32F103_H

#include <stdint.h>

#define REG volatile uint32_t

typedef struct { REG CR, CFGR, CIR, APB2RSTR, APB1RSTR, AHBENR, APB2ENR, APB1ENR, BDCR, CSR; } rcc_t;
typedef struct { REG ACR, KEYR, OPTKEYR, SR, CR, AR, RESERVED, OBR, WRPR; } flash_t;
typedef struct { REG CRL, CRH, IDR, ODR, BSRR, BRR, LCKR; } gpio_t;
typedef struct { REG SR, DR, BRR, CR1, CR2, CR3, GTPR; } usart_t;
typedef struct { REG CR1, CR2, SMCR, DIER, SR, EGR, CCMR1, CCMR2, CCER, CNT, PSC, ARR, RCR, CCR1, CCR2, CCR3, CCR4; } tim_t;
typedef struct { REG KR, PR, RLR, SR; } iwdg_t;
typedef struct { REG TIR, TDTR, TDLR, TDHR; } can_txbox_t;
typedef struct { REG RIR, RDTR, RDLR, RDHR; } can_rxbox_t;
typedef struct { REG FR1, FR2; } can_filter_t;
typedef struct {
    REG MCR, MSR, TSR, RF0R, RF1R, IER, ESR, BTR;
    uint32_t reserved0[88];
    can_txbox_t TX[3];
    can_rxbox_t RX[2];
    uint32_t reserved1[12];
    REG FMR, FM1R;
    uint32_t reserved2;
    REG FS1R;
    uint32_t reserved3;
    REG FFA1R;
    uint32_t reserved4;
    REG FA1R;
    uint32_t reserved5[8];
    can_filter_t FILTER[14];
} can_t;
typedef struct { REG CTRL, LOAD, VAL, CALIB; } systick_t;
typedef struct { REG CPUID, ICSR, VTOR, AIRCR, SCR, CCR, SHPR[3], SHCSR, CFSR, HFSR; } scb_t;

#define RCC     ((rcc_t *)0x40021000u)
#define FLASH   ((flash_t *)0x40022000u)
#define GPIOA   ((gpio_t *)0x40010800u)
#define USART1  ((usart_t *)0x40013800u)
#define TIM2    ((tim_t *)0x40000000u)
#define IWDG    ((iwdg_t *)0x40003000u)
#define CAN1    ((can_t *)0x40006400u)
#define SYSTICK ((systick_t *)0xE000E010u)
#define SCB     ((scb_t *)0xE000ED00u)
#define NVIC_ISER ((REG *)0xE000E100u)
#define NVIC_IPR  ((volatile uint8_t *)0xE000E400u)

/* RCC */
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_PLL 2u
#define RCC_CFGR_SWS_PLL (2u << 2)
#define RCC_CFGR_PPRE1_DIV2 (4u << 8)
#define RCC_CFGR_PLLSRC_HSE (1u << 16)
#define RCC_CFGR_PLLMUL9 (7u << 18)
#define RCC_APB2ENR_IOPAEN (1u << 2)
#define RCC_APB2ENR_USART1EN (1u << 14)
#define RCC_APB1ENR_TIM2EN (1u << 0)
#define RCC_APB1ENR_CAN1EN (1u << 25)
#define FLASH_ACR_LATENCY_2 2u
#define FLASH_ACR_PRFTBE (1u << 4)

/* USART */
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_TXEIE (1u << 7)
#define USART_CR1_TE (1u << 3)

/* TIM */
#define TIM_CR1_CEN 1u
#define TIM_DIER_UIE 1u
#define TIM_DIER_CC1IE 2u
#define TIM_SR_UIF 1u
#define TIM_SR_CC1IF 2u
#define TIM_EGR_UG 1u
#define TIM_EGR_CC1G 2u

/* bxCAN */
#define CAN_MCR_INRQ 1u
#define CAN_MCR_ABOM (1u << 6)
#define CAN_MSR_INAK 1u
#define CAN_TSR_TME0 (1u << 26)
#define CAN_RF0R_FMP0 3u
#define CAN_RF0R_RFOM0 (1u << 5)
#define CAN_IER_FMPIE0 (1u << 1)
#define CAN_FMR_FINIT 1u
#define CAN_TIR_TXRQ 1u

/* interrupts */
#define CAN1_RX0_IRQn 20
#define TIM2_IRQn 28
#define USART1_IRQn 37
#define SYSTICK_SHPR_BYTE 11 /* SHPR3 bits 31:24 */

static inline void nvic_enable(int irq, uint8_t priority)
{
    NVIC_IPR[irq] = priority;
    NVIC_ISER[irq >> 5] = 1u << (irq & 31);
}

static inline void wfi(void) { __asm volatile("wfi"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }

/* Mask interrupts; returns the PRIMASK to restore (callable from handlers and thread alike). */
static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask) :: "memory");
    return primask;
}

static inline void irq_restore(uint32_t primask) { __asm volatile("msr primask, %0" :: "r"(primask) : "memory"); }

#endif
