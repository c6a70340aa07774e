/* Streaming accumulation of calibration statistics from runtime taps. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "common/big_alloc.h"
#include "squish/llama_names.h"
#include "xtx_kernel.h"

/* XᵀX tiles per task: at most SQ_XTX_MAX_TILE, and two column blocks of the
 * AVX-512 panel tiles (3 panels of 16), so that no block but the last is narrower */
#define TILE 96

const char *sq_site_name(sq_site s) {
    static const char *const names[] = {"attn_in", "attn_out", "mlp_in", "mlp_act"};
    return (unsigned)s < SQ_SITE_COUNT ? names[s] : "?";
}

static uint32_t site_dim(const sq_rt_config *c, sq_site s) {
    switch (s) {
    case SQ_SITE_ATTN_OUT: return c->n_heads * c->head_dim;
    case SQ_SITE_MLP_ACT: return c->inter;
    default: return c->hidden;
    }
}

sq_status sq_calib_acc_init(sq_calib_acc *a, const sq_rt_config *cfg, uint32_t layer0, uint32_t layer1, int n_threads,
                            sq_err *err) {
    memset(a, 0, sizeof *a);
    a->layer0 = layer0;
    a->layer1 = layer1;
    a->n_threads = n_threads;
    a->info.n_layers = cfg->n_layers;
    a->info.hidden = cfg->hidden;
    a->info.attn_out = cfg->n_heads * cfg->head_dim;
    a->info.inter = cfg->inter;
    uint32_t nl = layer1 - layer0;
    a->sites = calloc((size_t)nl * SQ_SITE_COUNT, sizeof *a->sites);
    if (!a->sites) return sq_err_set(err, SQ_ENOMEM, "out of memory for calibration statistics");
    for (uint32_t i = 0; i < nl * SQ_SITE_COUNT; i++) {
        sq_calib_site *s = &a->sites[i];
        s->n = site_dim(cfg, (sq_site)(i % SQ_SITE_COUNT));
        s->xtx = calloc((size_t)s->n * s->n, sizeof(double));
        s->abs_mean = calloc(s->n, sizeof(double)); /* holds sums of |x| until the end */
        s->abs_max = calloc(s->n, sizeof(float));
        if (!s->xtx || !s->abs_mean || !s->abs_max) {
            sq_calib_acc_free(a);
            return sq_err_set(err, SQ_ENOMEM, "out of memory for calibration statistics of %u layers (%.1f MiB per "
                              "layer); calibrate fewer layers at a time with --layers and merge",
                              nl, 8.0 * (3.0 * cfg->hidden * cfg->hidden + (double)cfg->inter * cfg->inter) / 1048576.0);
        }
    }
    if (layer1 == cfg->n_layers) { /* the shard with the last layer also gathers the output layer's statistics */
        sq_calib_site *s = &a->output;
        sq_calib_vocab *v = &a->vocab;
        s->n = cfg->hidden;
        s->xtx = calloc((size_t)s->n * s->n, sizeof(double));
        s->abs_mean = calloc(s->n, sizeof(double));
        s->abs_max = calloc(s->n, sizeof(float));
        v->n = cfg->vocab;
        v->count = calloc(v->n, sizeof *v->count);
        v->mean_prob = calloc(v->n, sizeof *v->mean_prob); /* sums until sq_calib_write */
        a->has_output = 1;
        if (!s->xtx || !s->abs_mean || !s->abs_max || !v->count || !v->mean_prob) {
            sq_calib_acc_free(a);
            return sq_err_set(err, SQ_ENOMEM, "out of memory for the output layer's calibration statistics");
        }
    }
    return SQ_OK;
}

void sq_calib_vocab_free(sq_calib_vocab *v) {
    free(v->count);
    free(v->mean_prob);
    memset(v, 0, sizeof *v);
}

void sq_calib_site_free(sq_calib_site *s) {
    free(s->xtx);
    free(s->abs_mean);
    free(s->abs_max);
    memset(s, 0, sizeof *s);
}

void sq_calib_acc_free(sq_calib_acc *a) {
    if (a->sites)
        for (uint32_t i = 0; i < (a->layer1 - a->layer0) * SQ_SITE_COUNT; i++) sq_calib_site_free(&a->sites[i]);
    free(a->sites);
    sq_calib_site_free(&a->output);
    sq_calib_vocab_free(&a->vocab);
    free(a->info.provenance);
    free(a->xp);
    free(a->vocab_e);
    memset(a, 0, sizeof *a);
}

typedef struct tile_ctx {
    const float *x;
    const double *xp; /* x in float64 column panels (sq_xtx_pack), or NULL */
    uint32_t T, n, nt;
    double *xtx;
    sq_isa isa;
} tile_ctx;

/* Tile k of the upper triangle (bi <= bj) in a fixed enumeration. */
static void tile_index(uint32_t nt, uint64_t k, uint32_t *bi, uint32_t *bj) {
    /* rows from both ends (0, nt-1, 1, nt-2, ...): the contiguous parts the
     * threads take then hold about as many full and diagonal tiles */
    for (uint32_t m = 0;; m++) {
        const uint32_t i = m % 2 ? nt - 1 - m / 2 : m / 2;
        if (k < nt - i) {
            *bi = i;
            *bj = i + (uint32_t)k;
            return;
        }
        k -= nt - i;
    }
}

static void pack_panels(void *p, uint64_t g0, uint64_t g1) {
    tile_ctx *c = p;
    sq_xtx_pack(c->x, c->n, c->T, c->n, (uint32_t)g0, (uint32_t)g1, (double *)c->xp);
}

static void xtx_tiles(void *p, uint64_t k0, uint64_t k1) {
    tile_ctx *c = p;
    for (uint64_t k = k0; k < k1; k++) {
        uint32_t bi, bj;
        tile_index(c->nt, k, &bi, &bj);
        const uint32_t i0 = bi * TILE, j0 = bj * TILE;
        const uint32_t ni = c->n - i0 < TILE ? c->n - i0 : TILE, nj = c->n - j0 < TILE ? c->n - j0 : TILE;
        double *up = c->xtx + (size_t)i0 * c->n + j0;
        if (c->xp) sq_xtx_accumulate_panels(c->isa, up, c->n, c->x, c->xp, c->n, c->T, i0, ni, j0, nj);
        else sq_xtx_accumulate(c->isa, up, c->n, c->x, c->n, c->T, i0, ni, j0, nj);
    }
}

/* *first = min(*first, i) across tasks: the first bad index in input order,
 * whichever task finds it. */
static void keep_first(uint64_t *first, uint64_t i) {
    uint64_t cur = __atomic_load_n(first, __ATOMIC_RELAXED);
    while (i < cur && !__atomic_compare_exchange_n(first, &cur, i, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

#define STAT_CHUNK 64 /* channels per task of the |x| statistics */

typedef struct stats_ctx {
    const float *x;
    uint32_t T, n;
    sq_isa isa;
    sq_calib_site *s;
    uint64_t bad; /* index of the first non-finite value, or UINT64_MAX */
} stats_ctx;

#if defined(__x86_64__)
#include <immintrin.h>
/* channel_stats' loop for 16 channels per step from j0 (j1 - j0 a multiple
 * of 16): the same operations per channel (|x|, the float64 sum, the
 * maximum kept unless x is larger, a NaN never), so the same bits. */
__attribute__((target("avx2,avx512f"))) static uint64_t channel_stats_avx512(const float *x, uint32_t T, uint32_t n,
                                                                           uint32_t j0, uint32_t j1, double *sum,
                                                                           float *mx) {
    uint64_t bad = UINT64_MAX;
    const __m512 big = _mm512_set1_ps(FLT_MAX);
    for (uint32_t j = j0; j < j1; j += 16) {
        __m512d s0 = _mm512_loadu_pd(sum + j), s1 = _mm512_loadu_pd(sum + j + 8);
        __m512 m = _mm512_loadu_ps(mx + j);
        for (uint32_t t = 0; t < T; t++) {
            const __m512 v = _mm512_abs_ps(_mm512_loadu_ps(x + (size_t)t * n + j));
            const __mmask16 fin = _mm512_cmp_ps_mask(v, big, _CMP_LE_OQ);
            if (fin != 0xffff) { /* NaN or infinite: the first in token order, then channel order */
                const uint64_t at = (uint64_t)t * n + j + (uint32_t)__builtin_ctz(~(uint32_t)fin);
                if (at < bad) bad = at;
            }
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
            m = _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ), v);
        }
        _mm512_storeu_pd(sum + j, s0);
        _mm512_storeu_pd(sum + j + 8, s1);
        _mm512_storeu_ps(mx + j, m);
    }
    return bad;
}
#endif

/* Sums and maxima of |x| for a range of channels, each summed over tokens
 * in order (the bits do not depend on the split). */
static void channel_stats(void *p, uint64_t c0, uint64_t c1) {
    stats_ctx *c = p;
    uint32_t j0 = (uint32_t)c0 * STAT_CHUNK;
    const uint32_t j1 = c1 * STAT_CHUNK < c->n ? (uint32_t)c1 * STAT_CHUNK : c->n;
    double *sum = c->s->abs_mean;
    float *mx = c->s->abs_max;
    uint64_t bad = UINT64_MAX;
#if defined(__x86_64__)
    if (c->isa >= SQ_ISA_AVX512) { /* whole groups of 16 channels; the rest below */
        const uint32_t jv = j0 + (j1 - j0) / 16 * 16;
        bad = channel_stats_avx512(c->x, c->T, c->n, j0, jv, sum, mx);
        j0 = jv;
    }
#endif
    for (uint32_t t = 0; t < c->T; t++) {
        const float *row = c->x + (size_t)t * c->n;
        for (uint32_t j = j0; j < j1; j++) {
            float v = fabsf(row[j]);
            if (!(v <= FLT_MAX) && (uint64_t)t * c->n + j < bad) bad = (uint64_t)t * c->n + j; /* NaN or infinite */
            sum[j] += v;
            if (v > mx[j]) mx[j] = v;
        }
    }
    keep_first(&c->bad, bad);
}

void sq_calib_tap(void *ctx, uint32_t layer, sq_site site, const float *x, uint32_t T, uint32_t n) {
    sq_calib_acc *a = ctx;
    if (a->status) return;
    const int out = layer == a->info.n_layers && site == SQ_SITE_ATTN_IN; /* the output layer's input */
    if (out ? !a->has_output : layer < a->layer0 || layer >= a->layer1) return;
    sq_calib_site *s = out ? &a->output : &a->sites[(layer - a->layer0) * SQ_SITE_COUNT + site];
    char where[48];
    if (out) snprintf(where, sizeof where, "output layer input");
    else snprintf(where, sizeof where, "layer %u %s", layer, sq_site_name(site));
    if (s->n != n) {
        a->status = sq_err_set(&a->err, SQ_EINTERNAL, "%s: width %u, expected %u", where, n, s->n);
        return;
    }
    stats_ctx sc = {x, T, n, sq_isa_active(), s, UINT64_MAX};
    sq_parallel_for(a->n_threads, (n + STAT_CHUNK - 1) / STAT_CHUNK, channel_stats, &sc);
    if (sc.bad != UINT64_MAX) { /* the first non-finite value in token order */
        const float v = x[sc.bad];
        a->status = sq_err_set(&a->err, SQ_ECORRUPT,
                               "%s: activation of token %llu, channel %llu is %s; the model produces "
                               "non-finite values on this text",
                               where, (unsigned long long)(sc.bad / n), (unsigned long long)(sc.bad % n),
                               isnan(v) ? "NaN" : "infinite");
        return;
    }
    s->tokens += T;
    a->lower_stale = 1;
    uint32_t nt = (n + TILE - 1) / TILE;
    const uint32_t ng = (n + SQ_XTX_PANEL - 1) / SQ_XTX_PANEL;
    const size_t need = (size_t)ng * T * SQ_XTX_PANEL;
    if (need > a->xp_cap) { /* grown once: the same widths and window come back for every layer */
        free(a->xp);
        /* 64-byte aligned: the AVX-512 tiles load whole cache lines of the panels */
        a->xp = aligned_alloc(64, (need * sizeof(double) + 63) / 64 * 64);
        a->xp_cap = a->xp ? need : 0;
    }
    tile_ctx c = {x, a->xp, T, n, nt, s->xtx, sq_isa_active()}; /* xp NULL: the tiles pack their own panels */
    if (c.xp) sq_parallel_for(a->n_threads, ng, pack_panels, &c);
    sq_parallel_for(a->n_threads, (uint64_t)nt * (nt + 1) / 2, xtx_tiles, &c);
}

/* XᵀX is symmetric by construction: the lower triangle is the upper one's
 * copy, made here once rather than after every window's sums. */
static void symmetrize_site(sq_calib_site *s) {
    if (!s->xtx) return;
    for (uint64_t i = 0; i < s->n; i++)
        for (uint64_t j = i + 1; j < s->n; j++) s->xtx[j * s->n + i] = s->xtx[i * s->n + j];
}

void sq_calib_acc_symmetrize(sq_calib_acc *a) {
    if (!a->sites) return;
    for (uint32_t k = 0; k < (a->layer1 - a->layer0) * SQ_SITE_COUNT; k++) symmetrize_site(&a->sites[k]);
    symmetrize_site(&a->output);
    a->lower_stale = 0;
}

#define VOCAB_CHUNK 256 /* vocabulary entries per task of the probability sums */
#define POS_CHUNK 32    /* positions whose exp(l - max) are kept for the entry sums */

typedef struct window_ctx {
    const float *logits;
    uint32_t T, V;
    double *mx, *z;    /* [T] per position: the largest logit, the softmax's denominator */
    double *e;         /* [POS_CHUNK][V]: exp(l - max) of the positions from t0 (NULL: recomputed) */
    uint32_t t0, t1;   /* the positions of the entry sums */
    double *sum;       /* the accumulator's probability sums */
    uint64_t bad;      /* index of the first non-finite logit, or UINT64_MAX */
} window_ctx;

/* Per position from t0: the largest logit and Σ exp(l - max) in index
 * order (the terms kept in e, if any, for the entry sums). */
static void position_sums(void *p, uint64_t t0, uint64_t t1) {
    window_ctx *c = p;
    for (uint64_t t = c->t0 + t0; t < c->t0 + t1; t++) {
        const float *l = c->logits + t * c->V;
        float mx = l[0];
        for (uint32_t i = 0; i < c->V; i++) {
            if (!isfinite(l[i])) {
                keep_first(&c->bad, t * c->V + i);
                return;
            }
            if (l[i] > mx) mx = l[i];
        }
        double z = 0, *e = c->e ? c->e + (t - c->t0) * c->V : NULL;
        for (uint32_t i = 0; i < c->V; i++) {
            const double v = exp((double)l[i] - (double)mx);
            if (e) e[i] = v;
            z += v;
        }
        c->mx[t] = mx, c->z[t] = z;
    }
}

/* Per vocabulary entry: its probabilities added in position order. */
static void entry_sums(void *p, uint64_t c0, uint64_t c1) {
    window_ctx *c = p;
    const uint32_t i0 = (uint32_t)c0 * VOCAB_CHUNK, i1 = c1 * VOCAB_CHUNK < c->V ? (uint32_t)c1 * VOCAB_CHUNK : c->V;
    for (uint32_t t = c->t0; t < c->t1; t++) {
        const float *l = c->logits + (size_t)t * c->V;
        const double *e = c->e ? c->e + (size_t)(t - c->t0) * c->V : NULL;
        for (uint32_t i = i0; i < i1; i++) c->sum[i] += (e ? e[i] : exp((double)l[i] - c->mx[t])) / c->z[t];
    }
}

sq_status sq_calib_acc_window(sq_calib_acc *a, const int32_t *tokens, const float *logits, uint32_t T, sq_err *err) {
    if (!a->has_output) return SQ_OK;
    sq_calib_vocab *v = &a->vocab;
    const uint32_t V = v->n;
    uint32_t tok_bad = T;
    for (uint32_t t = 0; t < T && tok_bad == T; t++)
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= V) tok_bad = t;
    double *mz = malloc(2 * (size_t)T * sizeof(double));
    if (!mz) return sq_err_set(err, SQ_ENOMEM, "out of memory for %u positions' softmax sums", T);
    if (!a->vocab_e) a->vocab_e = malloc((size_t)POS_CHUNK * V * sizeof(double)); /* NULL: exp is recomputed */
    window_ctx c = {logits, tok_bad, V, mz, mz + T, NULL, 0, 0, v->mean_prob, UINT64_MAX};
    if (!a->vocab_e || tok_bad < T) /* the positions before a bad token, as a serial pass would see them */
        sq_parallel_for(a->n_threads, tok_bad, position_sums, &c);
    else /* by chunks of positions, whose terms the entry sums then reuse */
        for (uint32_t t0 = 0; t0 < T && c.bad == UINT64_MAX; t0 += POS_CHUNK) {
            c.e = a->vocab_e, c.t0 = t0, c.t1 = T - t0 < POS_CHUNK ? T : t0 + POS_CHUNK;
            sq_parallel_for(a->n_threads, c.t1 - t0, position_sums, &c);
            if (c.bad == UINT64_MAX)
                sq_parallel_for(a->n_threads, (V + VOCAB_CHUNK - 1) / VOCAB_CHUNK, entry_sums, &c);
        }
    if (c.bad != UINT64_MAX) {
        const uint64_t t = c.bad / V, i = c.bad % V;
        free(mz);
        return sq_err_set(err, SQ_ECORRUPT, "the logit of entry %llu at position %llu is %s; the model produces "
                          "non-finite values on this text", (unsigned long long)i, (unsigned long long)t,
                          isnan(logits[c.bad]) ? "NaN" : "infinite");
    }
    if (tok_bad < T) {
        free(mz);
        return sq_err_set(err, SQ_EINTERNAL, "token id %d outside the vocabulary (%u)", tokens[tok_bad], V);
    }
    for (uint32_t t = 0; t < T; t++) v->count[tokens[t]]++;
    if (!c.e) {
        c.t0 = 0, c.t1 = T;
        sq_parallel_for(a->n_threads, (V + VOCAB_CHUNK - 1) / VOCAB_CHUNK, entry_sums, &c);
    }
    free(mz);
    v->positions += T;
    return SQ_OK;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

sq_status sq_calib_draw(uint64_t n_ids, uint32_t seqlen, uint64_t samples, uint64_t seed, uint64_t *starts,
                        sq_err *err) {
    if (n_ids < seqlen)
        return sq_err_set(err, SQ_EUSAGE, "the calibration text has %llu tokens, fewer than one window of %u",
                          (unsigned long long)n_ids, seqlen);
    uint64_t span = n_ids - seqlen + 1, st = seed;
    for (uint64_t i = 0; i < samples; i++) {
        /* rejection sampling: no modulo bias */
        uint64_t lim = UINT64_MAX - UINT64_MAX % span, r;
        do r = splitmix64(&st);
        while (r >= lim);
        starts[i] = r % span;
    }
    return SQ_OK;
}

int sq_calib_site_of(const char *name, uint32_t *layer, sq_site *site) {
    /* the input each linear layer reads, in the linear roles' order (q, k, v, o, gate, up, down) */
    static const sq_site site_of[SQ_LLAMA_LINEAR_COUNT] = {SQ_SITE_ATTN_IN, SQ_SITE_ATTN_IN, SQ_SITE_ATTN_IN,
                                                           SQ_SITE_ATTN_OUT, SQ_SITE_MLP_IN, SQ_SITE_MLP_IN,
                                                           SQ_SITE_MLP_ACT};
    uint32_t l;
    int bias;
    int i = sq_llama_linear_index(sq_llama_parse(name, &l, &bias));
    if (i < 0 || bias) return 0;
    *layer = l;
    *site = site_of[i];
    return 1;
}

float *sq_calib_site_hessian(const sq_calib_site *s, const float *scale) {
    const uint64_t n = s->n;
    float *H = sq_big_alloc(n * n * sizeof(float));
    if (!H) return NULL;
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = 0; j < n; j++) {
            double v = s->xtx[i * n + j] / (double)s->tokens;
            if (scale) v /= (double)scale[i] * scale[j];
            H[i * n + j] = (float)v;
        }
    return H;
}
