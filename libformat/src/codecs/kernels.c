/* Kernel selection from a codec's CPU traits, and the activation forms
 * kernels consume (f32 as given, or int8 blocks of 32: sq_act_q8). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"

sq_decode_fn sq_decode_for(const sq_codec *c, sq_isa isa) {
    for (int i = (int)isa; i > 0; i--)
        if (c->cpu->decode[i] && sq_isa_supported((sq_isa)i)) return c->cpu->decode[i];
    return c->cpu->decode[SQ_ISA_PORTABLE];
}

sq_gemv_fn sq_gemv_for(const sq_codec *c, sq_isa isa) {
    for (int i = (int)isa; i > 0; i--)
        if (c->cpu->gemv[i] && sq_isa_supported((sq_isa)i)) return c->cpu->gemv[i];
    return c->cpu->gemv[SQ_ISA_PORTABLE];
}

sq_cpu_kernel sq_fast_kernel_for(const sq_codec *c, sq_isa isa) {
    for (int i = (int)isa; i >= 0; i--)
        if (c->cpu->fast[i].fn.f32 && sq_isa_supported((sq_isa)i)) return c->cpu->fast[i];
    return (sq_cpu_kernel){.act = SQ_ACT_F32, .fn.f32 = sq_gemv_for(c, isa)};
}

sq_cpu_kernel sq_best_kernel(const sq_tview *t, sq_isa isa) {
    const sq_codec *c = t->codec;
    if (c->cpu->fast_pays && !c->cpu->fast_pays(t, isa))
        return (sq_cpu_kernel){.act = SQ_ACT_F32, .fn.f32 = sq_gemv_for(c, isa)};
    return sq_fast_kernel_for(c, isa);
}

sq_gemv_q8_fn sq_gemv_q8_for(const sq_codec *c, sq_isa isa) {
    sq_cpu_kernel k = sq_fast_kernel_for(c, isa);
    return k.act == SQ_ACT_Q8 ? k.fn.q8 : NULL;
}

sq_gemm_q8_fn sq_gemm_q8_for(const sq_codec *c, sq_isa isa) {
    for (int i = (int)isa; i >= 0; i--)
        if (c->cpu->gemm_q8[i] && sq_isa_supported((sq_isa)i)) return c->cpu->gemm_q8[i];
    return NULL;
}

void sq_kernel_run(sq_cpu_kernel k, const sq_tview *t, const sq_act *a, float *y, uint64_t r0, uint64_t r1) {
    if (k.act == SQ_ACT_Q8) k.fn.q8(t, &a->q8, y, r0, r1);
    else k.fn.f32(t, a->f32, y, r0, r1);
}

const char *sq_act_kind_name(sq_act_kind k) {
    static const char *const n[SQ_ACT_KINDS] = {"f32", "q8"};
    return k < SQ_ACT_KINDS ? n[k] : "?";
}

sq_status sq_act_prepare(sq_act_kind kind, const float *x, uint64_t n, sq_act *out, sq_err *err) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->n = n;
    out->f32 = x;
    if (kind == SQ_ACT_Q8) return sq_act_q8_init(&out->q8, x, n, err);
    return SQ_OK;
}

void sq_act_release(sq_act *a) {
    if (a->kind == SQ_ACT_Q8) sq_act_q8_free(&a->q8);
}

sq_status sq_act_q8_init(sq_act_q8 *a, const float *x, uint64_t n, sq_err *err) {
    memset(a, 0, sizeof *a);
    a->n = n;
    a->nblocks = (n + 31) / 32;
    a->q = aligned_alloc(64, (size_t)(a->nblocks * 32 + 63) / 64 * 64);
    a->d = malloc((size_t)a->nblocks * sizeof(float));
    a->sum = malloc((size_t)a->nblocks * sizeof(int32_t));
    if (!a->q || !a->d || !a->sum) {
        sq_act_q8_free(a);
        return sq_err_set(err, SQ_ENOMEM, "out of memory for a quantized activation of %llu values", (unsigned long long)n);
    }
    uint64_t b = 0;
    if (sq_isa_active() >= SQ_ISA_AVX512) { /* whole blocks, the same bits */
        sq_act_q8_blocks_avx512(x, n / 32, a->q, a->d, a->sum);
        b = n / 32;
    } else if (sq_isa_active() >= SQ_ISA_AVX2) {
        sq_act_q8_blocks_avx2(x, n / 32, a->q, a->d, a->sum);
        b = n / 32;
    }
    for (; b < a->nblocks; b++) {
        uint64_t i0 = b * 32, i1 = i0 + 32 < n ? i0 + 32 : n;
        float amax = 0;
        for (uint64_t i = i0; i < i1; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        float d = amax / 127.0f;
        int32_t s = 0;
        for (uint64_t i = i0; i < i0 + 32; i++) {
            int q = (i < i1 && d > 0) ? (int)nearbyintf(x[i] / d) : 0;
            a->q[i] = (int8_t)q;
            s += q;
        }
        a->d[b] = d;
        a->sum[b] = s;
    }
    return SQ_OK;
}

void sq_act_q8_free(sq_act_q8 *a) {
    free(a->q);
    free(a->d);
    free(a->sum);
    a->q = NULL;
    a->d = NULL;
    a->sum = NULL;
}

float sq_lanes16_sum(const float l[16]) {
    float t8[8], t4[4];
    for (int j = 0; j < 8; j++) t8[j] = l[j] + l[j + 8];
    for (int j = 0; j < 4; j++) t4[j] = t8[j] + t8[j + 4];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}
