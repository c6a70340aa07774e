/* KL-divergence probes for the allocator (see alloc_probe.h). */
#include "alloc_probe.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "squish/hash.h"
#include "squish/llama_names.h"
#include "tokenizer.h"

int sq_alloc_probe_points(const sq_alloc_entry *e, int pts[2]) {
    int idx[SQ_ALLOC_MAX_CANDS];
    if (e->n <= 0) return 0; /* no candidates, nothing to probe */
    for (int j = 0; j < e->n; j++) { /* by bits, then candidate order: insertion sort of a few */
        int k = j;
        for (; k > 0 && (e->bits[idx[k - 1]] > e->bits[j] || (e->bits[idx[k - 1]] == e->bits[j] && idx[k - 1] > j)); k--)
            idx[k] = idx[k - 1];
        idx[k] = j;
    }
    pts[0] = idx[0];
    if (e->n <= 2) return 1;
    pts[1] = idx[e->n / 2];
    return 2;
}

void sq_alloc_probe_fit(sq_alloc_entry *e) {
    int pts[2], np = sq_alloc_probe_points(e, pts), have = 0, a[2];
    for (int i = 0; i < np; i++)
        if (e->kld[pts[i]] >= 0) a[have++] = pts[i];
    if (!have) {
        for (int j = 0; j < e->n; j++) e->pred[j] = e->loss[j];
        return;
    }
    double K[2], X[2];
    for (int i = 0; i < have; i++) {
        K[i] = e->kld[a[i]] > SQ_ALLOC_PROBE_FLOOR ? e->kld[a[i]] : SQ_ALLOC_PROBE_FLOOR;
        X[i] = e->loss[a[i]];
    }
    double beta = 1;
    if (have == 2 && X[0] > 0 && X[1] > 0 && X[0] != X[1]) {
        beta = log(K[0] / K[1]) / log(X[0] / X[1]);
        beta = beta < 0.5 ? 0.5 : beta > 2 ? 2 : beta;
    }
    for (int j = 0; j < e->n; j++) {
        int b = 0; /* the probe nearest in log x (a zero proxy is nearest the smaller) */
        if (have == 2) {
            double dj0 = e->loss[j] > 0 && X[0] > 0 ? fabs(log(e->loss[j] / X[0])) : (X[0] <= X[1] ? 0 : INFINITY);
            double dj1 = e->loss[j] > 0 && X[1] > 0 ? fabs(log(e->loss[j] / X[1])) : (X[1] < X[0] ? 0 : INFINITY);
            b = dj1 < dj0;
        }
        if (j == a[b] || (have == 2 && j == a[!b])) e->pred[j] = K[j == a[b] ? b : !b];
        else if (X[b] > 0) e->pred[j] = K[b] * pow(e->loss[j] / X[b], beta);
        else e->pred[j] = e->loss[j] > 0 ? K[b] + e->loss[j] : K[b]; /* a lossless probe: no ratio to scale by */
    }
}

/* ---- the probe text ---- */

static sq_status probe_ids(const sq_alloc_opts *o, const sq_model *m, uint32_t vocab, int32_t **ids, uint64_t *n,
                           sq_err *err) {
    if (o->probe_ids) return sq_read_ids(o->probe_ids, vocab, ids, n, err);
    const char *tkp = m->tokenizer_path;
    if (!tkp) return sq_err_set(err, SQ_EUSAGE, "--alloc-probe-text: %s has no tokenizer beside it; give --alloc-probe-ids", m->path);
    FILE *f = fopen(o->probe_text, "rb");
    if (!f) return sq_err_set(err, SQ_EIO, "%s: cannot open: %s", o->probe_text, strerror(errno));
    size_t cap = 1 << 20, len = 0, got;
    char *text = malloc(cap);
    while (text && (got = fread(text + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *nt = realloc(text, cap *= 2);
            if (!nt) free(text);
            text = nt;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!text) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", o->probe_text);
    if (bad) {
        free(text);
        return sq_err_set(err, SQ_EIO, "%s: read error", o->probe_text);
    }
    len = sq_text_newlines(text, len);
    sq_tokenizer *tk = sq_tokenizer_load_vocab(tkp, vocab, err);
    sq_status st = tk ? sq_tokenize(tk, text, len, ids, n, err) : (err && err->status ? err->status : SQ_EIO);
    sq_tokenizer_free(tk);
    free(text);
    return st;
}

/* The runtime's view of a canonical tensor name, or NULL. */
static sq_tview *rt_view(sq_rt_model *rt, const char *name) {
    uint32_t layer;
    sq_llama_role r = sq_llama_parse(name, &layer, NULL);
    if (r == SQ_LLAMA_EMBED) return &rt->embed;
    if (r == SQ_LLAMA_LM_HEAD) return &rt->lm_head;
    int li = sq_llama_linear_index(r);
    if (li < 0 || layer >= rt->cfg.n_layers) return NULL;
    return (sq_tview *)sq_rt_linear_view(&rt->layers[layer], li);
}

typedef struct probe_run {
    sq_rt_model rt;
    const int32_t *ids;
    uint64_t n_ids;
    sq_eval_opts eo;
} probe_run;

static sq_status kld_of(probe_run *pr, const sq_rt_model *ref, double *kld, sq_err *err) {
    sq_eval_result r;
    sq_status st = sq_rt_eval(&pr->rt, ref, pr->ids, pr->n_ids, &pr->eo, &r, err);
    if (!st) *kld = r.kld_mean;
    return st;
}

/* One probe: tensor t replaced by candidate j's decode, the KL-divergence measured. */
static sq_status probe_one(probe_run *pr, sq_method *q, const sq_model *m, const sq_model_tensor *t, sq_alloc_entry *e,
                           const sq_alloc_cand *cands, int j, double base, sq_err *err) {
    sq_tview *v = rt_view(&pr->rt, t->name);
    if (!v || v->nparts != 1 || v->codec != sq_codec_by_id(SQ_CODEC_F32))
        return sq_err_set(err, SQ_EUNSUPPORTED, "--alloc-probe: the runtime has no f32 view of %s", t->name);
    uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1], rows = n / (cols ? cols : 1);
    float *dec = malloc((size_t)n * sizeof *dec);
    if (!dec) return sq_err_set(err, SQ_ENOMEM, "out of memory for tensor %s", t->name);
    sq_encoded enc, *pe = e->cached[j] ? &e->enc[j] : NULL;
    sq_status st = SQ_OK;
    if (!pe) { /* taken from a table, or beyond the cache: encoded again (the same bytes) */
        float *w = malloc((size_t)n * sizeof *w);
        sq_method_note note;
        memset(&note, 0, sizeof note);
        st = w ? sq_method_weights(q, m, t, w, err) : sq_err_set(err, SQ_ENOMEM, "out of memory for tensor %s", t->name);
        const sq_alloc_cand *c = &cands[e->cand[j]];
        if (!st) st = sq_alloc_encode(q, t->name, t, c, w, rows, cols, &enc, &note, err);
        free(w);
        sq_model_release(m, t);
        if (!st) pe = &enc;
    }
    if (!st) {
        sq_tview cv;
        sq_tview_from_encoded(pe, &cv);
        st = sq_decode_mt(&cv, dec, q->n_threads);
        if (st) sq_err_set(err, st, "--alloc-probe: cannot decode %s's candidate", t->name);
        if (pe == &enc) sq_encoded_free(&enc);
    }
    if (!st) {
        const void *keep = v->part[0];
        /* tied embeddings: the output layer's view reads the same storage, and is replaced with it */
        sq_tview *tied = v == &pr->rt.embed && pr->rt.lm_head.part[0] == keep ? &pr->rt.lm_head : NULL;
        v->part[0] = dec;
        if (tied) tied->part[0] = dec;
        double k = 0;
        st = kld_of(pr, NULL, &k, err);
        v->part[0] = keep;
        if (tied) tied->part[0] = keep;
        if (!st) e->kld[j] = k - base > 0 ? k - base : 0;
    }
    free(dec);
    return st;
}

sq_status sq_alloc_probe(const sq_alloc_opts *o, sq_method *q, const sq_model *m, sq_alloc_plan *p,
                         sq_alloc_note_fn note, void *note_ctx, sq_err *err) {
    probe_run pr;
    memset(&pr, 0, sizeof pr);
    int32_t *ids = NULL;
    uint64_t n_ids = 0;
    uint32_t vocab = m->info.vocab_size;
    sq_status st = probe_ids(o, m, vocab, &ids, &n_ids, err);
    if (st) return st;
    uint32_t ctx = SQ_ALLOC_PROBE_CTX;
    if (m->max_seq && m->max_seq < ctx) ctx = m->max_seq;
    if (n_ids / ctx < o->probe_windows) {
        free(ids);
        return sq_err_set(err, SQ_EUSAGE, "--alloc-probe %u: %s has %llu tokens, %llu windows of %u (fewer than asked)",
                          o->probe_windows, o->probe_text ? o->probe_text : o->probe_ids, (unsigned long long)n_ids,
                          (unsigned long long)(n_ids / ctx), ctx);
    }
    pr.ids = ids;
    pr.n_ids = (uint64_t)o->probe_windows * ctx;
    /* the setting that identifies the probes: windows, context, the token ids */
    uint8_t h[32];
    sq_sha256 sh;
    sq_sha256_init(&sh);
    sq_sha256_update(&sh, ids, (size_t)pr.n_ids * sizeof *ids);
    sq_sha256_final(&sh, h);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
    int same = p->probe_windows == o->probe_windows && p->probe_ctx == ctx && !strcmp(p->probe_ids_sha256, hex);
    if (!same) /* a table of another probe setting (or none): its measurements do not apply */
        for (uint32_t i = 0; i < p->n; i++)
            for (int j = 0; j < p->e[i].n; j++) p->e[i].kld[j] = -1;
    p->probe_windows = o->probe_windows;
    p->probe_ctx = ctx;
    memcpy(p->probe_ids_sha256, hex, sizeof hex);
    int todo = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        int pts[2], np = sq_alloc_probe_points(&p->e[i], pts);
        for (int k = 0; k < np; k++) todo += p->e[i].kld[pts[k]] < 0;
    }
    p->probes_run = todo;
    char cache[] = "/tmp/squish-probe-XXXXXX";
    int fd = -1;
    if (todo) {
        const char *tmpdir = getenv("TMPDIR");
        char *path = NULL;
        if (tmpdir && *tmpdir) { /* the reference log-probabilities: N x ctx/2 x vocab f16 */
            size_t len = strlen(tmpdir) + 32;
            if ((path = malloc(len))) snprintf(path, len, "%s/squish-probe-XXXXXX", tmpdir);
        }
        fd = mkstemp(path ? path : cache);
        if (path && fd >= 0) {
            if (strlen(path) < sizeof cache) memcpy(cache, path, strlen(path) + 1);
            else { /* keep the fixed buffer: a long TMPDIR falls back to /tmp */
                close(fd), unlink(path);
                fd = mkstemp(cache);
            }
        }
        free(path);
        if (fd < 0) {
            free(ids);
            return sq_err_set(err, SQ_EIO, "--alloc-probe: cannot create a temporary file: %s", strerror(errno));
        }
        close(fd);
        unlink(cache); /* sq_rt_eval writes it anew (through its own temporary) */
        pr.eo.ctx = ctx;
        pr.eo.max_windows = o->probe_windows;
        pr.eo.second_half = 1;
        pr.eo.n_threads = q->n_threads;
        pr.eo.ref_cache = cache;
        st = sq_rt_load_model(m, &pr.rt, q->n_threads, err);
        if (!st && note) note(note_ctx, "probing", "the unmodified model", 0, todo);
        double zero; /* the reference computed and cached: against itself exactly 0 */
        if (!st) st = kld_of(&pr, &pr.rt, &zero, err);
        /* the unmodified model against the cache: the f16 rounding every probe carries */
        if (!st) st = kld_of(&pr, NULL, &p->probe_baseline, err);
        int done = 0;
        for (uint32_t i = 0; !st && i < p->n; i++) {
            sq_alloc_entry *e = &p->e[i];
            const sq_model_tensor *t = &m->tensors[e->tensor];
            int pts[2], np = sq_alloc_probe_points(e, pts);
            for (int k = 0; !st && k < np; k++) {
                if (e->kld[pts[k]] >= 0) continue;
                if (note) note(note_ctx, "probing", t->name, ++done, todo);
                st = probe_one(&pr, q, m, t, e, p->cands, pts[k], p->probe_baseline, err);
            }
        }
        sq_rt_free(&pr.rt);
        unlink(cache);
    }
    free(ids);
    if (st) return st;
    for (uint32_t i = 0; i < p->n; i++) sq_alloc_probe_fit(&p->e[i]);
    return SQ_OK;
}
