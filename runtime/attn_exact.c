/* The exact path's attention, vectorized without changing a bit.
 *
 * The scalar reference (attn_heads in forward.c) computes each score as one
 * running sum d += q[i]·k[i] in dimension order and each output as
 * o[i] += p_s·v_s[i] in position order, multiply and add rounded separately
 * (the build uses -ffp-contract=off). Both loops are independent across
 * keys (scores) and across dimensions (outputs), so registers can hold 8
 * keys' or 8 dimensions' sums, each element summed in the reference's order
 * with the reference's operations: same bits on every ISA, which is what
 * keeps calibration files and squish-verify's figures machine-independent.
 * The softmax (max, expf, one running sum) stays scalar. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"

void sq_attn_transpose_keys(const attn_ctx *a, uint32_t kvh, uint64_t Tp, float *kt) {
    const sq_rt_config *c = a->c;
    const uint32_t hd = c->head_dim, NK = a->q0 + a->T;
    const uint64_t kvstride = (uint64_t)c->n_kv_heads * hd;
    for (uint32_t i = 0; i < hd; i++) {
        float *row = kt + (size_t)i * Tp;
        for (uint32_t s = 0; s < NK; s++) row[s] = a->k[s * kvstride + (uint64_t)kvh * hd + i];
        for (uint64_t s = NK; s < Tp; s++) row[s] = 0;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))

int sq_attn_exact_avx2_ok(const sq_rt_config *c) { return c->head_dim % 8 == 0 && sq_isa_active() >= SQ_ISA_AVX2; }

/* Scores of queries qa and qb against keys s0..s0+31 of the transposed keys
 * kt ([hd][Tp]): 4 blocks of 8 keys per query, eight independent chains. */
AVX2 static void scores32(const float *kt, uint64_t Tp, uint32_t hd, const float *qa, const float *qb, uint32_t s0, float scale,
                          float *sa, float *sb) {
    __m256 a[4], b[4];
    for (int j = 0; j < 4; j++) a[j] = b[j] = _mm256_setzero_ps();
    for (uint32_t i = 0; i < hd; i++) {
        const float *kr = kt + (uint64_t)i * Tp + s0;
        const __m256 xa = _mm256_set1_ps(qa[i]), xb = _mm256_set1_ps(qb[i]);
        for (int j = 0; j < 4; j++) {
            const __m256 kv = _mm256_load_ps(kr + 8 * j);
            a[j] = _mm256_add_ps(a[j], _mm256_mul_ps(xa, kv));
            b[j] = _mm256_add_ps(b[j], _mm256_mul_ps(xb, kv));
        }
    }
    const __m256 sv = _mm256_set1_ps(scale);
    for (int j = 0; j < 4; j++) {
        _mm256_store_ps(sa + s0 + 8 * j, _mm256_mul_ps(a[j], sv));
        _mm256_store_ps(sb + s0 + 8 * j, _mm256_mul_ps(b[j], sv));
    }
}

/* p_s = e_s / sum for every s: a correctly rounded division per element,
 * the reference's value, 8 at a time. */
AVX2 static void normalize(float *sc, uint32_t n, float sum) {
    const __m256 d = _mm256_set1_ps(sum);
    uint32_t s = 0;
    for (; s + 8 <= n; s += 8) _mm256_storeu_ps(sc + s, _mm256_div_ps(_mm256_loadu_ps(sc + s), d));
    for (; s < n; s++) sc[s] = sc[s] / sum;
}

/* The reference's softmax in place: max, expf and the sum in position
 * order, then p_s = e_s / sum. */
AVX2 static void softmax(float *sc, uint32_t n) {
    float mx = -INFINITY, sum = 0;
    for (uint32_t s = 0; s < n; s++)
        if (sc[s] > mx) mx = sc[s];
    for (uint32_t s = 0; s < n; s++) {
        sc[s] = expf(sc[s] - mx);
        sum += sc[s];
    }
    normalize(sc, n, sum);
}

/* Softmax of n scores and the weighted sum of values into o, as the
 * reference: max, expf and the sum in position order; p_s = e_s / sum;
 * o[i] += p_s·v_s[i] for s in order. */
AVX2 static void finish(float *sc, uint32_t n, const float *v, uint64_t vstride, uint32_t hd, float *o) {
    softmax(sc, n);
    if (hd == 64) { /* the common head size: the sums stay in registers */
        __m256 acc[8];
        for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
        for (uint32_t s = 0; s < n; s++) {
            const __m256 p = _mm256_set1_ps(sc[s]);
            const float *vv = v + s * vstride;
            for (int j = 0; j < 8; j++) acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(p, _mm256_loadu_ps(vv + 8 * j)));
        }
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(o + 8 * j, acc[j]);
        return;
    }
    memset(o, 0, hd * sizeof(float));
    for (uint32_t s = 0; s < n; s++) {
        const __m256 p = _mm256_set1_ps(sc[s]);
        const float *vv = v + s * vstride;
        for (uint32_t i = 0; i < hd; i += 8)
            _mm256_storeu_ps(o + i, _mm256_add_ps(_mm256_loadu_ps(o + i), _mm256_mul_ps(p, _mm256_loadu_ps(vv + i))));
    }
}

#define AVX512 __attribute__((target("avx2,avx512f")))

/* scores32 with 16 keys per register: the same per-key operations. */
AVX512 static void scores32_avx512(const float *kt, uint64_t Tp, uint32_t hd, const float *qa, const float *qb, uint32_t s0,
                                   float scale, float *sa, float *sb) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    for (uint32_t i = 0; i < hd; i++) {
        const float *kr = kt + (uint64_t)i * Tp + s0;
        const __m512 xa = _mm512_set1_ps(qa[i]), xb = _mm512_set1_ps(qb[i]);
        const __m512 k0 = _mm512_load_ps(kr), k1 = _mm512_load_ps(kr + 16);
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(xa, k0));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(xa, k1));
        b0 = _mm512_add_ps(b0, _mm512_mul_ps(xb, k0));
        b1 = _mm512_add_ps(b1, _mm512_mul_ps(xb, k1));
    }
    const __m512 sv = _mm512_set1_ps(scale);
    _mm512_store_ps(sa + s0, _mm512_mul_ps(a0, sv));
    _mm512_store_ps(sa + s0 + 16, _mm512_mul_ps(a1, sv));
    _mm512_store_ps(sb + s0, _mm512_mul_ps(b0, sv));
    _mm512_store_ps(sb + s0 + 16, _mm512_mul_ps(b1, sv));
}

/* finish for head_dim 64 with 16 dimensions per register. */
AVX512 static void finish_avx512(float *sc, uint32_t n, const float *v, uint64_t vstride, uint32_t hd, float *o) {
    softmax(sc, n);
    (void)hd;
    __m512 acc[4];
    for (int j = 0; j < 4; j++) acc[j] = _mm512_setzero_ps();
    for (uint32_t s = 0; s < n; s++) {
        const __m512 p = _mm512_set1_ps(sc[s]);
        const float *vv = v + s * vstride;
        for (int j = 0; j < 4; j++) acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(p, _mm512_loadu_ps(vv + 16 * j)));
    }
    for (int j = 0; j < 4; j++) _mm512_storeu_ps(o + 16 * j, acc[j]);
}

/* finish_avx512 for two queries at once (na <= nb <= na + 1 scores): each
 * value row is loaded once for both, halving the L2 traffic that bounds
 * the weighted sum; each query's sums keep their order and operations. */
AVX512 static void finish2_avx512(float *sa, uint32_t na, float *sb, uint32_t nb, const float *v, uint64_t vstride,
                                  float *oa, float *ob) {
    softmax(sa, na);
    softmax(sb, nb);
    __m512 acc[4], bcc[4];
    for (int j = 0; j < 4; j++) acc[j] = bcc[j] = _mm512_setzero_ps();
    uint32_t s = 0;
    for (; s < na; s++) {
        const __m512 pa = _mm512_set1_ps(sa[s]), pb = _mm512_set1_ps(sb[s]);
        const float *vv = v + s * vstride;
        for (int j = 0; j < 4; j++) {
            const __m512 x = _mm512_loadu_ps(vv + 16 * j);
            acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(pa, x));
            bcc[j] = _mm512_add_ps(bcc[j], _mm512_mul_ps(pb, x));
        }
    }
    for (; s < nb; s++) {
        const __m512 pb = _mm512_set1_ps(sb[s]);
        const float *vv = v + s * vstride;
        for (int j = 0; j < 4; j++) bcc[j] = _mm512_add_ps(bcc[j], _mm512_mul_ps(pb, _mm512_loadu_ps(vv + 16 * j)));
    }
    for (int j = 0; j < 4; j++) {
        _mm512_storeu_ps(oa + 16 * j, acc[j]);
        _mm512_storeu_ps(ob + 16 * j, bcc[j]);
    }
}

void sq_attn_exact_heads_avx2(void *p, uint64_t h0, uint64_t h1) {
    attn_ctx *a = p;
    const sq_rt_config *c = a->c;
    const uint32_t hd = c->head_dim, group = c->n_heads / c->n_kv_heads, T = a->T, NK = a->q0 + T;
    const uint64_t Tp = (NK + 31) / 32 * 32, kvstride = (uint64_t)c->n_kv_heads * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sa = aligned_alloc(64, Tp * sizeof(float)), *sb = aligned_alloc(64, Tp * sizeof(float)),
          *kt = aligned_alloc(64, (size_t)hd * Tp * sizeof(float));
    if (!sa || !sb || !kt) {
        free(sa);
        free(sb);
        free(kt);
        a->failed = 1;
        return;
    }
    const int wide = hd == 64 && sq_isa_active() >= SQ_ISA_AVX512; /* 16 lanes: the same operations per element */
    void (*scores)(const float *, uint64_t, uint32_t, const float *, const float *, uint32_t, float, float *, float *) =
        wide ? scores32_avx512 : scores32;
    void (*fin)(float *, uint32_t, const float *, uint64_t, uint32_t, float *) = wide ? finish_avx512 : finish;
    uint32_t kt_head = UINT32_MAX;
    for (uint64_t h = h0; h < h1; h++) {
        const uint32_t kvh = (uint32_t)h / group;
        if (kvh != kt_head) {
            sq_attn_transpose_keys(a, kvh, Tp, kt);
            kt_head = kvh;
        }
        for (uint32_t t = 0; t < T; t += 2) { /* two queries share the key loads */
            const int two = t + 1 < T;
            const float *qa = a->q + ((uint64_t)t * c->n_heads + h) * hd, *qb = two ? qa + (uint64_t)c->n_heads * hd : qa;
            const uint32_t na = a->q0 + t + 1, nb = two ? na + 1 : na;
            for (uint32_t s0 = 0; s0 < nb; s0 += 32) scores(kt, Tp, hd, qa, qb, s0, scale, sa, sb);
            const float *vh = a->v + (uint64_t)kvh * hd;
            float *oa = a->out + ((uint64_t)t * c->n_heads + h) * hd, *ob = oa + (uint64_t)c->n_heads * hd;
            if (two && wide) {
                finish2_avx512(sa, na, sb, nb, vh, kvstride, oa, ob);
                continue;
            }
            fin(sa, na, vh, kvstride, hd, oa);
            if (two) fin(sb, nb, vh, kvstride, hd, ob);
        }
    }
    free(sa);
    free(sb);
    free(kt);
}
#else
int sq_attn_exact_avx2_ok(const sq_rt_config *c) {
    (void)c;
    return 0;
}
void sq_attn_exact_heads_avx2(void *p, uint64_t h0, uint64_t h1) {
    (void)p, (void)h0, (void)h1;
}
#endif
