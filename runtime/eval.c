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
    float *lg = malloc((size_t)ctx * V * sizeof(float)), *rl = ref ? malloc((size_t)ctx * V * sizeof(float)) : NULL;
    double *lp = malloc((size_t)V * sizeof(double)), *rp = ref ? malloc((size_t)V * sizeof(double)) : NULL;
    double *klds = ref ? malloc((size_t)(nw * per) * sizeof(double)) : NULL;
    sq_status st = SQ_OK;
    if (!lg || !lp || (ref && (!rl || !rp || !klds))) {
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
        if (ref && (st = sq_rt_forward(ref, tok, ctx, rl, o->n_threads, err))) goto out;
        for (uint32_t p = first; p + 1 < ctx; p++) {
            log_softmax(lg + (uint64_t)p * V, V, lp);
            r->nll_sum -= lp[tok[p + 1]];
            if (!isfinite(r->nll_sum)) {
                st = sq_err_set(err, SQ_ECHECK, "window %llu position %u: the model produced non-finite logits",
                                (unsigned long long)w, p);
                goto out;
            }
            if (ref) {
                log_softmax(rl + (uint64_t)p * V, V, rp);
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
    }
    r->ppl = exp(r->nll_sum / (double)r->scored);
    r->prefill_tps = fwd_seconds > 0 ? (double)(nw * ctx) / fwd_seconds : 0;
    if (ref) {
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
    free(lg); free(rl); free(lp); free(rp); free(klds);
    return st;
}
