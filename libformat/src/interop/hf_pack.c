/* Bit layouts of the GPTQ and AWQ checkpoints (see hf_pack.h). */
#include "interop/hf_pack.h"

#include "common/bytes.h"

const int sq_awq_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};

void sq_hf_stream_put(uint8_t *buf, uint64_t stride, uint64_t off, uint64_t i, int bits, uint32_t v) {
    const uint64_t bit = i * (uint64_t)bits, s = bit / 32;
    const unsigned sh = (unsigned)(bit % 32);
    uint8_t *p = buf + 4 * (s * stride + off);
    put32(p, get32(p) | v << sh);
    if (sh + (unsigned)bits > 32) { /* the value's high bits start the next word */
        p = buf + 4 * ((s + 1) * stride + off);
        put32(p, get32(p) | v >> (32 - sh));
    }
}

uint32_t sq_hf_stream_get(const uint8_t *buf, uint64_t stride, uint64_t off, uint64_t i, int bits) {
    const uint64_t bit = i * (uint64_t)bits, s = bit / 32;
    const unsigned sh = (unsigned)(bit % 32);
    const uint32_t mask = (1u << bits) - 1;
    uint32_t v = get32(buf + 4 * (s * stride + off)) >> sh;
    if (sh + (unsigned)bits > 32) v |= get32(buf + 4 * ((s + 1) * stride + off)) << (32 - sh);
    return v & mask;
}

/* Column n sits in word n/8 at the slot whose order entry is n%8. */
static unsigned awq_slot(uint64_t n) {
    static const unsigned slot_of[8] = {0, 4, 1, 5, 2, 6, 3, 7}; /* inverse of sq_awq_order */
    return slot_of[n % 8];
}

void sq_awq_put(uint8_t *row, uint64_t n, uint32_t v) {
    uint8_t *p = row + 4 * (n / 8);
    put32(p, get32(p) | (v & 15u) << (4 * awq_slot(n)));
}

uint32_t sq_awq_get(const uint8_t *row, uint64_t n) { return get32(row + 4 * (n / 8)) >> (4 * awq_slot(n)) & 15u; }
