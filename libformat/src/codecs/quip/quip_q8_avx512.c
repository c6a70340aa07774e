/* AVX-512 (VNNI, VBMI, GFNI) integer-activation GEMV of the quip codec: the
 * portable reference's bits (quip_q8.c), at several times the exact
 * kernels' speed: those decode one 8-weight group per step through
 * per-group table loads, this one 64 groups at once with byte shuffles.
 *
 * A chunk is 64 groups (512 weights) of a row, taken coordinate by
 * coordinate: the zmm of coordinate i holds weight 8g+i of group g in byte
 * g. The activations are laid out the same way once per call, so byte g of
 * coordinate i meets q[8g+i], and vpdpbusd's dword j sums groups 4j..4j+3,
 * which is exactly q8 block j of the chunk. Per coordinate:
 *   - the codebook value: a 256-entry byte table lookup (two vpermt2b over
 *     128 entries each, blended on the code's top bit);
 *   - E8P's sign: bit i of F, where F is the sign byte S through a GF(2)
 *     affine map (gf2p8affineqb): the bit permutation and the parity fix of
 *     e8p.h in one instruction; the shift ±1 (times 4) and the unsigned bias
 *     16 in one byte C = 16 ± 1 from a second affine map;
 *   - the 8-bit stages' tables hold value·4 + 16 already.
 * So every weight byte is value·4 + 16 in 5..27, vpdpbusd multiplies it
 * (unsigned) by q (signed), and 16·sum(q) per block takes the bias out. */
#include <stdlib.h>

#include "codecs/codecs.h"
#include "codecs/lanes16_avx512.h"
#include "codecs/quip/quip_codec.h"

#if defined(__x86_64__)
#include <immintrin.h>

int sq_quip_q8_avx512_ok(void) { return sq_isa_avx512_vbmi() && sq_isa_avx512_gfni(); }

#define K512 __attribute__((target("avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,gfni")))

/* gf2p8affineqb's matrix from the row of each output bit (row i: the input bits whose parity is bit i). */
static uint64_t affine_matrix(const uint8_t rows[8]) {
    uint64_t m = 0;
    for (int i = 0; i < 8; i++) m |= (uint64_t)rows[i] << (8 * (7 - i));
    return m;
}

/* Byte lookup of 64 codes in a 256-entry table (four 64-byte quarters). */
K512 static inline __m512i lookup256(const void *tab, __m512i code, __mmask64 top) {
    const __m512i *q = (const __m512i *)tab;
    const __m512i lo = _mm512_permutex2var_epi8(_mm512_load_si512(q), code, _mm512_load_si512(q + 1));
    const __m512i hi = _mm512_permutex2var_epi8(_mm512_load_si512(q + 2), code, _mm512_load_si512(q + 3));
    return _mm512_mask_blend_epi8(top, lo, hi);
}


/* Byte j: 2j, the low (sign) byte of code j of two zmm of u16 codes (+1: the high byte, A). */
static const uint8_t deint[64] = {0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
                                  32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62,
                                  64, 66, 68, 70, 72, 74, 76, 78, 80, 82, 84, 86, 88, 90, 92, 94,
                                  96, 98, 100, 102, 104, 106, 108, 110, 112, 114, 116, 118, 120, 122, 124, 126};

/* The GF(2) maps and shuffle indices of the E8P weights. */
typedef struct e8p_consts {
    __m512i MF, MC, idxS, idxA;
} e8p_consts;

K512 static e8p_consts e8p_consts_make(void) {
    static const uint8_t perm[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    uint8_t frows[8], crows[8] = {0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0};
    for (int i = 0; i < 8; i++) frows[i] = perm[i] ? (uint8_t)(1u << perm[i]) : 0xFE; /* f = S with bit 0 xor parity(S) */
    e8p_consts k;
    k.MF = _mm512_set1_epi64((long long)affine_matrix(frows));
    k.MC = _mm512_set1_epi64((long long)affine_matrix(crows));
    k.idxS = _mm512_loadu_si512(deint);
    k.idxA = _mm512_add_epi8(k.idxS, _mm512_set1_epi8(1));
    return k;
}

/* The biased weight bytes (value·4 + 16) of ng <= 64 E8P groups, by coordinate. */
K512 static inline __attribute__((always_inline)) void e8p_weights(const sq_quip_q8_tables *t, const e8p_consts *k,
                                                                   const uint16_t *codes, uint64_t ng, uint64_t avail,
                                                                   __m512i w[8]) {
    __m512i c0, c1;
    if (ng == 64) { /* plain loads: masked ones ran 3x slower from cold memory on Zen 4 */
        c0 = _mm512_loadu_si512(codes), c1 = _mm512_loadu_si512(codes + 32);
    } else if (avail >= 128) { /* codes past the row's end read (in the part), then cleared */
        const __mmask32 k0 = ng >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << ng) - 1);
        const __mmask32 k1 = ng > 32 ? (__mmask32)((1u << (ng - 32)) - 1) : 0;
        c0 = _mm512_maskz_mov_epi16(k0, _mm512_loadu_si512(codes)), c1 = _mm512_maskz_mov_epi16(k1, _mm512_loadu_si512(codes + 32));
    } else {
        const __mmask32 k0 = ng >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << ng) - 1);
        const __mmask32 k1 = ng > 32 ? (__mmask32)((1u << (ng - 32)) - 1) : 0;
        c0 = _mm512_maskz_loadu_epi16(k0, codes), c1 = _mm512_maskz_loadu_epi16(k1, codes + 32);
    }
    const __m512i A = _mm512_permutex2var_epi8(c0, k->idxA, c1), S = _mm512_permutex2var_epi8(c0, k->idxS, c1);
    const __mmask64 top = _mm512_movepi8_mask(A);
    const __m512i F = _mm512_gf2p8affine_epi64_epi8(S, k->MF, 0);
    const __m512i C = _mm512_gf2p8affine_epi64_epi8(S, k->MC, 0x11); /* 16 + 1, or 16 - 1 where parity(S) is odd */
    for (int i = 0; i < 8; i++) {
        const __m512i b = lookup256(t->col_e8p[i], A, top);
        const __mmask64 neg = _mm512_test_epi8_mask(F, _mm512_set1_epi8((char)(1 << i)));
        w[i] = _mm512_mask_sub_epi8(_mm512_add_epi8(C, b), neg, C, b);
    }
}

/* The same for an 8-bit stage (E81B or E8R tables, biased, by coordinate). */
K512 static inline __attribute__((always_inline)) void tab_weights(const uint8_t (*col)[256], const uint8_t *codes, uint64_t ng,
                                                                   uint64_t avail, __m512i w[8]) {
    const __mmask64 k = ng >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << ng) - 1);
    const __m512i A = ng == 64 ? _mm512_loadu_si512(codes)
                      : avail >= 64 ? _mm512_maskz_mov_epi8(k, _mm512_loadu_si512(codes))
                                    : _mm512_maskz_loadu_epi8(k, codes);
    const __mmask64 top = _mm512_movepi8_mask(A);
    for (int i = 0; i < 8; i++) w[i] = lookup256(col[i], A, top);
}

/* One token's activations laid out by chunk and coordinate (xp), with the
 * block scales (dp) and 16·block sums (sp), zero padded to whole chunks. */
typedef struct act_layout {
    const int8_t *xp;
    const float *dp;
    const int32_t *sp;
} act_layout;
#define LAYOUT_BYTES(nch) ((nch) * (512 + 16 * sizeof(float) + 16 * sizeof(int32_t)))

/* Byte 8i+j: 8j+i (an 8x8 byte transpose: coordinate i of groups j). */
static const uint8_t tr8[64] = {0, 8,  16, 24, 32, 40, 48, 56, 1, 9,  17, 25, 33, 41, 49, 57, 2, 10, 18, 26, 34, 42,
                                50, 58, 3, 11, 19, 27, 35, 43, 51, 59, 4, 12, 20, 28, 36, 44, 52, 60, 5, 13, 21, 29,
                                37, 45, 53, 61, 6, 14, 22, 30, 38, 46, 54, 62, 7, 15, 23, 31, 39, 47, 55, 63};

K512 static act_layout layout_act(const sq_act_q8 *x, uint64_t nch, int8_t *buf) {
    float *dp = (float *)(buf + 512 * nch);
    int32_t *sp = (int32_t *)(dp + 16 * nch);
    const uint64_t nq = x->nblocks * 32;
    const __m512i idx = _mm512_loadu_si512(tr8);
    for (uint64_t m = 0; m < nch; m++) {
        /* each 64 bytes (8 groups) transposed in place, then the 8-byte rows moved to their coordinate */
        _Alignas(64) uint64_t t[64];
        for (uint64_t k = 0; k < 8; k++) {
            const uint64_t src = 512 * m + 64 * k, n = src >= nq ? 0 : nq - src >= 64 ? 64 : nq - src;
            const __mmask64 mk = n == 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
            _mm512_store_si512(t + 8 * k, _mm512_permutexvar_epi8(idx, _mm512_maskz_loadu_epi8(mk, x->q + (n ? src : 0))));
        }
        uint64_t *o = (uint64_t *)(buf + 512 * m);
        for (int i = 0; i < 8; i++)
            for (int k = 0; k < 8; k++) o[8 * i + k] = t[8 * k + i];
    }
    for (uint64_t k = 0; k < 16 * nch; k++) {
        dp[k] = k < x->nblocks ? x->d[k] : 0.0f;
        sp[k] = k < x->nblocks ? SQ_QUIP_Q8_BIAS * x->sum[k] : 0;
    }
    return (act_layout){buf, dp, sp};
}

/* One chunk's dot of weights w with one token: the 16 block dots, unbiased,
 * into the block lanes. */
K512 static inline __attribute__((always_inline)) __m512 chunk_dot(const __m512i w[8], const act_layout *a, uint64_t m, __m512 acc) {
    const int8_t *xm = a->xp + 512 * m;
    __m512i d0 = _mm512_setzero_si512(), d1 = d0;
    for (int i = 0; i < 8; i += 2) {
        d0 = _mm512_dpbusd_epi32(d0, w[i], _mm512_load_si512(xm + 64 * i));
        d1 = _mm512_dpbusd_epi32(d1, w[i + 1], _mm512_load_si512(xm + 64 * (i + 1)));
    }
    const __m512i dot = _mm512_sub_epi32(_mm512_add_epi32(d0, d1), _mm512_load_si512(a->sp + 16 * m));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_load_ps(a->dp + 16 * m), acc);
}

/* One stage of one row against NT tokens (the weights decoded once per
 * chunk): out[j] = token j's sum of the 16 block lanes. */
K512 static inline __attribute__((always_inline)) void stage_row(const sq_quip_q8_tables *t, const e8p_consts *k,
                                                                 sq_quip_book book, const void *codes, uint64_t G,
                                                                 uint64_t avail, const act_layout *a, const int NT,
                                                                 float *out) {
    __m512 acc[8];
    for (int j = 0; j < NT; j++) acc[j] = _mm512_setzero_ps();
    for (uint64_t g0 = 0, m = 0; g0 < G; g0 += 64, m++) {
        const uint64_t ng = G - g0 < 64 ? G - g0 : 64;
        __m512i w[8];
        if (book == SQ_QUIP_E8P) e8p_weights(t, k, (const uint16_t *)codes + g0, ng, (avail - g0) * 2, w);
        else tab_weights(book == SQ_QUIP_E81B ? t->col_e81b : t->col_e8r, (const uint8_t *)codes + g0, ng, avail - g0, w);
        for (int j = 0; j < NT; j++) acc[j] = chunk_dot(w, a + j, m, acc[j]);
    }
    for (int j = 0; j < NT; j++) out[j] = sq_lanes16_sum_avx512(acc[j]);
}

/* Rows [r0, r1) against NT laid-out tokens: y[j * ys + r] (ys: the row
 * stride between tokens), stage parts added in the exact kernel's order. */
K512 static inline __attribute__((always_inline)) void rows_tokens(const sq_quip_view *v, const sq_quip_q8_tables *t,
                                                                   const e8p_consts *k, const act_layout *a, const int NT,
                                                                   float *y, uint64_t ys, uint64_t r0, uint64_t r1) {
    const uint64_t G = v->cols / 8;
    const uint32_t S = sq_quip_stages(v->bits, v->nested);
    for (uint64_t r = r0; r < r1; r++)
        for (uint32_t s = 0; s < S; s++) {
            const sq_quip_book book = sq_quip_stage_book(v->bits, v->nested, s);
            const uint8_t *codes = (const uint8_t *)sq_quip_stage_codes(v, s) + r * G * (book == SQ_QUIP_E8P ? 2 : 1);
            float d[8];
            stage_row(t, k, book, codes, G, (v->rows - r) * G, a, NT, d); /* codes to the part's end */
            const float sc = sq_f16_to_f32(v->scales[s * v->rows + r]) * 0.25f;
            for (int j = 0; j < NT; j++) y[j * ys + r] = s ? y[j * ys + r] + sc * d[j] : sc * d[j];
        }
}

K512 static void rows_1(const sq_quip_view *v, const sq_quip_q8_tables *t, const e8p_consts *k, const act_layout *a, float *y,
                        uint64_t r0, uint64_t r1) {
    rows_tokens(v, t, k, a, 1, y, 0, r0, r1);
}

#define TILE 8 /* tokens that share one decode of the weights */
K512 static void rows_tile(const sq_quip_view *v, const sq_quip_q8_tables *t, const e8p_consts *k, const act_layout *a, float *y,
                           uint64_t ys, uint64_t r0, uint64_t r1) {
    rows_tokens(v, t, k, a, TILE, y, ys, r0, r1);
}

/* T tokens (the GEMV: one): tiles of TILE laid out and run over all the
 * rows, the rest one by one; every output is the one-token bits. */
K512 static void gemm_q8(const sq_tview *tv, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    sq_quip_view v;
    sq_quip_view_from_tview(tv, &v);
    const uint64_t nch = (v.cols / 8 + 63) / 64;
    int8_t *buf = aligned_alloc(64, (T < TILE ? T : TILE) * LAYOUT_BYTES(nch));
    if (!buf) { /* no memory for the layout: the reference, same bits */
        for (uint32_t j = 0; j < T; j++) sq_quip_gemv_q8_portable(tv, x + j, y + (uint64_t)j * v.rows, r0, r1);
        return;
    }
    const sq_quip_q8_tables *t = sq_quip_q8_tables_get();
    const e8p_consts k = e8p_consts_make();
    act_layout a[TILE];
    uint32_t j = 0;
    for (; j + TILE <= T; j += TILE) {
        for (int i = 0; i < TILE; i++) a[i] = layout_act(x + j + i, nch, buf + (uint64_t)i * LAYOUT_BYTES(nch));
        rows_tile(&v, t, &k, a, y + (uint64_t)j * v.rows, v.rows, r0, r1);
    }
    for (; j < T; j++) {
        a[0] = layout_act(x + j, nch, buf);
        rows_1(&v, t, &k, a, y + (uint64_t)j * v.rows, r0, r1);
    }
    free(buf);
}

void sq_quip_gemv_q8_avx512(const sq_tview *tv, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    if (sq_quip_q8_avx512_ok()) gemm_q8(tv, x, 1, y, r0, r1);
    else sq_quip_gemv_q8_portable(tv, x, y, r0, r1);
}
void sq_quip_gemm_q8_avx512(const sq_tview *tv, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    if (sq_quip_q8_avx512_ok()) gemm_q8(tv, x, T, y, r0, r1);
    else sq_quip_gemm_q8_portable(tv, x, T, y, r0, r1);
}
#else
int sq_quip_q8_avx512_ok(void) { return 0; }
void sq_quip_gemm_q8_avx512(const sq_tview *tv, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    sq_quip_gemm_q8_portable(tv, x, T, y, r0, r1);
}
void sq_quip_gemv_q8_avx512(const sq_tview *tv, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_quip_gemv_q8_portable(tv, x, y, r0, r1);
}
#endif
