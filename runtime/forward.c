/* The Llama forward pass over a window of tokens (batched prefill from an
 * empty cache), following the Hugging Face implementation's float32 math:
 * RMSNorm with the weight applied after normalizing, rotary embeddings on
 * (i, i + head_dim/2) pairs, softmax attention with causal masking and
 * grouped K/V heads, SwiGLU MLP. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "runtime.h"
#include "vk_decode.h"

static void rmsnorm(const float *x, const float *w, float *out, uint32_t T, uint32_t H, float eps) {
    for (uint32_t t = 0; t < T; t++) {
        const float *xr = x + (uint64_t)t * H;
        double ss = 0;
        for (uint32_t i = 0; i < H; i++) ss += (double)xr[i] * xr[i];
        float inv = 1.0f / sqrtf((float)(ss / H) + eps);
        for (uint32_t i = 0; i < H; i++) out[(uint64_t)t * H + i] = w[i] * (xr[i] * inv);
    }
}

/* In place on [T][n_heads][hd]; cos/sin tables are [T][hd/2]. */
static void rope(float *x, uint32_t T, uint32_t n_heads, uint32_t hd, const float *cs, const float *sn) {
    uint32_t half = hd / 2;
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t h = 0; h < n_heads; h++) {
            float *v = x + ((uint64_t)t * n_heads + h) * hd;
            for (uint32_t i = 0; i < half; i++) {
                float c = cs[(uint64_t)t * half + i], s = sn[(uint64_t)t * half + i];
                float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
}

/* The element-wise steps of a block over many tokens, split across the
 * workers by tokens or elements: each output is computed as in the serial
 * loop, so the bits do not depend on the split. */
#define PAR_MIN_T 8      /* fewer tokens (decode) stay on the calling thread */
#define PAR_CHUNK 4096   /* elements per task of the SiLU and the residual add */

typedef struct norm_ctx {
    const float *x, *w;
    float *out;
    uint32_t H;
    float eps;
} norm_ctx;

static void rmsnorm_tokens(void *p, uint64_t t0, uint64_t t1) {
    norm_ctx *c = p;
    rmsnorm(c->x + t0 * c->H, c->w, c->out + t0 * c->H, (uint32_t)(t1 - t0), c->H, c->eps);
}

static void rmsnorm_par(const float *x, const float *w, float *out, uint32_t T, uint32_t H, float eps, int n_threads) {
    norm_ctx c = {x, w, out, H, eps};
    if (T < PAR_MIN_T) rmsnorm(x, w, out, T, H, eps);
    else sq_parallel_for(n_threads, T, rmsnorm_tokens, &c);
}

/* dst[i] = f(dst[i], src[i]) over n elements */
typedef struct elem_ctx {
    float *dst;
    const float *src;
    size_t n;
} elem_ctx;

static void silu_chunks(void *p, uint64_t c0, uint64_t c1) { /* g = silu(g) * u */
    elem_ctx *c = p;
    const size_t e = c1 * PAR_CHUNK < c->n ? c1 * PAR_CHUNK : c->n;
    float *g = c->dst;
    for (size_t i = c0 * PAR_CHUNK; i < e; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * c->src[i];
}

static void residual_chunks(void *p, uint64_t c0, uint64_t c1) { /* x += tmp */
    elem_ctx *c = p;
    const size_t e = c1 * PAR_CHUNK < c->n ? c1 * PAR_CHUNK : c->n;
    for (size_t i = c0 * PAR_CHUNK; i < e; i++) c->dst[i] += c->src[i];
}

static void elementwise(void (*fn)(void *, uint64_t, uint64_t), float *dst, const float *src, size_t n, uint32_t T,
                        int n_threads) {
    elem_ctx c = {dst, src, n};
    const uint64_t chunks = (n + PAR_CHUNK - 1) / PAR_CHUNK;
    if (T < PAR_MIN_T) fn(&c, 0, chunks);
    else sq_parallel_for(n_threads, chunks, fn, &c);
}

/* Linear layer I of block L on the model's backend (CPU or Vulkan). */
#define LIN(I, X, NT, Y) sq_rt_linear(m, sq_rt_linear_view(L, I), L->gpu[I], X, NT, Y, n_threads, err)

/* y[T][n] += b (when the layer has a bias). */
static void add_bias(float *y, const float *b, uint32_t T, uint32_t n) {
    if (!b) return;
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

/* Attention scores on the fast path: eight independent partial sums (the
 * exact path's single running sum is latency-bound and keeps the Hugging
 * Face order); the lanes are added in a fixed order, so the result does not
 * depend on the thread count either. */
static inline __attribute__((always_inline)) float dot_lanes_body(const float *a, const float *b, uint32_t n) {
    float l[8] = {0};
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) l[k] += a[i + k] * b[i + k];
    float s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
static float dot_lanes(const float *a, const float *b, uint32_t n) { return dot_lanes_body(a, b, n); }
#if defined(__x86_64__)
/* the same arithmetic, compiled for AVX2 (the lanes become one register) */
__attribute__((target("avx2"))) static float dot_lanes_avx2(const float *a, const float *b, uint32_t n) {
    return dot_lanes_body(a, b, n);
}
#endif
static float dot_exact(const float *a, const float *b, uint32_t n) {
    float d = 0;
    for (uint32_t i = 0; i < n; i++) d += a[i] * b[i];
    return d;
}
static dot_fn attn_dot(const sq_rt_model *m) {
    if (!m->fast_kernels) return dot_exact;
#if defined(__x86_64__)
    if (sq_isa_active() >= SQ_ISA_AVX2) return dot_lanes_avx2;
#endif
    return dot_lanes;
}


#if defined(__x86_64__)
#include <immintrin.h>
#define ATTN512 __attribute__((target("avx2,fma,avx512f")))
/* Fast-path attention with AVX-512, for head_dim a multiple of 16: each
 * query's scores come 16 keys at a time from the head's keys transposed
 * ([head_dim][T]), four partial sums over the dimensions added in a fixed
 * order; the weighted sum of values keeps two partial sums (even and odd
 * positions) per 16 dimensions. The softmax's exponentials are 16 at a
 * time (exp16_avx512, within 2 ulp of expf) and summed in 16 lanes added in
 * a fixed order. Each head is one thread's, so the result does not depend
 * on the thread count. */
/* o = sum_s p_s v_s over the n positions for head_dim = 16 NV, all NV
 * slices at once (one broadcast of p_s per position), even and odd
 * positions in separate sums added at the end: the same sums, in the same
 * order, as the slice-by-slice loop below. The loops over the slices are
 * unrolled so that the sums stay in registers (rolled, e[] and f[] live in
 * memory and every position waits on a store and a reload). */
ATTN512 static inline __attribute__((always_inline)) void attn_pv_avx512(const int NV, const float *p, const float *v,
                                                                         uint64_t stride, uint32_t n, float *o) {
    __m512 e[8], f[8];
#pragma GCC unroll 8
    for (int i = 0; i < NV; i++) e[i] = f[i] = _mm512_setzero_ps();
    uint32_t s = 0;
    for (; s + 2 <= n; s += 2) {
        const __m512 pe = _mm512_set1_ps(p[s]), pf = _mm512_set1_ps(p[s + 1]);
        const float *ve = v + s * stride, *vf = ve + stride;
#pragma GCC unroll 8
        for (int i = 0; i < NV; i++) {
            e[i] = _mm512_fmadd_ps(pe, _mm512_loadu_ps(ve + 16 * i), e[i]);
            f[i] = _mm512_fmadd_ps(pf, _mm512_loadu_ps(vf + 16 * i), f[i]);
        }
    }
    if (s < n) {
        const __m512 pe = _mm512_set1_ps(p[s]);
#pragma GCC unroll 8
        for (int i = 0; i < NV; i++) e[i] = _mm512_fmadd_ps(pe, _mm512_loadu_ps(v + s * stride + 16 * i), e[i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < NV; i++) _mm512_storeu_ps(o + 16 * i, _mm512_add_ps(e[i], f[i]));
}

/* e^x for 16 floats x <= 0 (softmax arguments): x = n ln2 + r with
 * |r| <= ln2/2 (ln2 in two parts), e^r by the Cephes expf polynomial,
 * times 2^n by vscalefps (which also underflows to subnormals and zero).
 * Within 2 ulp of expf: tests/test_runtime.c checks it over [-104, 0]. */
ATTN512 static inline __m512 exp16_avx512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f)); /* e^-104 is below the smallest subnormal: 0 */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(e, n);
}

ATTN512 static void exp_avx512_rows(const float *x, float *y, uint64_t n) {
    for (uint64_t i = 0; i < n; i += 16) _mm512_storeu_ps(y + i, exp16_avx512(_mm512_loadu_ps(x + i)));
}
int sq_attn_exp_avx512(const float *x, float *y, uint64_t n) {
    if (sq_isa_active() < SQ_ISA_AVX512) return 0;
    exp_avx512_rows(x, y, n);
    return 1;
}

/* Softmax of query t's n scores (max mx) and its weighted sum of values. */
ATTN512 static void attn_finish_avx512(const attn_ctx *a, float *sc, uint32_t n, float mx, uint64_t h, uint32_t kvh, uint32_t t) {
    const sq_rt_config *c = a->c;
    const uint32_t hd = c->head_dim;
    const __m512 mv = _mm512_set1_ps(mx);
    __m512 acc = _mm512_setzero_ps();
    for (uint32_t s0 = 0; s0 < n; s0 += 16) { /* sc has room for whole blocks of 16; lanes past n become 0 */
        const __mmask16 live = n - s0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - s0)) - 1);
        const __m512 e = _mm512_maskz_mov_ps(live, exp16_avx512(_mm512_sub_ps(_mm512_maskz_load_ps(live, sc + s0), mv)));
        _mm512_store_ps(sc + s0, e);
        acc = _mm512_add_ps(acc, e);
    }
    const float sum = _mm512_reduce_add_ps(acc);
    const __m512 sv = _mm512_set1_ps(sum);
    for (uint32_t s0 = 0; s0 < n; s0 += 16) _mm512_store_ps(sc + s0, _mm512_div_ps(_mm512_load_ps(sc + s0), sv));
    float *o = a->out + ((uint64_t)t * c->n_heads + h) * hd;
    const float *vh = a->v + (uint64_t)kvh * hd;
    const uint64_t vstride = (uint64_t)c->n_kv_heads * hd;
    if (hd == 64) {
        attn_pv_avx512(4, sc, vh, vstride, n, o);
        return;
    }
    if (hd == 128) {
        attn_pv_avx512(8, sc, vh, vstride, n, o);
        return;
    }
    for (uint32_t i = 0; i < hd; i += 16) {
        __m512 e = _mm512_setzero_ps(), f = _mm512_setzero_ps();
        const float *vv = vh + i;
        uint32_t s = 0;
        for (; s + 2 <= n; s += 2) {
            e = _mm512_fmadd_ps(_mm512_set1_ps(sc[s]), _mm512_loadu_ps(vv + s * vstride), e);
            f = _mm512_fmadd_ps(_mm512_set1_ps(sc[s + 1]), _mm512_loadu_ps(vv + (s + 1) * vstride), f);
        }
        if (s < n) e = _mm512_fmadd_ps(_mm512_set1_ps(sc[s]), _mm512_loadu_ps(vv + s * vstride), e);
        _mm512_storeu_ps(o + i, _mm512_add_ps(e, f));
    }
}

ATTN512 static void attn_heads_avx512(void *p, uint64_t h0, uint64_t h1) {
    attn_ctx *a = p;
    const sq_rt_config *c = a->c;
    const uint32_t hd = c->head_dim, group = c->n_heads / c->n_kv_heads, T = a->T, NK = a->q0 + T, Tp = (NK + 15) / 16 * 16;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = aligned_alloc(64, (size_t)Tp * sizeof(float)), *sc2 = aligned_alloc(64, (size_t)Tp * sizeof(float)),
          *kt = aligned_alloc(64, (size_t)hd * Tp * sizeof(float));
    if (!sc || !sc2 || !kt) {
        free(sc);
        free(sc2);
        free(kt);
        a->failed = 1;
        return;
    }
    uint32_t kt_head = UINT32_MAX;
    for (uint64_t h = h0; h < h1; h++) {
        const uint32_t kvh = (uint32_t)h / group;
        if (kvh != kt_head) {
            sq_attn_transpose_keys(a, kvh, Tp, kt);
            kt_head = kvh;
        }
        /* two queries at a time share the loads of the transposed keys; each
         * query's sums are those of a query alone */
        for (uint32_t t = 0; t < T; t += 2) {
            const int two = t + 1 < T;
            const float *qa = a->q + ((uint64_t)t * c->n_heads + h) * hd, *qb = two ? qa + (uint64_t)c->n_heads * hd : qa;
            const uint32_t na = a->q0 + t + 1, nb = two ? na + 1 : na;
            __m512 mxa = _mm512_set1_ps(-INFINITY), mxb = mxa;
            for (uint32_t s0 = 0; s0 < nb; s0 += 16) {
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
                for (uint32_t i = 0; i < hd; i += 4) {
                    const float *k0 = kt + (size_t)i * Tp + s0;
                    const __m512 k0v = _mm512_load_ps(k0), k1v = _mm512_load_ps(k0 + Tp), k2v = _mm512_load_ps(k0 + 2 * (size_t)Tp),
                                 k3v = _mm512_load_ps(k0 + 3 * (size_t)Tp);
                    a0 = _mm512_fmadd_ps(_mm512_set1_ps(qa[i]), k0v, a0);
                    a1 = _mm512_fmadd_ps(_mm512_set1_ps(qa[i + 1]), k1v, a1);
                    a2 = _mm512_fmadd_ps(_mm512_set1_ps(qa[i + 2]), k2v, a2);
                    a3 = _mm512_fmadd_ps(_mm512_set1_ps(qa[i + 3]), k3v, a3);
                    b0 = _mm512_fmadd_ps(_mm512_set1_ps(qb[i]), k0v, b0);
                    b1 = _mm512_fmadd_ps(_mm512_set1_ps(qb[i + 1]), k1v, b1);
                    b2 = _mm512_fmadd_ps(_mm512_set1_ps(qb[i + 2]), k2v, b2);
                    b3 = _mm512_fmadd_ps(_mm512_set1_ps(qb[i + 3]), k3v, b3);
                }
                const __m512 ninf = _mm512_set1_ps(-INFINITY), scv = _mm512_set1_ps(scale);
                __m512 da = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), scv);
                __m512 db = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(b0, b1), _mm512_add_ps(b2, b3)), scv);
                __mmask16 la = na <= s0 ? 0 : na - s0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (na - s0)) - 1);
                __mmask16 lb = nb - s0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nb - s0)) - 1);
                da = _mm512_mask_blend_ps(la, ninf, da);
                db = _mm512_mask_blend_ps(lb, ninf, db);
                _mm512_store_ps(sc + s0, da);
                _mm512_store_ps(sc2 + s0, db);
                mxa = _mm512_max_ps(mxa, da);
                mxb = _mm512_max_ps(mxb, db);
            }
            attn_finish_avx512(a, sc, na, _mm512_reduce_max_ps(mxa), h, kvh, t);
            if (two) attn_finish_avx512(a, sc2, nb, _mm512_reduce_max_ps(mxb), h, kvh, t + 1);
        }
    }
    free(sc);
    free(sc2);
    free(kt);
}
#else
int sq_attn_exp_avx512(const float *x, float *y, uint64_t n) {
    (void)x, (void)y, (void)n;
    return 0;
}
#endif

static void attn_heads(void *p, uint64_t h0, uint64_t h1) {
    attn_ctx *a = p;
    const sq_rt_config *c = a->c;
    const uint32_t hd = c->head_dim, group = c->n_heads / c->n_kv_heads, T = a->T;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = malloc((size_t)T * sizeof(float));
    if (!sc) {
        a->failed = 1;
        return;
    }
    for (uint64_t h = h0; h < h1; h++) {
        uint32_t kvh = (uint32_t)h / group;
        for (uint32_t t = 0; t < T; t++) {
            const float *qv = a->q + ((uint64_t)t * c->n_heads + h) * hd;
            float mx = -INFINITY;
            for (uint32_t s = 0; s <= t; s++) {
                const float *kv = a->k + ((uint64_t)s * c->n_kv_heads + kvh) * hd;
                sc[s] = a->dot(qv, kv, hd) * scale;
                if (sc[s] > mx) mx = sc[s];
            }
            float sum = 0;
            for (uint32_t s = 0; s <= t; s++) {
                sc[s] = expf(sc[s] - mx);
                sum += sc[s];
            }
            float *o = a->out + ((uint64_t)t * c->n_heads + h) * hd;
            memset(o, 0, hd * sizeof(float));
            for (uint32_t s = 0; s <= t; s++) {
                const float *vv = a->v + ((uint64_t)s * c->n_kv_heads + kvh) * hd;
                float pr = sc[s] / sum;
                for (uint32_t i = 0; i < hd; i++) o[i] += pr * vv[i];
            }
        }
    }
    free(sc);
}

static sq_status forward(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *logits, int last_only, int n_threads,
                         sq_rt_tap_fn tap, void *tap_ctx, uint32_t layer_end, sq_err *err);

sq_status sq_rt_forward(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *logits, int n_threads,
                        sq_err *err) {
    return forward(m, tokens, T, logits, 0, n_threads, NULL, NULL, m->cfg.n_layers, err);
}

sq_status sq_rt_forward_last(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *logits, int n_threads,
                             sq_err *err) {
    return forward(m, tokens, T, logits, 1, n_threads, NULL, NULL, m->cfg.n_layers, err);
}

sq_status sq_rt_forward_tap(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *logits, int n_threads,
                            sq_rt_tap_fn tap, void *tap_ctx, sq_err *err) {
    return forward(m, tokens, T, logits, 0, n_threads, tap, tap_ctx, m->cfg.n_layers, err);
}

sq_status sq_rt_forward_tap_layers(const sq_rt_model *m, const int32_t *tokens, uint32_t T, uint32_t layer_end, int n_threads,
                                   sq_rt_tap_fn tap, void *tap_ctx, sq_err *err) {
    if (layer_end > m->cfg.n_layers) layer_end = m->cfg.n_layers;
    return forward(m, tokens, T, NULL, 0, n_threads, tap, tap_ctx, layer_end, err);
}

void sq_rt_scratch_free(sq_rt_scratch *s) {
    free(s->xn); free(s->q); free(s->k); free(s->v); free(s->att); free(s->tmp); free(s->g); free(s->u);
    free(s->cs); free(s->sn);
    memset(s, 0, sizeof *s);
}

sq_status sq_rt_scratch_init(const sq_rt_model *m, uint32_t T, sq_rt_scratch *s, sq_err *err) {
    const sq_rt_config *c = &m->cfg;
    const uint32_t H = c->hidden, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, I = c->inter;
    memset(s, 0, sizeof *s);
    s->T = T;
    size_t th = (size_t)T * H;
    s->xn = malloc(th * 4);
    s->q = malloc((size_t)T * qd * 4);
    s->k = malloc((size_t)T * kvd * 4);
    s->v = malloc((size_t)T * kvd * 4);
    s->att = malloc((size_t)T * qd * 4);
    s->tmp = malloc(th * 4);
    s->g = malloc((size_t)T * I * 4);
    s->u = malloc((size_t)T * I * 4);
    s->cs = malloc((size_t)T * hd / 2 * 4);
    s->sn = malloc((size_t)T * hd / 2 * 4);
    if (!s->xn || !s->q || !s->k || !s->v || !s->att || !s->tmp || !s->g || !s->u || !s->cs || !s->sn) {
        sq_rt_scratch_free(s);
        return sq_err_set(err, SQ_ENOMEM, "out of memory for a window of %u tokens", T);
    }
    /* rotary tables as transformers computes them in float32 */
    for (uint32_t i = 0; i < hd / 2; i++) {
        float inv = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)hd);
        for (uint32_t t = 0; t < T; t++) {
            float ang = (float)t * inv;
            s->cs[(uint64_t)t * (hd / 2) + i] = cosf(ang);
            s->sn[(uint64_t)t * (hd / 2) + i] = sinf(ang);
        }
    }
    return SQ_OK;
}

sq_status sq_rt_embed(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *x, sq_err *err) {
    const sq_rt_config *c = &m->cfg;
    for (uint32_t t = 0; t < T; t++)
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= c->vocab)
            return sq_err_set(err, SQ_EUSAGE, "token id %d at position %u is outside the vocabulary (%u)", tokens[t], t, c->vocab);
    for (uint32_t t = 0; t < T; t++)
        sq_decode_rows(&m->embed, (uint64_t)tokens[t], (uint64_t)tokens[t] + 1, x + (uint64_t)t * c->hidden);
    return SQ_OK;
}

sq_status sq_rt_block(const sq_rt_model *m, uint32_t l, float *x, sq_rt_scratch *s, int stop_site, int n_threads,
                      sq_rt_tap_fn tap, void *tap_ctx, sq_err *err) {
    const sq_rt_config *c = &m->cfg;
    const uint32_t H = c->hidden, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, I = c->inter;
    const uint32_t T = s->T;
    const size_t th = (size_t)T * H;
    float *xn = s->xn, *q = s->q, *k = s->k, *v = s->v, *att = s->att, *tmp = s->tmp, *g = s->g, *u = s->u;
    const sq_rt_layer *L = &m->layers[l];
    sq_status st;
    rmsnorm_par(x, L->attn_norm, xn, T, H, c->eps, n_threads);
    if (tap) tap(tap_ctx, l, SQ_SITE_ATTN_IN, xn, T, H);
    if (stop_site == SQ_SITE_ATTN_IN) return SQ_OK;
    const int qkv[] = {SQ_LIN_Q, SQ_LIN_K, SQ_LIN_V}, gu[] = {SQ_LIN_GATE, SQ_LIN_UP};
    float *qkv_out[] = {q, k, v}, *gu_out[] = {g, u};
    if ((st = sq_rt_linear_batch(m, L, qkv, 3, xn, T, qkv_out, n_threads, err))) return st;
    add_bias(q, L->bias[SQ_LIN_Q], T, qd);
    add_bias(k, L->bias[SQ_LIN_K], T, kvd);
    add_bias(v, L->bias[SQ_LIN_V], T, kvd);
    rope(q, T, c->n_heads, hd, s->cs, s->sn);
    rope(k, T, c->n_kv_heads, hd, s->cs, s->sn);
    attn_ctx a = {c, q, k, v, att, T, 0, attn_dot(m), 0};
    void (*heads)(void *, uint64_t, uint64_t) = attn_heads;
    /* the exact path's bits in 8 lanes; the fast path takes it too where its own kernel (AVX-512) is
     * missing: the generic loop above measured 58% of an AVX2 prefill (fast 730 against exact 1,290
     * tokens/s on the 34M model) */
    if (sq_attn_exact_avx2_ok(c)) heads = sq_attn_exact_heads_avx2;
#if defined(__x86_64__)
    if (m->fast_kernels && hd % 16 == 0 && sq_isa_active() >= SQ_ISA_AVX512) heads = attn_heads_avx512;
#endif
    sq_parallel_for(n_threads, c->n_heads, heads, &a);
    if (a.failed) return sq_err_set(err, SQ_ENOMEM, "out of memory for attention scores (%u positions)", T);
    if (tap) tap(tap_ctx, l, SQ_SITE_ATTN_OUT, att, T, qd);
    if (stop_site == SQ_SITE_ATTN_OUT) return SQ_OK;
    if ((st = LIN(SQ_LIN_O, att, T, tmp))) return st;
    add_bias(tmp, L->bias[SQ_LIN_O], T, H);
    elementwise(residual_chunks, x, tmp, th, T, n_threads);
    rmsnorm_par(x, L->ffn_norm, xn, T, H, c->eps, n_threads);
    if (tap) tap(tap_ctx, l, SQ_SITE_MLP_IN, xn, T, H);
    if (stop_site == SQ_SITE_MLP_IN) return SQ_OK;
    if ((st = sq_rt_linear_batch(m, L, gu, 2, xn, T, gu_out, n_threads, err))) return st;
    add_bias(g, L->bias[SQ_LIN_GATE], T, I);
    add_bias(u, L->bias[SQ_LIN_UP], T, I);
    elementwise(silu_chunks, g, u, (size_t)T * I, T, n_threads);
    if (tap) tap(tap_ctx, l, SQ_SITE_MLP_ACT, g, T, I);
    if (stop_site == SQ_SITE_MLP_ACT) return SQ_OK;
    if ((st = LIN(SQ_LIN_DOWN, g, T, tmp))) return st;
    add_bias(tmp, L->bias[SQ_LIN_DOWN], T, H);
    elementwise(residual_chunks, x, tmp, th, T, n_threads);
    return SQ_OK;
}

static sq_status forward(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *logits, int last_only, int n_threads,
                         sq_rt_tap_fn tap, void *tap_ctx, uint32_t layer_end, sq_err *err) {
    const sq_rt_config *c = &m->cfg;
    const uint32_t H = c->hidden;
    sq_rt_scratch s;
    float *x = malloc((size_t)T * H * 4);
    sq_status st = x ? sq_rt_scratch_init(m, T, &s, err) : sq_err_set(err, SQ_ENOMEM, "out of memory for a window of %u tokens", T);
    if (!x || st) {
        free(x);
        return st;
    }
    if ((st = sq_rt_embed(m, tokens, T, x, err))) goto out;
    for (uint32_t l = 0; l < layer_end; l++)
        if ((st = sq_rt_block(m, l, x, &s, SQ_SITE_COUNT, n_threads, tap, tap_ctx, err))) goto out;
    if (logits) { /* last_only: the last position's row alone (T = 1 products) */
        const uint32_t first = last_only ? T - 1 : 0;
        rmsnorm(x + (size_t)first * H, m->final_norm, s.xn, T - first, H, c->eps);
        if (tap) tap(tap_ctx, c->n_layers, SQ_SITE_ATTN_IN, s.xn, T - first, H); /* the output layer's input */
        st = sq_rt_linear(m, &m->lm_head, m->gpu_lm_head, s.xn, T - first, logits, n_threads, err);
    }
out:
    free(x);
    sq_rt_scratch_free(&s);
    return st;
}

sq_status sq_rt_cache_init(const sq_rt_model *m, uint32_t max_seq, sq_rt_cache *c, sq_err *err) {
    const sq_rt_config *cf = &m->cfg;
    size_t n = (size_t)cf->n_layers * max_seq * cf->n_kv_heads * cf->head_dim;
    c->max_seq = max_seq;
    c->pos = 0;
    c->gpu = NULL;
    c->k = malloc(n * sizeof(float));
    c->v = malloc(n * sizeof(float));
    if (!c->k || !c->v) {
        sq_rt_cache_free(c);
        return sq_err_set(err, SQ_ENOMEM, "out of memory for a KV cache of %u positions", max_seq);
    }
    return m->vk ? sq_vk_decode_attach(m, c, err) : SQ_OK;
}

void sq_rt_cache_free(sq_rt_cache *c) {
    sq_vk_decode_free(c->gpu);
    c->gpu = NULL;
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
}

sq_status sq_rt_step(const sq_rt_model *m, sq_rt_cache *c, int32_t token, float *logits, int n_threads, sq_err *err) {
    const sq_rt_config *cf = &m->cfg;
    const uint32_t H = cf->hidden, hd = cf->head_dim, qd = cf->n_heads * hd, kvd = cf->n_kv_heads * hd, I = cf->inter;
    const uint32_t pos = c->pos, group = cf->n_heads / cf->n_kv_heads;
    if (token < 0 || (uint32_t)token >= cf->vocab) return sq_err_set(err, SQ_EUSAGE, "token id %d is outside the vocabulary", token);
    if (pos >= c->max_seq) return sq_err_set(err, SQ_EUSAGE, "the KV cache is full (%u positions)", c->max_seq);
    if (c->gpu) return sq_vk_decode_cache_step(c, token, logits, err);
    float *x = malloc(H * 4), *xn = malloc(H * 4), *q = malloc(qd * 4), *att = malloc(qd * 4), *tmp = malloc(H * 4),
          *g = malloc(I * 4), *u = malloc(I * 4), *cs = malloc(hd / 2 * 4), *sn = malloc(hd / 2 * 4),
          *sc = malloc((size_t)(pos + 1) * 4);
    sq_status st = SQ_OK;
    if (!x || !xn || !q || !att || !tmp || !g || !u || !cs || !sn || !sc) {
        st = sq_err_set(err, SQ_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < hd / 2; i++) { /* same float32 recipe as the batched pass */
        float ang = (float)pos * (1.0f / powf(cf->rope_theta, (float)(2 * i) / (float)hd));
        cs[i] = cosf(ang);
        sn[i] = sinf(ang);
    }
    sq_decode_rows(&m->embed, (uint64_t)token, (uint64_t)token + 1, x);
    const float scale = 1.0f / sqrtf((float)hd);
    const dot_fn dot = attn_dot(m);
    for (uint32_t l = 0; l < cf->n_layers; l++) {
        const sq_rt_layer *L = &m->layers[l];
        float *kc = c->k + ((size_t)l * c->max_seq) * kvd, *vc = c->v + ((size_t)l * c->max_seq) * kvd;
        rmsnorm(x, L->attn_norm, xn, 1, H, cf->eps);
        const int qkv[] = {SQ_LIN_Q, SQ_LIN_K, SQ_LIN_V}, gu[] = {SQ_LIN_GATE, SQ_LIN_UP};
        float *qkv_out[] = {q, kc + (size_t)pos * kvd, vc + (size_t)pos * kvd}, *gu_out[] = {g, u};
        if ((st = sq_rt_linear_many(m, L, qkv, 3, xn, qkv_out, n_threads, err))) goto out;
        add_bias(q, L->bias[SQ_LIN_Q], 1, qd);
        add_bias(kc + (size_t)pos * kvd, L->bias[SQ_LIN_K], 1, kvd);
        add_bias(vc + (size_t)pos * kvd, L->bias[SQ_LIN_V], 1, kvd);
        rope(q, 1, cf->n_heads, hd, cs, sn);
        rope(kc + (size_t)pos * kvd, 1, cf->n_kv_heads, hd, cs, sn);
#if defined(__x86_64__)
        if (m->fast_kernels && hd % 16 == 0 && sq_isa_active() >= SQ_ISA_AVX512) {
            /* the prefill's kernel, one query, on this thread: a few microseconds, less than waking the workers */
            attn_ctx a = {cf, q, kc, vc, att, 1, 0, dot, pos};
            attn_heads_avx512(&a, 0, cf->n_heads);
            if (a.failed) {
                st = sq_err_set(err, SQ_ENOMEM, "out of memory for attention scores (%u positions)", pos + 1);
                goto out;
            }
        } else if (sq_attn_exact_avx2_ok(cf)) { /* the exact path's bits, 8 lanes (as the prefill) */
            attn_ctx a = {cf, q, kc, vc, att, 1, 0, dot, pos};
            sq_attn_exact_heads_avx2(&a, 0, cf->n_heads);
            if (a.failed) {
                st = sq_err_set(err, SQ_ENOMEM, "out of memory for attention scores (%u positions)", pos + 1);
                goto out;
            }
        } else
#endif
        for (uint32_t h = 0; h < cf->n_heads; h++) {
            const float *qv = q + (size_t)h * hd;
            uint32_t kvh = h / group;
            float mx = -INFINITY, sum = 0;
            for (uint32_t s = 0; s <= pos; s++) {
                const float *kv = kc + (size_t)s * kvd + (size_t)kvh * hd;
                sc[s] = dot(qv, kv, hd) * scale;
                if (sc[s] > mx) mx = sc[s];
            }
            for (uint32_t s = 0; s <= pos; s++) {
                sc[s] = expf(sc[s] - mx);
                sum += sc[s];
            }
            float *o = att + (size_t)h * hd;
            memset(o, 0, hd * sizeof(float));
            for (uint32_t s = 0; s <= pos; s++) {
                const float *vv = vc + (size_t)s * kvd + (size_t)kvh * hd;
                float pr = sc[s] / sum;
                for (uint32_t i = 0; i < hd; i++) o[i] += pr * vv[i];
            }
        }
        if ((st = LIN(SQ_LIN_O, att, 1, tmp))) goto out;
        add_bias(tmp, L->bias[SQ_LIN_O], 1, H);
        for (uint32_t i = 0; i < H; i++) x[i] += tmp[i];
        rmsnorm(x, L->ffn_norm, xn, 1, H, cf->eps);
        if ((st = sq_rt_linear_many(m, L, gu, 2, xn, gu_out, n_threads, err))) goto out;
        add_bias(g, L->bias[SQ_LIN_GATE], 1, I);
        add_bias(u, L->bias[SQ_LIN_UP], 1, I);
        for (uint32_t i = 0; i < I; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        if ((st = LIN(SQ_LIN_DOWN, g, 1, tmp))) goto out;
        add_bias(tmp, L->bias[SQ_LIN_DOWN], 1, H);
        for (uint32_t i = 0; i < H; i++) x[i] += tmp[i];
    }
    rmsnorm(x, m->final_norm, xn, 1, H, cf->eps);
    if ((st = sq_rt_linear(m, &m->lm_head, m->gpu_lm_head, xn, 1, logits, n_threads, err))) goto out;
    c->pos++;
out:
    free(x); free(xn); free(q); free(att); free(tmp); free(g); free(u); free(cs); free(sn); free(sc);
    return st;
}
