/* Brake ECU in C: the Python stub firmware_stubs/brake_ecu on the registers of an STM32F103, on
 * the same brake.dbc. BrakeRequest (0x110) in; a 1 kHz PI pressure loop on a first-order hydraulic
 * model (SysTick); BrakeCommand (0x111) for every accepted request, BrakeStatus (0x112) every
 * status_period, BrakeHeartbeat (0x113) every heartbeat_period. No valid request for
 * request_timeout -> safe state. A request's processing is held for `delay` after it arrived
 * (TIM2, a 1 MHz timebase with a compare interrupt), for calibrating latency measurements.
 *
 * Every handler runs at one priority, so they never preempt each other (like the stub's lock). */
#include "can.h"
#include "clock.h"
#include "console.h"
#include "hil_config.h"
#include "stm32f103.h"

#define ID_REQUEST 0x110u
#define ID_COMMAND 0x111u
#define ID_STATUS 0x112u
#define ID_HEARTBEAT 0x113u
#define TICK_HZ 1000u

enum { STANDBY, ACTIVE, SAFE };
enum { NO_FAULT, REQUEST_TIMEOUT, COUNTER_ERROR };
static const char *const state_names[] = {"standby", "active", "safe"};

enum { DELAY, REQUEST_TIMEOUT_CFG, SAFE_PRESSURE, TAU, MAX_PRESSURE, BAR_PER_MPS2, KP, KI, STATUS_PERIOD,
       HEARTBEAT_PERIOD, BITRATE, WATCHDOG, CONFIG_COUNT };

HIL_CONFIG_BLOCK(brake_config, config, CONFIG_COUNT) = {
    HIL_CONFIG_MAGIC, HIL_CONFIG_VERSION, CONFIG_COUNT, {
        [DELAY] = HIL_DURATION("delay", 0),                   /* processing delay per request */
        [REQUEST_TIMEOUT_CFG] = HIL_DURATION("request_timeout", 100000),
        [SAFE_PRESSURE] = HIL_REAL("safe_pressure", 0.0f),    /* bar held in the safe state */
        [TAU] = HIL_DURATION("tau", 30000),                   /* hydraulic time constant */
        [MAX_PRESSURE] = HIL_REAL("max_pressure", 200.0f),    /* bar at full valve opening */
        [BAR_PER_MPS2] = HIL_REAL("bar_per_mps2", 10.0f),
        [KP] = HIL_REAL("kp", 0.02f),
        [KI] = HIL_REAL("ki", 2.0f),
        [STATUS_PERIOD] = HIL_DURATION("status_period", 10000),
        [HEARTBEAT_PERIOD] = HIL_DURATION("heartbeat_period", 100000),
        [BITRATE] = HIL_INTEGER("bitrate", 500000),
        [WATCHDOG] = HIL_DURATION("watchdog", 0),             /* IWDG timeout; 0: off */
    }};

static struct {
    float timeout_s, tau_s, safe_pressure, max_pressure, bar_per_mps2, kp, ki;
    uint32_t delay_us, timeout_us, status_ticks, heartbeat_ticks;
} p;

static struct {
    int state, fault;
    float pressure, target, integral, valve;
    int have_counter;
    uint8_t request_counter;
    uint32_t last_request_us;
    uint32_t ticks;
    uint8_t tx_command, tx_status, tx_heartbeat;
} ecu;

/* -- time: TIM2 counts microseconds; its update interrupt extends it to 32 bits ------------------ */

static volatile uint32_t tim_high;

static uint32_t now_us(void)
{
    uint32_t high, low;
    do {
        high = tim_high;
        low = TIM2->CNT;
    } while (high != tim_high);
    if ((TIM2->SR & TIM_SR_UIF) && low < 0x8000u) /* wrapped, its interrupt not yet taken */
        high++;
    return high << 16 | low;
}

/* -- requests held for `delay`: a small queue served by TIM2's compare channel 1 ----------------- */

#define HELD 8u
static struct { uint32_t due_us; uint8_t data[8]; } held[HELD];
static uint32_t held_in, held_out;

static void arm_compare(void)
{
    if (held_in == held_out) {
        TIM2->DIER &= ~TIM_DIER_CC1IE;
        return;
    }
    uint32_t due = held[held_out % HELD].due_us;
    TIM2->CCR1 = due & 0xFFFFu;
    TIM2->SR = ~TIM_SR_CC1IF;
    TIM2->DIER |= TIM_DIER_CC1IE;
    if ((int32_t)(now_us() - due) >= 0) /* already due: do not wait a whole lap */
        TIM2->EGR = TIM_EGR_CC1G;
}

/* -- frames ---------------------------------------------------------------------------------------- */

static uint16_t raw16(float value, float scale)
{
    float raw = value / scale + 0.5f;
    return raw <= 0.0f ? 0 : raw >= 65535.0f ? 65535 : (uint16_t)raw;
}

static void send_command(uint8_t counter)
{
    uint16_t target = raw16(ecu.target, 0.01f);
    uint8_t valve = (uint8_t)(ecu.valve * 200.0f + 0.5f);
    uint8_t data[8] = {(uint8_t)((ecu.tx_command++ & 15u) | counter << 4), target & 0xFF, target >> 8, valve,
                       (uint8_t)ecu.state, 0, 0, 0};
    can_send(ID_COMMAND, data, 8);
}

static void send_status(void)
{
    uint16_t pressure = raw16(ecu.pressure > 0.0f ? ecu.pressure : 0.0f, 0.01f);
    uint8_t data[8] = {(uint8_t)((ecu.tx_status++ & 15u) | ecu.state << 4), pressure & 0xFF, pressure >> 8,
                       ecu.have_counter ? ecu.request_counter : 0, 0, 0, 0, 0};
    can_send(ID_STATUS, data, 8);
}

static void send_heartbeat(void)
{
    uint32_t uptime = ecu.ticks; /* ms: one tick each */
    uint8_t data[8] = {ecu.tx_heartbeat++, (uint8_t)ecu.state, (uint8_t)ecu.fault, uptime & 0xFF, uptime >> 8 & 0xFF,
                       uptime >> 16 & 0xFF, uptime >> 24, 0};
    can_send(ID_HEARTBEAT, data, 8);
    if (ecu.fault == COUNTER_ERROR)
        ecu.fault = NO_FAULT; /* reported once per heartbeat */
}

static void brake_on_request(const uint8_t *data, uint32_t arrived_us)
{
#ifdef BRAKE_FAULT
    *(volatile uint32_t *)0x50000000u = data[0]; /* the deliberately faulting build: a bus fault */
#endif
    uint8_t counter = data[0] & 15u;
    if (ecu.have_counter && counter == ecu.request_counter)
        return; /* a repeated frame carries nothing new (stale sender) */
    if (ecu.have_counter && counter != ((ecu.request_counter + 1u) & 15u))
        ecu.fault = COUNTER_ERROR;
    ecu.have_counter = 1;
    ecu.request_counter = counter;
    ecu.last_request_us = arrived_us;
    unsigned mode = data[0] >> 4 & 3u;
    float decel = (float)(data[1] | data[2] << 8) * 0.001f;
    float pressure = (float)(data[3] | data[4] << 8) * 0.01f;
    float target = mode == 1 ? decel * p.bar_per_mps2 : mode == 2 ? pressure : 0.0f;
    ecu.target = target < p.max_pressure ? target : p.max_pressure;
    if (ecu.state != ACTIVE) {
        console_printf("brake: %s -> active (request counter %u)", state_names[ecu.state], (unsigned)counter);
        ecu.state = ACTIVE;
        if (ecu.fault == REQUEST_TIMEOUT)
            ecu.fault = NO_FAULT;
    }
    send_command(counter);
}

void can_received(uint16_t id, const uint8_t *data, uint8_t len)
{
    if (id != ID_REQUEST || len < 5)
        return;
    uint32_t now = now_us();
    if (!p.delay_us) {
        brake_on_request(data, now);
        return;
    }
    if (held_in - held_out >= HELD)
        return; /* more requests in flight than the queue holds: dropped, as a full FIFO would */
    held[held_in % HELD].due_us = now + p.delay_us;
    for (int i = 0; i < 8; i++)
        held[held_in % HELD].data[i] = data[i];
    held_in++;
    if (held_in - held_out == 1)
        arm_compare();
}

void tim2_handler(void)
{
    if (TIM2->SR & TIM_SR_UIF) {
        TIM2->SR = ~TIM_SR_UIF;
        tim_high++;
    }
    if (TIM2->SR & TIM_SR_CC1IF) {
        TIM2->SR = ~TIM_SR_CC1IF;
        while (held_in != held_out && (int32_t)(now_us() - held[held_out % HELD].due_us) >= 0) {
            uint32_t arrived = held[held_out % HELD].due_us - p.delay_us;
            brake_on_request(held[held_out % HELD].data, arrived);
            held_out++;
        }
        arm_compare();
    }
}

/* -- the 1 kHz loop ------------------------------------------------------------------------------ */

static void tenths(float value, uint32_t *whole, uint32_t *tenth)
{
    uint32_t t = (uint32_t)(value * 10.0f + 0.5f);
    *whole = t / 10u;
    *tenth = t % 10u;
}

void systick_handler(void)
{
    const float dt = 1.0f / TICK_HZ;
    if (ecu.state == ACTIVE && ecu.have_counter && now_us() - ecu.last_request_us > p.timeout_us) {
        uint32_t whole, tenth;
        ecu.state = SAFE;
        ecu.fault = REQUEST_TIMEOUT;
        ecu.target = p.safe_pressure;
        tenths(p.safe_pressure, &whole, &tenth);
        console_printf("brake: request timeout (%u ms without BrakeRequest) -> safe state, %u.%u bar",
                       (unsigned)(p.timeout_us / 1000u), (unsigned)whole, (unsigned)tenth);
    }
    float error = ecu.target - ecu.pressure;
    float integral = ecu.integral + error * dt;
    float limit = 1.0f / p.ki;
    ecu.integral = integral < 0.0f ? 0.0f : integral > limit ? limit : integral;
    float valve = p.kp * error + p.ki * ecu.integral;
    ecu.valve = valve < 0.0f ? 0.0f : valve > 1.0f ? 1.0f : valve;
    ecu.pressure += (ecu.valve * p.max_pressure - ecu.pressure) * dt / p.tau_s;
    if (ecu.ticks % p.status_ticks == 0)
        send_status();
    if (ecu.ticks % p.heartbeat_ticks == 0)
        send_heartbeat();
    ecu.ticks++;
}

/* -- set-up ---------------------------------------------------------------------------------------- */

static uint32_t ticks_of(uint32_t us)
{
    uint32_t ticks = us / (1000000u / TICK_HZ);
    return ticks ? ticks : 1u;
}

static void load_config(void)
{
    p.delay_us = hil_us(&config.entry[DELAY]);
    p.timeout_us = hil_us(&config.entry[REQUEST_TIMEOUT_CFG]);
    p.tau_s = hil_float(&config.entry[TAU]);
    p.safe_pressure = hil_float(&config.entry[SAFE_PRESSURE]);
    p.max_pressure = hil_float(&config.entry[MAX_PRESSURE]);
    p.bar_per_mps2 = hil_float(&config.entry[BAR_PER_MPS2]);
    p.kp = hil_float(&config.entry[KP]);
    p.ki = hil_float(&config.entry[KI]);
    p.status_ticks = ticks_of(hil_us(&config.entry[STATUS_PERIOD]));
    p.heartbeat_ticks = ticks_of(hil_us(&config.entry[HEARTBEAT_PERIOD]));
}

static void watchdog(uint32_t timeout_us)
{
    /* LSI 40 kHz / 64 = 625 Hz: 1.6 ms per count, up to 6.5 s */
    uint32_t counts = timeout_us / 1600u;
    IWDG->KR = 0x5555u;
    IWDG->PR = 4u;
    IWDG->RLR = counts > 4095u ? 4095u : counts ? counts : 1u;
    IWDG->KR = 0xCCCCu;
}

int main(void)
{
    static const uint16_t ids[] = {ID_REQUEST};
    clock_72mhz();
    load_config();
    console_init();
    RCC->APB1ENR |= RCC_APB1ENR_TIM2EN;
    TIM2->PSC = 72u - 1u; /* TIM2 runs at 72 MHz (2 x PCLK1): 1 MHz counter */
    TIM2->ARR = 0xFFFFu;
    TIM2->EGR = TIM_EGR_UG;
    TIM2->SR = 0;
    TIM2->DIER = TIM_DIER_UIE;
    TIM2->CR1 = TIM_CR1_CEN;
    nvic_enable(TIM2_IRQn, 0x10);
    can_init((uint32_t)hil_int(&config.entry[BITRATE]), ids, 1);
    SCB->SHPR[2] = (SCB->SHPR[2] & 0x00FFFFFFu) | 0x10u << 24; /* SysTick at the handlers' priority */
    SYSTICK->LOAD = 72000000u / TICK_HZ - 1u;
    SYSTICK->VAL = 0;
    SYSTICK->CTRL = 7u; /* processor clock, interrupt, enable */
    uint32_t dog = hil_us(&config.entry[WATCHDOG]);
    if (dog)
        watchdog(dog);
    console_printf("brake: ready, request timeout %u ms", (unsigned)(p.timeout_us / 1000u));
    for (;;) {
        if (dog)
            IWDG->KR = 0xAAAAu; /* the loop runs after every interrupt: a stuck handler starves it */
        wfi();
    }
}
