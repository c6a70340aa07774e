/* SpQR's integer-activation GEMV (sq_act_q8: int8 blocks of 32), portable
 * reference and AVX-512 (VNNI, VBMI) kernel, in stored column order (the
 * chain's perm or rht_in link maps x first).
 *
 * The dense part by lanes of 4 columns: lane l holds columns 4l..4l+3, so
 * with groups of a multiple of 4 it lies in one group g and one q8 block b:
 *   P = Σ code·q, Q = Σ q over the lane (exact integers),
 *   a = fmaf(-Z_g, Q, P), t = a · d_b, lane[l % 16] = fmaf(S_g, t, lane[l % 16]),
 * lanes in column order, summed by the fixed tree of sq_lanes16_sum;
 * then the row's outliers in CSR order, o += (v - S(code - Z)) · (d_b · q),
 * and y = lanes + o. S and Z are the exact kernels' values. (With groups
 * not a multiple of 4, a lane takes its group segments in turn.) The
 * AVX-512 kernel keeps the 16 lanes of a 64-column chunk in one zmm: the
 * codes of a chunk are 8·w bytes, spread to one byte per code by vpermb and
 * vpmultishiftqb, multiplied with q by vpdpbusd (codes are unsigned), so it
 * gives the reference's bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"
#include "codecs/spqr/spqr_codec.h"
#include "codecs/spqr/spqr_decode.h"

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Σ over row r's outliers of (v - dense)·x̂, x̂ = d·q. */
static float outliers_q8(const sq_spqr_view *v, uint64_t r, const sq_act_q8 *x) {
    const sq_spqr_shape *s = &v->shape;
    const uint8_t *row = v->codes + r * sq_spqr_code_stride(s);
    float o = 0;
    for (uint32_t k = v->row_ptr[r]; k < v->row_ptr[r + 1]; k++) {
        const uint64_t j = v->outlier_cols[k];
        float S, Z;
        sq_spqr_group_stats(v, r, j / s->group, &S, &Z);
        const float dense = S * ((float)sq_spqr_code_at(row, j, s->wbits) - Z);
        o += (sq_f16_to_f32(v->outlier_vals[k]) - dense) * (x->d[j / 32] * (float)x->q[j]);
    }
    return o;
}

void sq_spqr_gemv_q8_portable(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_spqr_view v;
    sq_spqr_view_from_tview(t, &v);
    const sq_spqr_shape *s = &v.shape;
    const uint64_t K = s->cols, gs = s->group, cs = sq_spqr_code_stride(s);
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = v.codes + r * cs;
        float lanes[16] = {0};
        for (uint64_t l = 0; 4 * l < K; l++) {
            const uint64_t j1 = 4 * l + 4 < K ? 4 * l + 4 : K;
            for (uint64_t j = 4 * l; j < j1;) { /* the lane's segments, one per group it touches */
                const uint64_t g = j / gs, e = (g + 1) * gs < j1 ? (g + 1) * gs : j1;
                int32_t P = 0, Q = 0;
                for (; j < e; j++) {
                    P += (int32_t)sq_spqr_code_at(row, j, s->wbits) * x->q[j];
                    Q += x->q[j];
                }
                float S, Z;
                sq_spqr_group_stats(&v, r, g, &S, &Z);
                const float a = fmaf(-Z, (float)Q, (float)P), tt = a * x->d[(4 * l) / 32];
                lanes[l % 16] = fmaf(S, tt, lanes[l % 16]);
            }
        }
        y[r] = sq_lanes16_sum(lanes) + outliers_q8(&v, r, x);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#include "codecs/lanes16_avx512.h"

int sq_spqr_q8_avx512_ok(const sq_tview *t) {
    const uint32_t gs = sq_spqr_shape_of(t->params, t->rows, t->cols, 0).group;
    return sq_isa_avx512_vbmi() && (gs == 16 || gs == 32 || gs % 64 == 0);
}

#define K512 __attribute__((target("avx2,f16c,fma,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))

/* 64 codes of width b (1..8) from a bitstream whose code 0 starts at byte
 * p[0] bit 0, one byte each; only the first nbytes bytes are used, and a
 * plain 64-byte load is taken where the part has avail bytes from p (a
 * masked load there measured 3x slower from cold memory on Zen 4). */
K512 static inline __m512i unpack64(const uint8_t *p, uint64_t nbytes, uint64_t avail, const __m512i spread,
                                    const __m512i shifts, const __m512i mask) {
    __m512i raw;
    if (avail >= 64) {
        raw = _mm512_loadu_si512(p);
        if (nbytes < 64) raw = _mm512_maskz_mov_epi8(((__mmask64)1 << nbytes) - 1, raw);
    } else {
        raw = _mm512_maskz_loadu_epi8(nbytes >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << nbytes) - 1), p);
    }
    return _mm512_and_si512(_mm512_multishift_epi64_epi8(shifts, _mm512_permutexvar_epi8(spread, raw)), mask);
}

/* vpermb indices (qword i takes bytes i·b .. i·b+7) and vpmultishiftqb shifts (byte t of a qword: bit t·b) for width b */
static void unpack_consts(uint32_t b, uint8_t spread[64], uint8_t shifts[64]) {
    for (int i = 0; i < 8; i++)
        for (int t = 0; t < 8; t++) {
            spread[8 * i + t] = (uint8_t)(i * (int)b + t);
            shifts[8 * i + t] = (uint8_t)(t * (int)b);
        }
}

K512 static void gemv_q8(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_spqr_view v;
    sq_spqr_view_from_tview(t, &v);
    const sq_spqr_shape *s = &v.shape;
    const uint64_t K = s->cols, gs = s->group, w = s->wbits, sb = s->stat_bits, cs = sq_spqr_code_stride(s);
    const uint64_t ss = sq_spqr_stat_stride(s), ng = ceil_div(K, gs), nch = ceil_div(K, 64), ngp = ceil_div(ng, 64) * 64;
    /* per call: q padded to whole chunks, lane sums Q as floats, block scales by lane pair; per row block the
     * second-level statistics by group; per row S and Z by group */
    float *buf = aligned_alloc(64, (16 * nch * 2 + 2 * nch * 16 + 6 * ngp) * sizeof(float) + 64 * nch);
    if (!buf) {
        sq_spqr_gemv_q8_portable(t, x, y, r0, r1);
        return;
    }
    float *Qf = buf, *dl = Qf + 16 * nch, *T = dl + 16 * nch * 2, *SA = T + 4 * ngp, *ZA = SA + ngp;
    int8_t *q = (int8_t *)(ZA + ngp);
    const uint64_t nq = x->nblocks * 32;
    for (uint64_t i = 0; i < 64 * nch; i++) q[i] = i < nq ? x->q[i] : 0;
    for (uint64_t l = 0; l < 16 * nch; l++) {
        Qf[l] = (float)(q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3]);
        dl[l] = 4 * l < nq ? x->d[(4 * l) / 32] : 0.0f;
    }
    uint8_t sp_w[64], sh_w[64], sp_s[64], sh_s[64];
    unpack_consts((uint32_t)w, sp_w, sh_w);
    unpack_consts((uint32_t)sb, sp_s, sh_s);
    const __m512i spw = _mm512_loadu_si512(sp_w), shw = _mm512_loadu_si512(sh_w), mw = _mm512_set1_epi8((char)((1 << w) - 1));
    const __m512i sps = _mm512_loadu_si512(sp_s), shs = _mm512_loadu_si512(sh_s), ms = _mm512_set1_epi8((char)((1 << sb) - 1));
    /* lane l of a chunk is in group (64m + 4l) / gs: with gs 16 or 32 an offset l / (gs/4) from the chunk's first group */
    __m512i gidx = _mm512_setzero_si512();
    if (gs < 64) {
        int32_t gi[16];
        for (int l = 0; l < 16; l++) gi[l] = (int32_t)(4 * (uint64_t)l / gs);
        gidx = _mm512_loadu_si512(gi);
    }
    for (uint64_t g = ng; g < ngp; g++) /* groups past the last: S = Z = 0 (the padded lanes add nothing) */
        for (int i = 0; i < 4; i++) T[(uint64_t)i * ngp + g] = 0.0f;
    uint64_t rb = UINT64_MAX;
    for (uint64_t r = r0; r < r1; r++) {
        if (r / s->stat_group != rb) { /* ss, sz, zs, zz of every group, by kind */
            rb = r / s->stat_group;
            const uint16_t *st = v.stats2 + rb * ng * 4;
            for (uint64_t g = 0; g < ng; g++)
                for (int i = 0; i < 4; i++) T[(uint64_t)i * ngp + g] = sq_f16_to_f32(st[4 * g + (uint64_t)i]);
        }
        const uint8_t *sc = v.scale_codes + r * ss, *zc = v.zero_codes + r * ss;
        for (uint64_t g0 = 0; g0 < ng; g0 += 64) { /* S and Z of 64 groups: the exact kernels' sub, mul */
            const uint64_t off = g0 * sb / 8, nb = ss - off;
            const uint64_t av = (s->rows - r) * ss - off;
            const __m512i cS = unpack64(sc + off, nb, av, sps, shs, ms), cZ = unpack64(zc + off, nb, av, sps, shs, ms);
            _Alignas(64) uint8_t bS[64], bZ[64];
            _mm512_store_si512(bS, cS);
            _mm512_store_si512(bZ, cZ);
            for (int k = 0; k < 4; k++) {
                const uint64_t g = g0 + 16 * (uint64_t)k;
                const __m512 fS = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(bS + 16 * k))));
                const __m512 fZ = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(bZ + 16 * k))));
                _mm512_store_ps(SA + g, _mm512_mul_ps(_mm512_load_ps(T + g), _mm512_sub_ps(fS, _mm512_load_ps(T + ngp + g))));
                _mm512_store_ps(ZA + g, _mm512_mul_ps(_mm512_load_ps(T + 2 * ngp + g), _mm512_sub_ps(fZ, _mm512_load_ps(T + 3 * ngp + g))));
            }
        }
        const uint8_t *row = v.codes + r * cs;
        __m512 acc = _mm512_setzero_ps();
        /* the chunk's first group without a division: gs / 64 chunks a group, or 64 / gs groups a chunk */
        const uint64_t cpg = gs >= 64 ? gs / 64 : 1, gpc = gs >= 64 ? 1 : 64 / gs;
        for (uint64_t m = 0, g = 0, left = cpg; m < nch; m++) {
            const uint64_t off = m * 8 * w;
            const __m512i codes = unpack64(row + off, cs - off, (s->rows - r) * cs - off, spw, shw, mw);
            const __m512i P = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, _mm512_load_si512(q + 64 * m));
            __m512 S, Z;
            if (gs >= 64) S = _mm512_set1_ps(SA[g]), Z = _mm512_set1_ps(ZA[g]);
            else S = _mm512_permutexvar_ps(gidx, _mm512_loadu_ps(SA + g)), Z = _mm512_permutexvar_ps(gidx, _mm512_loadu_ps(ZA + g));
            const __m512 a = _mm512_fnmadd_ps(Z, _mm512_load_ps(Qf + 16 * m), _mm512_cvtepi32_ps(P));
            acc = _mm512_fmadd_ps(S, _mm512_mul_ps(a, _mm512_load_ps(dl + 16 * m)), acc);
            if (--left == 0) g += gpc, left = cpg;
        }
        y[r] = sq_lanes16_sum_avx512(acc) + outliers_q8(&v, r, x);
    }
    free(buf);
}

void sq_spqr_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    if (sq_spqr_q8_avx512_ok(t)) gemv_q8(t, x, y, r0, r1);
    else sq_spqr_gemv_q8_portable(t, x, y, r0, r1);
}
#else
int sq_spqr_q8_avx512_ok(const sq_tview *t) {
    (void)t;
    return 0;
}
void sq_spqr_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_spqr_gemv_q8_portable(t, x, y, r0, r1);
}
#endif
