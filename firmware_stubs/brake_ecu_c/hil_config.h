/* The configuration block hil writes into the image at deploy (hil/cortexm/config.py).
 *
 * The firmware declares its parameters — name, kind, default — in one const block in flash;
 * `hil deploy` and every bench overwrite the values of the keys a stack component's `config:`
 * names before the image is flashed, so the same image file runs with each bench's parameters
 * and a real board gets exactly the same bytes. Read it through these functions: the block is
 * volatile so the compiler cannot fold the defaults in. */
#ifndef HIL_CONFIG_H
#define HIL_CONFIG_H

#include <stdint.h>

#define HIL_CONFIG_MAGIC 0x47464348u /* "HCFG" */
#define HIL_CONFIG_VERSION 1u
#define HIL_KEY_LEN 24

enum hil_kind { HIL_DURATION_US = 1, HIL_INT = 2, HIL_FLOAT = 3 };

struct hil_entry {
    char key[HIL_KEY_LEN];
    uint32_t kind;
    union { uint32_t us; int32_t i; float f; } value;
};

#define HIL_DURATION(name, microseconds) { name, HIL_DURATION_US, { .us = (microseconds) } }
#define HIL_INTEGER(name, number) { name, HIL_INT, { .i = (number) } }
#define HIL_REAL(name, number) { name, HIL_FLOAT, { .f = (number) } }

/* The block: magic, version, entry count, then the entries (declared by the application). */
#define HIL_CONFIG_BLOCK(type, var, entries) \
    const volatile struct type { uint32_t magic; uint16_t version; uint16_t count; struct hil_entry entry[entries]; } \
    var __attribute__((section(".hil_config"), used))

/* A parameter's value in the unit asked for; numbers given without a unit are seconds. */
static inline uint32_t hil_us(const volatile struct hil_entry *e)
{
    switch (e->kind) {
    case HIL_DURATION_US: return e->value.us;
    case HIL_INT: return (uint32_t)e->value.i * 1000000u;
    default: return (uint32_t)(e->value.f * 1e6f + 0.5f);
    }
}

static inline float hil_float(const volatile struct hil_entry *e)
{
    switch (e->kind) {
    case HIL_DURATION_US: return (float)e->value.us * 1e-6f;
    case HIL_INT: return (float)e->value.i;
    default: return e->value.f;
    }
}

static inline int32_t hil_int(const volatile struct hil_entry *e)
{
    return e->kind == HIL_FLOAT ? (int32_t)e->value.f : e->value.i;
}

#endif
