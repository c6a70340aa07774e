/* Y = X · W^T for weights in any codec: W is decoded 16 rows at a time (64 or
 * 16 in the lane GEMM of matmul_lanes.c, for many tokens on AVX-512/AVX2) into a
 * per-thread buffer and multiplied with all T activation rows, so each weight
 * is decoded once per call and no full f32 copy of the model exists. Threads
 * split W's rows; every output is computed by one thread in a fixed order,
 * so results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_lanes.h"
#include "runtime.h"

#define ROWS_PER_BLOCK 16

/* Four dot products of w with x0..x3: 8 lanes of fused multiply-adds, then
 * the lanes summed as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), then the tail
 * with separate multiply and add. This is exactly what dot4_avx2 computes
 * (fmaf rounds once, like the vector FMA), so the runtime's activations —
 * and with them calibration files — are the same bits on every path. */
static float hsum8_portable(const float l[8]) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}
static void dot4_portable(const float *w, const float *x0, const float *x1, const float *x2, const float *x3, uint64_t n,
                          float out[4]) {
    const float *x[4] = {x0, x1, x2, x3};
    float a[4][8] = {{0}};
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 8; k++) a[j][k] = fmaf(w[i + k], x[j][i + k], a[j][k]);
    for (int j = 0; j < 4; j++) {
        float s = hsum8_portable(a[j]);
        for (uint64_t t = i; t < n; t++) s += w[t] * x[j][t];
        out[j] = s;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
__attribute__((target("avx2,fma"))) static void dot4_avx2(const float *w, const float *x0, const float *x1, const float *x2,
                                                          const float *x3, uint64_t n, float out[4]) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv = _mm256_loadu_ps(w + i);
        a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + i), a0);
        a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + i), a1);
        a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + i), a2);
        a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + i), a3);
    }
    float s[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
    for (; i < n; i++) {
        s[0] += w[i] * x0[i];
        s[1] += w[i] * x1[i];
        s[2] += w[i] * x2[i];
        s[3] += w[i] * x3[i];
    }
    memcpy(out, s, sizeof s);
}
/* Two rows against four activation rows: each of the eight dot products is
 * computed exactly as dot4_avx2 computes it (same lanes, same sums), but
 * eight independent FMA chains instead of four keep both FMA pipes busy
 * (four chains are bound by the FMA latency). */
__attribute__((target("avx2,fma"))) static void dot2x4_avx2(const float *w0, const float *w1, const float *x0, const float *x1,
                                                            const float *x2, const float *x3, uint64_t n, float out[8]) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 u = _mm256_loadu_ps(w0 + i), v = _mm256_loadu_ps(w1 + i), x;
        x = _mm256_loadu_ps(x0 + i), a0 = _mm256_fmadd_ps(u, x, a0), b0 = _mm256_fmadd_ps(v, x, b0);
        x = _mm256_loadu_ps(x1 + i), a1 = _mm256_fmadd_ps(u, x, a1), b1 = _mm256_fmadd_ps(v, x, b1);
        x = _mm256_loadu_ps(x2 + i), a2 = _mm256_fmadd_ps(u, x, a2), b2 = _mm256_fmadd_ps(v, x, b2);
        x = _mm256_loadu_ps(x3 + i), a3 = _mm256_fmadd_ps(u, x, a3), b3 = _mm256_fmadd_ps(v, x, b3);
    }
    float s[8] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3), hsum8(b0), hsum8(b1), hsum8(b2), hsum8(b3)};
    for (; i < n; i++) {
        s[0] += w0[i] * x0[i];
        s[1] += w0[i] * x1[i];
        s[2] += w0[i] * x2[i];
        s[3] += w0[i] * x3[i];
        s[4] += w1[i] * x0[i];
        s[5] += w1[i] * x1[i];
        s[6] += w1[i] * x2[i];
        s[7] += w1[i] * x3[i];
    }
    memcpy(out, s, sizeof s);
}

/* AVX-512: the same dot products with the vectors across 16 rows of W
 * instead of along k. wt holds the block transposed ([k][16], zero rows
 * past the block's end); for each of tt tokens, accumulator l holds lane l
 * (k = l mod 8) of 16 outputs, summed as hsum8 sums, then the tail as dot4
 * adds it (product, then sum): every output keeps dot4's bits, and each
 * weight load serves tt tokens without horizontal sums. */
#define AVX512 __attribute__((target("avx2,fma,avx512f")))
AVX512 static inline __attribute__((always_inline)) void tokens_avx512(int tt, const float *wt, uint64_t K,
                                                                        const float *x, float *y, uint64_t N,
                                                                        __mmask16 m) {
    __m512 a[3][8];
#pragma GCC unroll 3
    for (int j = 0; j < tt; j++)
#pragma GCC unroll 8
        for (int l = 0; l < 8; l++) a[j][l] = _mm512_setzero_ps();
    const uint64_t K8 = K / 8 * 8;
    for (uint64_t k = 0; k < K8; k += 8)
#pragma GCC unroll 8
        for (int l = 0; l < 8; l++) {
            __m512 w = _mm512_loadu_ps(wt + (k + l) * 16);
            __asm__("" : "+v"(w)); /* one load for the tt tokens, not one per FMA */
#pragma GCC unroll 3
            for (int j = 0; j < tt; j++) a[j][l] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[j * K + k + l]), a[j][l]);
        }
#pragma GCC unroll 3
    for (int j = 0; j < tt; j++) {
        __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a[j][0], a[j][4]), _mm512_add_ps(a[j][2], a[j][6])),
                                 _mm512_add_ps(_mm512_add_ps(a[j][1], a[j][5]), _mm512_add_ps(a[j][3], a[j][7])));
        for (uint64_t k = K8; k < K; k++)
            s = _mm512_add_ps(s, _mm512_mul_ps(_mm512_loadu_ps(wt + k * 16), _mm512_set1_ps(x[j * K + k])));
        _mm512_mask_storeu_ps(y + j * N, m, s);
    }
}

/* Rows [r0, r0 + nr) of Y for all T tokens; nr <= 16. */
AVX512 static void block16_avx512(const float *wt, uint64_t K, const float *x, uint32_t T, float *y, uint64_t N,
                                  uint64_t r0, uint32_t nr) {
    const __mmask16 m = (__mmask16)(nr >= 16 ? 0xffffu : (1u << nr) - 1);
    uint32_t t = 0;
    for (; t + 3 <= T; t += 3) tokens_avx512(3, wt, K, x + (uint64_t)t * K, y + (uint64_t)t * N + r0, N, m);
    for (; t < T; t++) tokens_avx512(1, wt, K, x + (uint64_t)t * K, y + (uint64_t)t * N + r0, N, m);
}
#endif

typedef void (*dot4_fn)(const float *, const float *, const float *, const float *, const float *, uint64_t, float *);

typedef struct mm_ctx {
    const sq_tview *w;
    const float *x;
    uint32_t T;
    float *y;
    dot4_fn dot4;
    int pairs; /* dot2x4_avx2 for two rows at a time (same bits as dot4) */
    int wide;  /* block16_avx512 for whole blocks (same bits as dot4) */
    sq_decode_fn decode;
    int failed; /* a worker could not get its row buffer */
} mm_ctx;

/* Whether W's rows are f32 in memory, used in place instead of decoded. */
static int f32_in_place(const sq_tview *w) {
    return w->codec->family == SQ_FAMILY_FLOAT && w->codec->value_dtype == SQ_DT_F32;
}

/* Rows [r0, r1) of W as f32: in place, or decoded into buf. */
static const float *rows_f32(const sq_tview *w, sq_decode_fn decode, uint64_t r0, uint64_t r1, float *buf) {
    if (f32_in_place(w)) return (const float *)w->part[0] + r0 * w->cols;
    decode(w, r0, r1, buf);
    return buf;
}

static void mm_blocks(void *p, uint64_t b0, uint64_t b1) {
    mm_ctx *c = p;
    const uint64_t N = c->w->rows, K = c->w->cols;
    const int direct = f32_in_place(c->w);
    float *buf = direct ? NULL : malloc(ROWS_PER_BLOCK * K * sizeof(float));
    float *wt = c->wide ? malloc(ROWS_PER_BLOCK * K * sizeof(float)) : NULL;
    if ((!direct && !buf) || (c->wide && !wt)) {
        c->failed = 1;
        free(buf);
        free(wt);
        return;
    }
    for (uint64_t b = b0; b < b1; b++) {
        uint64_t r0 = b * ROWS_PER_BLOCK, r1 = r0 + ROWS_PER_BLOCK < N ? r0 + ROWS_PER_BLOCK : N;
        const float *wb = rows_f32(c->w, c->decode, r0, r1, buf);
#if defined(__x86_64__)
        if (wt) {
            for (uint64_t k = 0; k < K; k++)
                for (uint64_t r = 0; r < ROWS_PER_BLOCK; r++) wt[k * ROWS_PER_BLOCK + r] = r0 + r < r1 ? wb[r * K + k] : 0.0f;
            block16_avx512(wt, K, c->x, c->T, c->y, N, r0, (uint32_t)(r1 - r0));
            continue;
        }
#endif
        for (uint64_t t = 0; t < c->T; t += 4) {
            const float *x0 = c->x + t * K;
            const float *x1 = t + 1 < c->T ? x0 + K : x0, *x2 = t + 2 < c->T ? x0 + 2 * K : x0, *x3 = t + 3 < c->T ? x0 + 3 * K : x0;
            uint64_t r = r0;
#if defined(__x86_64__)
            for (; c->pairs && r + 2 <= r1; r += 2) {
                float o[8];
                const float *w0 = wb + (r - r0) * K;
                dot2x4_avx2(w0, w0 + K, x0, x1, x2, x3, K, o);
                for (uint64_t j = 0; j < 4 && t + j < c->T; j++) {
                    c->y[(t + j) * N + r] = o[j];
                    c->y[(t + j) * N + r + 1] = o[4 + j];
                }
            }
#endif
            for (; r < r1; r++) {
                float o[4];
                c->dot4(wb + (r - r0) * K, x0, x1, x2, x3, K, o);
                for (uint64_t j = 0; j < 4 && t + j < c->T; j++) c->y[(t + j) * N + r] = o[j];
            }
        }
    }
    free(buf);
    free(wt);
}

/* The same product through the lane GEMM (matmul_lanes.h): blocks of 64
 * rows, each decoded and packed once, against all T tokens packed once. */
typedef struct lanes_ctx {
    sq_isa isa;
    const sq_tview *w;
    const float *xp; /* packed activations */
    const float *x;
    uint32_t T;
    float *y;
    sq_decode_fn decode;
    int failed;
} lanes_ctx;

static void lanes_pack(void *p, uint64_t g0, uint64_t g1) {
    lanes_ctx *c = p;
    sq_lanes_pack_x(c->isa, c->x, c->T, c->w->cols, g0, g1, (float *)c->xp);
}

static void lanes_blocks(void *p, uint64_t b0, uint64_t b1) {
    lanes_ctx *c = p;
    const uint64_t N = c->w->rows, K = c->w->cols;
    const int direct = f32_in_place(c->w);
    const uint64_t RB = sq_lanes_rows(c->isa);
    float *buf = direct ? NULL : malloc(RB * K * sizeof(float));
    float *wp = aligned_alloc(64, (sq_lanes_w_floats(c->isa, K) * sizeof(float) + 63) / 64 * 64);
    if ((!direct && !buf) || !wp) {
        c->failed = 1;
        free(buf);
        free(wp);
        return;
    }
    for (uint64_t b = b0; b < b1; b++) {
        uint64_t r0 = b * RB, r1 = r0 + RB < N ? r0 + RB : N;
        const float *wb = rows_f32(c->w, c->decode, r0, r1, buf);
        sq_lanes_block(c->isa, wb, (uint32_t)(r1 - r0), K, c->xp, c->T, c->y, N, r0, wp);
    }
    free(buf);
    free(wp);
}

static int matmul_lanes(sq_isa isa, const sq_tview *w, const float *x, uint32_t T, float *y, int n_threads) {
    const size_t nx = sq_lanes_x_floats(isa, T, w->cols);
    float *xp = aligned_alloc(64, (nx * sizeof(float) + 63) / 64 * 64);
    if (!xp) return 1;
    const uint32_t TT = sq_lanes_tokens(isa), RB = sq_lanes_rows(isa);
    lanes_ctx c = {isa, w, xp, x, T, y, sq_decode_for(w->codec, isa), 0};
    sq_parallel_for(n_threads, (T + TT - 1) / TT, lanes_pack, &c);
    sq_parallel_for(n_threads, (w->rows + RB - 1) / RB, lanes_blocks, &c);
    free(xp);
    return c.failed;
}

sq_status sq_rt_matmul(const sq_tview *w, const float *x, uint32_t T, float *y, int n_threads) {
    /* the transform chain's input links are applied to X once, so the
     * weights are used in their stored column order and basis */
    float *xs = NULL;
    if (sq_tview_has_xform(w)) {
        if (!(xs = malloc((size_t)T * w->cols * sizeof(float)))) return SQ_ENOMEM;
        sq_xform_input(w, x, T, xs);
    }
    const sq_isa isa = sq_isa_active();
    if (sq_lanes_available(isa) && T >= sq_lanes_tokens(isa)) {
        const int failed = matmul_lanes(isa, w, xs ? xs : x, T, y, n_threads);
        if (!failed) sq_xform_output(w, y, T);
        free(xs);
        return failed ? SQ_ENOMEM : SQ_OK;
    }
    mm_ctx c = {w, xs ? xs : x, T, y, dot4_portable, 0, 0, sq_decode_for(w->codec, sq_isa_active()), 0};
#if defined(__x86_64__)
    if (sq_isa_active() >= SQ_ISA_AVX2) c.dot4 = dot4_avx2, c.pairs = 1;
    if (sq_isa_active() >= SQ_ISA_AVX512 && T >= 3) c.wide = 1;
#endif
    uint64_t nb = (w->rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
    sq_parallel_for(n_threads, nb, mm_blocks, &c);
    sq_xform_output(w, y, T);
    free(xs);
    return c.failed ? SQ_ENOMEM : SQ_OK;
}

/* Single-token products through each codec's fastest CPU kernel: the
 * activations are prepared once per form the kernels ask for (f32, or int8
 * blocks: sq_act_prepare) and shared by the matrices that read the same x;
 * a matrix with a transform gets its own, in its stored column order. */
typedef struct fast_ctx {
    const sq_tview *w;
    sq_cpu_kernel k;
    const sq_act *a;
    float *y;
} fast_ctx;

static void fast_rows(void *p, uint64_t r0, uint64_t r1) {
    fast_ctx *c = p;
    sq_kernel_run(c->k, c->w, c->a, c->y, r0, r1);
}

typedef struct act_cache {
    const float *x;
    uint64_t n;
    int ready[SQ_ACT_KINDS];
    sq_act a[SQ_ACT_KINDS];
} act_cache;

static void act_cache_free(act_cache *c) {
    for (int k = 0; k < SQ_ACT_KINDS; k++)
        if (c->ready[k]) sq_act_release(&c->a[k]);
}

static sq_status gemv_fast(const sq_tview *w, act_cache *shared, float *y, int n_threads, sq_err *err) {
    sq_cpu_kernel k = sq_best_kernel(w, sq_isa_active());
    sq_status st = SQ_OK;
    if (!sq_tview_has_xform(w)) {
        if (!shared->ready[k.act]) {
            if ((st = sq_act_prepare(k.act, shared->x, shared->n, &shared->a[k.act], err))) return st;
            shared->ready[k.act] = 1;
        }
        fast_ctx c = {w, k, &shared->a[k.act], y};
        sq_parallel_for(n_threads, w->rows, fast_rows, &c);
        return SQ_OK; /* no transform, so no output link either */
    }
    float *xs = malloc(w->cols * sizeof(float));
    if (!xs) return sq_err_set(err, SQ_ENOMEM, "out of memory for one activation row");
    sq_xform_input(w, shared->x, 1, xs);
    sq_act a;
    if (!(st = sq_act_prepare(k.act, xs, w->cols, &a, err))) {
        fast_ctx c = {w, k, &a, y};
        sq_parallel_for(n_threads, w->rows, fast_rows, &c);
        sq_xform_output(w, y, 1);
        sq_act_release(&a);
    }
    free(xs);
    return st;
}

/* Batched products (prefill) through a codec's integer-activation kernel:
 * each of the T activation rows is prepared once (int8 blocks), then every
 * worker takes blocks of GEMM_ROWS output rows and runs the kernel on them
 * for all T rows in turn, so a block's weights are read from memory once and
 * from cache T-1 times. Each output is one kernel call, so the result does
 * not depend on the thread count. */
typedef struct gemm_ctx {
    const sq_tview *w;
    sq_cpu_kernel k;
    sq_gemm_q8_fn batched; /* the codec's batched kernel, or NULL: k once per row */
    const sq_act *a;       /* [T] */
    const sq_act_q8 *q8;   /* [T], for batched */
    uint32_t T;
    uint64_t rows; /* per block */
    float *y;      /* [T][rows] */
} gemm_ctx;

static void gemm_blocks(void *p, uint64_t b0, uint64_t b1) {
    gemm_ctx *c = p;
    const uint64_t N = c->w->rows;
    if (c->batched) { /* one call over the contiguous rows: it tiles them itself */
        uint64_t r0 = b0 * c->rows, r1 = b1 * c->rows < N ? b1 * c->rows : N;
        c->batched(c->w, c->q8, c->T, c->y, r0, r1);
        return;
    }
    for (uint64_t b = b0; b < b1; b++) {
        uint64_t r0 = b * c->rows, r1 = r0 + c->rows < N ? r0 + c->rows : N;
        for (uint32_t t = 0; t < c->T; t++) sq_kernel_run(c->k, c->w, &c->a[t], c->y + (uint64_t)t * N, r0, r1);
    }
}

/* The batched kernel the fast paths use for w: a SIMD one where the codec
 * says it pays (the portable reference is slower than the decode-once f32
 * GEMM), else NULL. */
static sq_gemm_q8_fn batched_kernel(const sq_tview *w) {
    sq_isa isa = sq_isa_active();
    if (w->codec->cpu->gemm_pays && !w->codec->cpu->gemm_pays(w, isa)) return NULL;
    sq_gemm_q8_fn f = isa > SQ_ISA_PORTABLE ? sq_gemm_q8_for(w->codec, isa) : NULL;
    return f && f != w->codec->cpu->gemm_q8[SQ_ISA_PORTABLE] ? f : NULL;
}

static sq_status gemm_fast(const sq_tview *w, sq_cpu_kernel k, sq_gemm_q8_fn batched, const float *x, uint32_t T, float *y,
                           int n_threads, sq_err *err) {
    const uint64_t K = w->cols;
    float *xs = NULL;
    sq_act *a = calloc(T, sizeof *a);
    if (!a) return sq_err_set(err, SQ_ENOMEM, "out of memory for %u activation rows", T);
    if (sq_tview_has_xform(w)) {
        if (!(xs = malloc((size_t)T * K * sizeof(float)))) {
            free(a);
            return sq_err_set(err, SQ_ENOMEM, "out of memory for %u activation rows", T);
        }
        sq_xform_input(w, x, T, xs);
        x = xs;
    }
    sq_status st = SQ_OK;
    uint32_t ready = 0;
    sq_act_q8 *q8 = batched ? malloc((size_t)T * sizeof *q8) : NULL;
    if (batched && !q8) st = sq_err_set(err, SQ_ENOMEM, "out of memory for %u activation rows", T);
    if (batched) k.act = SQ_ACT_Q8;
    for (; ready < T && !st; ready++) st = sq_act_prepare(k.act, x + (uint64_t)ready * K, K, &a[ready], err);
    if (st && ready) ready--; /* the failed one released its own buffers */
    if (!st) {
        uint64_t rows;
        if (batched) { /* whole tiles of 16 rows, so no tile is split between threads */
            rows = 16;
            for (uint32_t t = 0; t < T; t++) q8[t] = a[t].q8;
        } else {
            /* blocks as large as keep a block's codes in L2 (each kernel call
             * has a fixed cost) but at least four per thread */
            rows = (256u << 10) / (K + 1);
            uint64_t per = w->rows / (4 * (uint64_t)(n_threads > 0 ? n_threads : 1));
            if (rows > per) rows = per;
            if (rows < 16) rows = 16;
        }
        gemm_ctx c = {w, k, batched, a, q8, T, rows, y};
        sq_parallel_for(n_threads, (w->rows + rows - 1) / rows, gemm_blocks, &c);
        sq_xform_output(w, y, T);
    }
    for (uint32_t t = 0; t < ready; t++) sq_act_release(&a[t]);
    free(q8);
    free(a);
    free(xs);
    return st;
}

/* Batched products of several matrices that read the same X (q/k/v,
 * gate/up in prefill): X is quantized to int8 blocks once for all of them
 * instead of once per matrix, and their 16-row tiles are laid end to end in
 * one parallel pass. Each matrix's tiles start at its own row 0, so each
 * output is the same kernel call's as in gemm_fast: the same bits. */
typedef struct group_ctx {
    int n;
    const sq_tview *w[SQ_LIN_COUNT];
    sq_gemm_q8_fn f[SQ_LIN_COUNT];
    float *y[SQ_LIN_COUNT];
    uint64_t start[SQ_LIN_COUNT + 1]; /* first tile of each matrix in the joint tile range */
    const sq_act_q8 *q8;
    uint32_t T;
} group_ctx;

static void group_tiles(void *p, uint64_t b0, uint64_t b1) {
    group_ctx *c = p;
    for (int i = 0; i < c->n; i++) {
        uint64_t s = c->start[i], e = c->start[i + 1], a = b0 > s ? b0 : s, b = b1 < e ? b1 : e;
        if (a >= b) continue;
        const uint64_t N = c->w[i]->rows, r0 = (a - s) * 16, r1 = (b - s) * 16 < N ? (b - s) * 16 : N;
        c->f[i](c->w[i], c->q8, c->T, c->y[i], r0, r1);
    }
}

static sq_status gemm_group(const sq_tview *const *w, const sq_gemm_q8_fn *f, int n, const float *x, uint32_t T,
                            float *const *y, int n_threads, sq_err *err) {
    const uint64_t K = w[0]->cols;
    group_ctx c = {.n = n, .T = T};
    sq_act *a = calloc(T, sizeof *a);
    sq_act_q8 *q8 = malloc((size_t)T * sizeof *q8);
    sq_status st = a && q8 ? SQ_OK : sq_err_set(err, SQ_ENOMEM, "out of memory for %u activation rows", T);
    uint32_t ready = 0;
    for (; ready < T && !st; ready++) st = sq_act_prepare(SQ_ACT_Q8, x + (uint64_t)ready * K, K, &a[ready], err);
    if (st && ready) ready--; /* the failed one released its own buffers */
    if (!st) {
        for (uint32_t t = 0; t < T; t++) q8[t] = a[t].q8;
        for (int i = 0; i < n; i++) {
            c.w[i] = w[i];
            c.f[i] = f[i];
            c.y[i] = y[i];
            c.start[i + 1] = c.start[i] + (w[i]->rows + 15) / 16;
        }
        c.q8 = q8;
        sq_parallel_for(n_threads, c.start[n], group_tiles, &c);
    }
    for (uint32_t t = 0; t < ready; t++) sq_act_release(&a[t]);
    free(q8);
    free(a);
    return st;
}

sq_status sq_rt_linear_batch(const sq_rt_model *m, const sq_rt_layer *L, const int *idx, int n, const float *x, uint32_t T,
                             float *const *y, int n_threads, sq_err *err) {
    const sq_tview *gw[SQ_LIN_COUNT];
    sq_gemm_q8_fn gf[SQ_LIN_COUNT];
    float *gy[SQ_LIN_COUNT];
    int ng = 0;
    sq_status st = SQ_OK;
    for (int i = 0; i < n && !st; i++) {
        const sq_tview *w = sq_rt_linear_view(L, idx[i]);
        sq_gemm_q8_fn f = T > 1 && m->fast_kernels && !m->vk && n <= SQ_LIN_COUNT && !sq_tview_has_xform(w) &&
                                  (!ng || w->cols == gw[0]->cols)
                              ? batched_kernel(w)
                              : NULL;
        if (f) gw[ng] = w, gf[ng] = f, gy[ng++] = y[i];
        else st = sq_rt_linear(m, w, L->gpu[idx[i]], x, T, y[i], n_threads, err); /* alone, as before */
    }
    if (!st && ng) st = gemm_group(gw, gf, ng, x, T, gy, n_threads, err);
    return st;
}

/* A bf16 reference view's single-token product on the portable kernel: the
 * same sums, in the same order, as the f32 kernel on the widened values. */
typedef struct portable_ctx {
    const sq_tview *w;
    const float *x;
    float *y;
    sq_gemv_fn gemv;
} portable_ctx;

static void portable_rows(void *p, uint64_t r0, uint64_t r1) {
    portable_ctx *c = p;
    c->gemv(c->w, c->x, c->y, r0, r1);
}

sq_status sq_rt_linear(const sq_rt_model *m, const sq_tview *w, const sq_vk_tensor *gpu, const float *x, uint32_t T,
                       float *y, int n_threads, sq_err *err) {
    if (m->vk && gpu) return sq_vk_matmul(m->vk, gpu, x, T, y, err);
    if (T > 1 && m->fast_kernels) {
        /* the codec's batched integer kernel where it has one; with
         * FAST_Q8_GEMM also its q8 GEMV once per row; else the
         * decode-and-multiply GEMM below, which reuses each decoded block
         * across all T rows */
        sq_gemm_q8_fn batched = batched_kernel(w);
        sq_cpu_kernel k = sq_best_kernel(w, sq_isa_active());
        if (batched || (m->fast_kernels == SQ_RT_PATH_FAST_Q8_GEMM && k.act != SQ_ACT_F32))
            return gemm_fast(w, k, batched, x, T, y, n_threads, err);
    }
    if (T == 1 && m->fast_kernels) {
        act_cache c = {.x = x, .n = w->cols};
        sq_status st = gemv_fast(w, &c, y, n_threads, err);
        act_cache_free(&c);
        return st;
    }
    if (T == 1 && m->mapped && w->codec == sq_codec_by_id(SQ_CODEC_BF16)) { /* a reference's bf16 view: f32 order */
        portable_ctx c = {w, x, y, sq_gemv_for(w->codec, SQ_ISA_PORTABLE)};
        sq_parallel_for(n_threads, w->rows, portable_rows, &c);
    } else if (T == 1) { /* the codecs' exact GEMV kernels for a single token */
        if (sq_gemv_mt(w, x, y, n_threads)) return sq_err_set(err, SQ_ENOMEM, "out of memory for one activation row");
    } else {
        if (sq_rt_matmul(w, x, T, y, n_threads))
            return sq_err_set(err, SQ_ENOMEM, "out of memory for a %llu x %llu product", (unsigned long long)w->rows,
                              (unsigned long long)w->cols);
    }
    return SQ_OK;
}

/* Several single-token products that share x, in one parallel pass over
 * their rows laid end to end (one wake-up of the workers instead of one per
 * matrix: at this model size the synchronization costs as much as the
 * products). Each row is still one kernel call's output, so the results are
 * those of separate gemv_fast calls. */
typedef struct many_ctx {
    int n;
    const sq_tview *w[SQ_LIN_COUNT];
    sq_cpu_kernel k[SQ_LIN_COUNT];
    const sq_act *a[SQ_LIN_COUNT];
    float *y[SQ_LIN_COUNT];
    uint64_t start[SQ_LIN_COUNT + 1]; /* first row of each matrix in the joint row range */
} many_ctx;

static void many_rows(void *p, uint64_t r0, uint64_t r1) {
    many_ctx *c = p;
    for (int i = 0; i < c->n; i++) {
        uint64_t s = c->start[i], e = c->start[i + 1], a = r0 > s ? r0 : s, b = r1 < e ? r1 : e;
        if (a < b) sq_kernel_run(c->k[i], c->w[i], c->a[i], c->y[i], a - s, b - s);
    }
}

static sq_status gemv_fast_many(const sq_rt_layer *L, const int *idx, int n, const float *x, float *const *y, int n_threads,
                                sq_err *err) {
    many_ctx c = {.n = n};
    act_cache shared = {.x = x, .n = sq_rt_linear_view(L, idx[0])->cols};
    sq_act own[SQ_LIN_COUNT];
    int has_own[SQ_LIN_COUNT] = {0};
    float *xs = NULL;
    sq_status st = SQ_OK;
    for (int i = 0; i < n && !st; i++) {
        const sq_tview *w = sq_rt_linear_view(L, idx[i]);
        c.w[i] = w;
        c.k[i] = sq_best_kernel(w, sq_isa_active());
        c.y[i] = y[i];
        c.start[i + 1] = c.start[i] + w->rows;
        if (!sq_tview_has_xform(w)) {
            sq_act_kind kind = c.k[i].act;
            if (!shared.ready[kind]) {
                if ((st = sq_act_prepare(kind, x, shared.n, &shared.a[kind], err))) break;
                shared.ready[kind] = 1;
            }
            c.a[i] = &shared.a[kind];
            continue;
        }
        /* a transform: activations of its own, in the stored column order */
        if (!xs && !(xs = malloc(w->cols * sizeof(float)))) {
            st = sq_err_set(err, SQ_ENOMEM, "out of memory for one activation row");
            break;
        }
        sq_xform_input(w, x, 1, xs);
        if ((st = sq_act_prepare(c.k[i].act, xs, w->cols, &own[i], err))) break;
        if (c.k[i].act == SQ_ACT_F32) { /* the f32 form points at xs: keep a copy */
            float *keep = malloc(w->cols * sizeof(float));
            if (!keep) {
                st = sq_err_set(err, SQ_ENOMEM, "out of memory for one activation row");
                break;
            }
            memcpy(keep, xs, w->cols * sizeof(float));
            own[i].f32 = keep;
        }
        has_own[i] = 1;
        c.a[i] = &own[i];
    }
    if (!st) {
        sq_parallel_for(n_threads, c.start[n], many_rows, &c);
        for (int i = 0; i < n; i++)
            if (has_own[i]) sq_xform_output(c.w[i], y[i], 1);
    }
    for (int i = 0; i < n; i++)
        if (has_own[i]) {
            if (own[i].kind == SQ_ACT_F32) free((void *)own[i].f32);
            sq_act_release(&own[i]);
        }
    act_cache_free(&shared);
    free(xs);
    return st;
}

sq_status sq_rt_linear_many(const sq_rt_model *m, const sq_rt_layer *L, const int *idx, int n, const float *x,
                            float *const *y, int n_threads, sq_err *err) {
    const sq_vk_tensor *g[SQ_LIN_COUNT];
    int on_gpu = m->vk && n <= SQ_LIN_COUNT;
    for (int i = 0; on_gpu && i < n; i++) on_gpu = (g[i] = L->gpu[idx[i]]) != NULL;
    if (on_gpu) return sq_vk_gemv_many(m->vk, g, n, x, y, err);
    sq_status st = SQ_OK;
    if (m->fast_kernels && !m->vk && n <= SQ_LIN_COUNT) return gemv_fast_many(L, idx, n, x, y, n_threads, err);
    for (int i = 0; !st && i < n; i++)
        st = sq_rt_linear(m, sq_rt_linear_view(L, idx[i]), L->gpu[idx[i]], x, 1, y[i], n_threads, err);
    return st;
}
