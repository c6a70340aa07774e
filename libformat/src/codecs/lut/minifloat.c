/* OCP FP8/FP6/FP4 element encode/decode, written from the bit layouts in
 * spec/codecs.md (sign | exponent | mantissa, bias 2^(e-1)-1). */
#include <pthread.h>

#include "squish/fp.h"

static const sq_mf_info infos[SQ_MF_COUNT] = {
    {"e4m3", 8, 4, 3, 7, 448.0f, 8},
    {"e5m2", 8, 5, 2, 15, 57344.0f, 15},
    {"e3m2", 6, 3, 2, 3, 28.0f, 4},
    {"e2m3", 6, 2, 3, 1, 7.5f, 2},
    {"e2m1", 4, 2, 1, 1, 6.0f, 2},
};

const sq_mf_info *sq_mf(sq_minifloat f) { return &infos[f]; }

float sq_mf_decode(sq_minifloat f, uint8_t code) {
    const sq_mf_info *in = &infos[f];
    int s = (code >> (in->bits - 1)) & 1;
    int e = (code >> in->mbits) & ((1 << in->ebits) - 1);
    int m = code & ((1 << in->mbits) - 1);
    float v;
    if (f == SQ_MF_E4M3 && e == 15 && m == 7) return NAN;
    if (f == SQ_MF_E5M2 && e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexpf((float)m, 1 - in->bias - in->mbits);
    else v = ldexpf((float)((1 << in->mbits) | m), e - in->bias - in->mbits);
    return s ? -v : v;
}

uint8_t sq_mf_encode(sq_minifloat f, float v) {
    const sq_mf_info *in = &infos[f];
    uint8_t sign = (uint8_t)(signbit(v) ? 1u << (in->bits - 1) : 0);
    if (isnan(v)) {
        if (f == SQ_MF_E4M3) return 0x7f;
        if (f == SQ_MF_E5M2) return 0x7e;
        v = in->max_normal; /* formats without NaN: saturate */
    }
    float a = fabsf(v);
    int max_e = (1 << in->ebits) - 1 - (f == SQ_MF_E5M2 ? 1 : 0); /* top exponent field used by max_normal */
    if (a >= in->max_normal) {
        int max_m = (f == SQ_MF_E4M3) ? 6 : (1 << in->mbits) - 1;
        return sign | (uint8_t)(max_e << in->mbits) | (uint8_t)max_m;
    }
    int k;
    frexpf(a, &k); /* a = m * 2^k, m in [0.5, 1) */
    int E = k - 1, emin = 1 - in->bias;
    if (a == 0.0f || E < emin) E = emin;
    /* a / 2^(E - mbits) is exact (power-of-two scale); nearbyintf rounds ties to even */
    int n = (int)nearbyintf(ldexpf(a, in->mbits - E));
    int efield, mfield;
    if (n < (1 << in->mbits)) { /* subnormal (only possible when E == emin) */
        efield = 0;
        mfield = n;
    } else {
        if (n == (2 << in->mbits)) { E++; n = 1 << in->mbits; }
        efield = E + in->bias;
        mfield = n - (1 << in->mbits);
    }
    if (efield == 0 && mfield == 0) return 0; /* canonical +0 */
    uint8_t code = (uint8_t)(efield << in->mbits | mfield);
    return sign | code;
}

static float tables[SQ_MF_COUNT][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void) {
    for (int f = 0; f < SQ_MF_COUNT; f++)
        for (int c = 0; c < (1 << infos[f].bits); c++) tables[f][c] = sq_mf_decode((sq_minifloat)f, (uint8_t)c);
}

void sq_mf_init(void) { pthread_once(&once, build); }

const float *sq_mf_table(sq_minifloat f) {
    sq_mf_init();
    return tables[f];
}
