/* Streaming accumulation of calibration statistics from runtime taps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "squish/llama_names.h"
#include "xtx_kernel.h"

#define TILE SQ_XTX_MAX_TILE

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
    memset(a, 0, sizeof *a);
}

typedef struct tile_ctx {
    const float *x;
    const double *xd; /* x widened to float64, or NULL */
    uint32_t T, n, nt;
    double *xtx;
    sq_isa isa;
} tile_ctx;

/* Tile k of the upper triangle (bi <= bj) in a fixed enumeration. */
static void tile_index(uint32_t nt, uint64_t k, uint32_t *bi, uint32_t *bj) {
    uint32_t i = 0;
    while (k >= nt - i) {
        k -= nt - i;
        i++;
    }
    *bi = i;
    *bj = i + (uint32_t)k;
}

static void xtx_tiles(void *p, uint64_t k0, uint64_t k1) {
    tile_ctx *c = p;
    for (uint64_t k = k0; k < k1; k++) {
        uint32_t bi, bj;
        tile_index(c->nt, k, &bi, &bj);
        const uint32_t i0 = bi * TILE, j0 = bj * TILE;
        const uint32_t ni = c->n - i0 < TILE ? c->n - i0 : TILE, nj = c->n - j0 < TILE ? c->n - j0 : TILE;
        double *up = c->xtx + (size_t)i0 * c->n + j0;
        if (c->xd) sq_xtx_accumulate_wide(c->isa, up, c->n, c->x, c->xd, c->n, c->T, i0, ni, j0, nj);
        else sq_xtx_accumulate(c->isa, up, c->n, c->x, c->n, c->T, i0, ni, j0, nj);
    }
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
    for (uint64_t i = 0; i < (uint64_t)T * n; i++)
        if (!isfinite(x[i])) {
            a->status = sq_err_set(&a->err, SQ_ECORRUPT,
                                   "%s: activation of token %llu, channel %llu is %s; the model produces "
                                   "non-finite values on this text",
                                   where, (unsigned long long)(i / n), (unsigned long long)(i % n),
                                   isnan(x[i]) ? "NaN" : "infinite");
            return;
        }
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t j = 0; j < n; j++) {
            float v = fabsf(x[(size_t)t * n + j]);
            s->abs_mean[j] += v;
            if (v > s->abs_max[j]) s->abs_max[j] = v;
        }
    s->tokens += T;
    a->lower_stale = 1;
    uint32_t nt = (n + TILE - 1) / TILE;
    double *xd = malloc((size_t)T * n * sizeof(double)); /* NULL: the tiles pack their own panels */
    if (xd)
        for (size_t i = 0; i < (size_t)T * n; i++) xd[i] = x[i];
    tile_ctx c = {x, xd, T, n, nt, s->xtx, sq_isa_active()};
    sq_parallel_for(a->n_threads, (uint64_t)nt * (nt + 1) / 2, xtx_tiles, &c);
    free(xd);
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

sq_status sq_calib_acc_window(sq_calib_acc *a, const int32_t *tokens, const float *logits, uint32_t T, sq_err *err) {
    if (!a->has_output) return SQ_OK;
    sq_calib_vocab *v = &a->vocab;
    const uint32_t V = v->n;
    for (uint32_t t = 0; t < T; t++) {
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= V)
            return sq_err_set(err, SQ_EINTERNAL, "token id %d outside the vocabulary (%u)", tokens[t], V);
        v->count[tokens[t]]++;
        const float *l = logits + (size_t)t * V;
        float mx = l[0];
        for (uint32_t i = 0; i < V; i++) {
            if (!isfinite(l[i]))
                return sq_err_set(err, SQ_ECORRUPT, "the logit of entry %u at position %u is %s; the model produces "
                                  "non-finite values on this text", i, t, isnan(l[i]) ? "NaN" : "infinite");
            if (l[i] > mx) mx = l[i];
        }
        double z = 0;
        for (uint32_t i = 0; i < V; i++) z += exp((double)l[i] - (double)mx);
        for (uint32_t i = 0; i < V; i++) v->mean_prob[i] += exp((double)l[i] - (double)mx) / z;
    }
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
    float *H = malloc(n * n * sizeof(float));
    if (!H) return NULL;
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = 0; j < n; j++) {
            double v = s->xtx[i * n + j] / (double)s->tokens;
            if (scale) v /= (double)scale[i] * scale[j];
            H[i * n + j] = (float)v;
        }
    return H;
}
