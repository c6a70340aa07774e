/* Perplexity and KL-divergence over windows of token ids, following the
 * convention of ../shared/README.md: non-overlapping windows of ctx tokens
 * (short tail dropped), each from an empty cache, every position 1..ctx-1
 * scored; or, with second_half, llama.cpp's perplexity convention (only the
 * predictions in the second half of each window). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"
#include "squish/fileio.h"
#include "squish/fp.h"
#include "squish/hash.h"
#include <unistd.h>

sq_status sq_read_ids(const char *path, uint32_t vocab, int32_t **ids, uint64_t *n, sq_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return sq_err_set(err, SQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    uint64_t cap = 4096, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    long long x;
    int c;
    sq_status st = SQ_OK;
    while (v && (c = fscanf(f, "%lld", &x)) == 1) {
        if (x < 0 || (uint64_t)x >= vocab) {
            st = sq_err_set(err, SQ_ECORRUPT, "%s: token id %lld (number %llu) is outside the vocabulary of %u", path, x,
                            (unsigned long long)k + 1, vocab);
            break;
        }
        if (k == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) { free(v); v = NULL; break; }
            v = nv;
        }
        v[k++] = (int32_t)x;
    }
    if (!st && v && !feof(f)) st = sq_err_set(err, SQ_ECORRUPT, "%s: not a list of integer token ids (after %llu ids)", path,
                                            (unsigned long long)k);
    fclose(f);
    if (!v) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
    if (!st && k == 0) st = sq_err_set(err, SQ_EUSAGE, "%s: no token ids", path);
    if (st) { free(v); return st; }
    *ids = v;
    *n = k;
    return SQ_OK;
}

/* log-softmax of one row into out (double); returns nothing */
static void log_softmax(const float *z, uint32_t n, double *out) {
    double mx = -INFINITY;
    for (uint32_t i = 0; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    double s = 0;
    for (uint32_t i = 0; i < n; i++) s += exp((double)z[i] - mx);
    double lse = mx + log(s);
    for (uint32_t i = 0; i < n; i++) out[i] = (double)z[i] - lse;
}

/* Reference cache file: a 128-byte header, then for every scored position the
 * reference log-softmax over the vocabulary as f16 (little-endian).
 *   0 "SQLP" | 4 u32 version 1 | 8 u32 vocab | 12 u32 ctx | 16 u32 first | 20 u32 windows
 *   24 u64 positions | 32 32-byte SHA-256 of the token ids | 64 32-byte reference identity | 96 zero */
#define CACHE_HDR 128

static void cache_header(uint8_t h[CACHE_HDR], uint32_t V, uint32_t ctx, uint32_t first, uint64_t nw, uint64_t pos,
                         const uint8_t ids_hash[32], const uint8_t ref_id[32]) {
    memset(h, 0, CACHE_HDR);
    memcpy(h, "SQLP", 4);
    uint32_t v32[5] = {1, V, ctx, first, (uint32_t)nw};
    for (int i = 0; i < 5; i++)
        for (int b = 0; b < 4; b++) h[4 + 4 * i + b] = (uint8_t)(v32[i] >> (8 * b));
    for (int b = 0; b < 8; b++) h[24 + b] = (uint8_t)(pos >> (8 * b));
    memcpy(h + 32, ids_hash, 32);
    memcpy(h + 64, ref_id, 32);
}

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Cache header for the first nw windows of ids under these options. */
static void header_for(const int32_t *ids, uint64_t nw, uint32_t V, const sq_eval_opts *o, uint8_t h[CACHE_HDR]) {
    uint32_t ctx = o->ctx, first = o->second_half ? ctx / 2 : 0;
    uint8_t ids_hash[32];
    sq_sha256 sh;
    sq_sha256_init(&sh);
    sq_sha256_update(&sh, ids, (size_t)(nw * ctx) * sizeof *ids);
    sq_sha256_final(&sh, ids_hash);
    cache_header(h, V, ctx, first, nw, nw * (ctx - 1 - first), ids_hash, o->ref_id);
}

static uint64_t windows_wanted(uint64_t n_ids, const sq_eval_opts *o) {
    uint64_t nw = n_ids / o->ctx;
    return o->max_windows && nw > o->max_windows ? o->max_windows : nw;
}

/* 1 if the header read from a cache serves these ids and options: the same text,
 * reference and scoring, over at least the windows wanted (a cache of all
 * windows serves a --windows run, which reads its first rows, and is kept). */
static int cache_serves(const uint8_t got[CACHE_HDR], const int32_t *ids, uint64_t n_ids, uint32_t V, const sq_eval_opts *o) {
    uint64_t cw = get_u32(got + 20);
    if (memcmp(got, "SQLP", 4) || cw < windows_wanted(n_ids, o) || cw > n_ids / o->ctx) return 0;
    uint8_t want[CACHE_HDR];
    header_for(ids, cw, V, o, want);
    return !memcmp(got, want, CACHE_HDR);
}

int sq_rt_ref_cache_matches(const int32_t *ids, uint64_t n_ids, uint32_t vocab, const sq_eval_opts *o) {
    if (!o->ref_cache || o->ctx < 2) return 0;
    uint8_t got[CACHE_HDR];
    FILE *f = fopen(o->ref_cache, "rb");
    int ok = f && fread(got, 1, CACHE_HDR, f) == CACHE_HDR && cache_serves(got, ids, n_ids, vocab, o);
    if (f) fclose(f);
    return ok;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

sq_status sq_rt_eval(const sq_rt_model *m, const sq_rt_model *ref, const int32_t *ids, uint64_t n_ids,
                     const sq_eval_opts *o, sq_eval_result *r, sq_err *err) {
    memset(r, 0, sizeof *r);
    const uint32_t V = m->cfg.vocab, ctx = o->ctx;
    if (ctx < 2) return sq_err_set(err, SQ_EUSAGE, "--ctx must be at least 2");
    if (m->cfg.max_seq && ctx > m->cfg.max_seq)
        return sq_err_set(err, SQ_EUSAGE, "a context of %u tokens is longer than the model's %u (max_position_embeddings)", ctx,
                          m->cfg.max_seq);
    if (ref && ref->cfg.vocab != V) return sq_err_set(err, SQ_EUSAGE, "the reference model's vocabulary differs");
    uint64_t nw = n_ids / ctx;
    if (o->max_windows && nw > o->max_windows) nw = o->max_windows;
    if (!nw) return sq_err_set(err, SQ_EUSAGE, "the text has %llu tokens, fewer than one window of %u",
                               (unsigned long long)n_ids, ctx);
    uint32_t first = o->second_half ? ctx / 2 : 0; /* first logit position scored */
    uint64_t per = ctx - 1 - first;
    /* reference cache: read it if it matches, else compute from ref and write it */
    FILE *cache_in = NULL, *cache_out = NULL;
    sq_tmpout cache_tmp = {NULL, NULL, -1}; /* registered: a signal removes it */
    uint8_t want_hdr[CACHE_HDR];
    uint16_t *cache_row = NULL;
    if (o->ref_cache) {
        header_for(ids, nw, V, o, want_hdr);
        cache_in = fopen(o->ref_cache, "rb");
        uint8_t got[CACHE_HDR];
        if (cache_in && (fread(got, 1, CACHE_HDR, cache_in) != CACHE_HDR || !cache_serves(got, ids, n_ids, V, o))) {
            fclose(cache_in); /* another text, model or setting: recompute and replace */
            cache_in = NULL;
        }
        if (!cache_in) {
            if (!ref) return sq_err_set(err, SQ_EUSAGE, "%s: no matching reference cache; give --reference to compute it", o->ref_cache);
            sq_status ts = sq_tmpout_create(&cache_tmp, o->ref_cache, err);
            if (ts) return ts;
            cache_out = fopen(cache_tmp.tmp, "wb");
            if (!cache_out || fwrite(want_hdr, 1, CACHE_HDR, cache_out) != CACHE_HDR) {
                if (cache_out) fclose(cache_out);
                sq_tmpout_abort(&cache_tmp);
                return sq_err_set(err, SQ_EIO, "%s: cannot write the reference cache", o->ref_cache);
            }
        }
        cache_row = malloc((size_t)V * sizeof *cache_row);
        r->ref_cache_used = cache_in ? 1 : 2;
    }
    int have_ref = ref || cache_in;
    int run_ref = have_ref && !cache_in; /* forward passes of the reference needed */
    float *lg = malloc((size_t)ctx * V * sizeof(float)), *rl = run_ref ? malloc((size_t)ctx * V * sizeof(float)) : NULL;
    double *lp = malloc((size_t)V * sizeof(double)), *rp = have_ref ? malloc((size_t)V * sizeof(double)) : NULL;
    double *klds = have_ref ? malloc((size_t)(nw * per) * sizeof(double)) : NULL;
    sq_status st = SQ_OK;
    if (!lg || !lp || (have_ref && (!rp || !klds)) || (run_ref && !rl) || (o->ref_cache && !cache_row)) {
        st = sq_err_set(err, SQ_ENOMEM, "out of memory for the logits of a %u-token window", ctx);
        goto out;
    }
    uint64_t top1 = 0;
    double fwd_seconds = 0;
    for (uint64_t w = 0; w < nw; w++) {
        const int32_t *tok = ids + w * ctx;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if ((st = sq_rt_forward(m, tok, ctx, lg, o->n_threads, err))) goto out;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fwd_seconds += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (run_ref && (st = sq_rt_forward(ref, tok, ctx, rl, o->n_threads, err))) goto out;
        for (uint32_t p = first; p + 1 < ctx; p++) {
            log_softmax(lg + (uint64_t)p * V, V, lp);
            r->nll_sum -= lp[tok[p + 1]];
            if (!isfinite(r->nll_sum)) {
                st = sq_err_set(err, SQ_ECHECK, "window %llu position %u: the model produced non-finite logits",
                                (unsigned long long)w, p);
                goto out;
            }
            if (have_ref) {
                if (cache_in) { /* cached reference log-probabilities (f16) */
                    if (fread(cache_row, sizeof *cache_row, V, cache_in) != V) {
                        st = sq_err_set(err, SQ_ECORRUPT, "%s: the reference cache is truncated", o->ref_cache);
                        goto out;
                    }
                    for (uint32_t i = 0; i < V; i++) rp[i] = sq_f16_to_f32(cache_row[i]);
                } else {
                    log_softmax(rl + (uint64_t)p * V, V, rp);
                    if (cache_out) { /* store rounded, and use the rounded values now too, so a cached run gives the same figures */
                        for (uint32_t i = 0; i < V; i++) {
                            cache_row[i] = sq_f32_to_f16((float)rp[i]);
                            rp[i] = sq_f16_to_f32(cache_row[i]);
                        }
                        if (fwrite(cache_row, sizeof *cache_row, V, cache_out) != V) {
                            st = sq_err_set(err, SQ_EIO, "%s: writing the reference cache failed", o->ref_cache);
                            goto out;
                        }
                    }
                }
                r->ref_nll_sum -= rp[tok[p + 1]];
                double kl = 0;
                uint32_t am = 0, ar = 0;
                for (uint32_t i = 0; i < V; i++) {
                    kl += exp(rp[i]) * (rp[i] - lp[i]);
                    if (lp[i] > lp[am]) am = i;
                    if (rp[i] > rp[ar]) ar = i;
                }
                klds[r->scored] = kl > 0 ? kl : 0;
                top1 += am == ar;
            }
            r->scored++;
        }
        r->windows++;
        if (o->progress) o->progress(o->progress_ctx, r->windows, nw);
    }
    r->ppl = exp(r->nll_sum / (double)r->scored);
    r->prefill_tps = fwd_seconds > 0 ? (double)(nw * ctx) / fwd_seconds : 0;
    if (have_ref) {
        r->ref_ppl = exp(r->ref_nll_sum / (double)r->scored);
        double s = 0;
        for (uint64_t i = 0; i < r->scored; i++) s += klds[i];
        r->kld_mean = s / (double)r->scored;
        qsort(klds, (size_t)r->scored, sizeof *klds, cmp_double);
        r->kld_p99 = klds[(uint64_t)((double)(r->scored - 1) * 0.99)];
        r->kld_max = klds[r->scored - 1];
        r->top1 = (double)top1 / (double)r->scored;
    }
out:
    if (cache_in) fclose(cache_in);
    if (cache_out) {
        int bad = fclose(cache_out) != 0;
        if (!st && bad) st = sq_err_set(err, SQ_EIO, "%s: writing the reference cache failed", o->ref_cache);
        if (!st) st = sq_tmpout_commit(&cache_tmp, err);
        else sq_tmpout_abort(&cache_tmp);
    }
    free(cache_row);
    free(lg); free(rl); free(lp); free(rp); free(klds);
    return st;
}
