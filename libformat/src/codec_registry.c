/* The codec traits table, scheme strings, ISA dispatch and the generic
 * encode/decode drivers that every codec shares. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>

#include "codecs.h"
#include "squish/codec.h"

static const sq_codec *const registry[] = {
    &sq_codec_f32, &sq_codec_f16, &sq_codec_bf16,
    &sq_codec_int8, &sq_codec_int4, &sq_codec_int3, &sq_codec_int2,
    &sq_codec_nf4,
    &sq_codec_fp8_e4m3, &sq_codec_fp8_e5m2, &sq_codec_fp6_e3m2, &sq_codec_fp6_e2m3, &sq_codec_fp4_e2m1,
    &sq_codec_mxfp8_e4m3, &sq_codec_mxfp8_e5m2, &sq_codec_mxfp6_e3m2, &sq_codec_mxfp6_e2m3, &sq_codec_mxfp4,
    NULL};

const sq_codec *const *sq_codec_list(void) { return registry; }

const sq_codec *sq_codec_by_id(uint32_t id) {
    for (int i = 0; registry[i]; i++)
        if (registry[i]->id == id) return registry[i];
    return NULL;
}

const sq_codec *sq_codec_by_name(const char *name) {
    for (int i = 0; registry[i]; i++)
        if (!strcmp(registry[i]->name, name)) return registry[i];
    return NULL;
}

uint64_t sq_codec_technique_flags(uint32_t id) {
    const sq_codec *c = sq_codec_by_id(id);
    return c ? c->technique_flag : 0;
}

/* ---------------- ISA selection ---------------- */
const char *sq_isa_name(sq_isa isa) {
    static const char *const n[] = {"portable", "avx2", "avx512"};
    return isa < SQ_ISA_COUNT ? n[isa] : "?";
}

/* CPU features and SQUISH_ISA are read once per process: dispatch happens on
 * every kernel call (dozens per decoded token). */
static int isa_ok[SQ_ISA_COUNT];
static sq_isa isa_active;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

static void isa_probe(void) {
    isa_ok[SQ_ISA_PORTABLE] = 1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* every AVX2 CPU also has F16C, which the AVX2 kernels use (clang cannot test it here) */
    isa_ok[SQ_ISA_AVX2] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    isa_ok[SQ_ISA_AVX512] = isa_ok[SQ_ISA_AVX2] && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
    sq_isa best = SQ_ISA_PORTABLE;
    for (int i = SQ_ISA_COUNT - 1; i > 0; i--)
        if (isa_ok[i]) { best = (sq_isa)i; break; }
    const char *e = getenv("SQUISH_ISA");
    if (e && *e)
        for (int i = 0; i < SQ_ISA_COUNT; i++)
            if (!strcmp(e, sq_isa_name((sq_isa)i)) && i < (int)best) best = (sq_isa)i;
    isa_active = best;
}

int sq_isa_supported(sq_isa isa) {
    pthread_once(&isa_once, isa_probe);
    return isa < SQ_ISA_COUNT && isa_ok[isa];
}

sq_isa sq_isa_active(void) {
    pthread_once(&isa_once, isa_probe);
    return isa_active;
}

sq_decode_fn sq_decode_for(const sq_codec *c, sq_isa isa) {
    for (int i = (int)isa; i > 0; i--)
        if (c->decode[i] && sq_isa_supported((sq_isa)i)) return c->decode[i];
    return c->decode[SQ_ISA_PORTABLE];
}

sq_gemv_fn sq_gemv_for(const sq_codec *c, sq_isa isa) {
    for (int i = (int)isa; i > 0; i--)
        if (c->gemv[i] && sq_isa_supported((sq_isa)i)) return c->gemv[i];
    return c->gemv[SQ_ISA_PORTABLE];
}

sq_gemv_q8_fn sq_gemv_q8_for(const sq_codec *c, sq_isa isa) {
    for (int i = (int)isa; i > 0; i--)
        if (c->gemv_q8[i] && sq_isa_supported((sq_isa)i)) return c->gemv_q8[i];
    return c->gemv_q8[SQ_ISA_PORTABLE];
}

sq_status sq_act_q8_init(sq_act_q8 *a, const float *x, uint64_t n, sq_err *err) {
    memset(a, 0, sizeof *a);
    a->n = n;
    a->nblocks = (n + 31) / 32;
    a->q = aligned_alloc(64, (size_t)(a->nblocks * 32 + 63) / 64 * 64);
    a->d = malloc((size_t)a->nblocks * sizeof(float));
    a->sum = malloc((size_t)a->nblocks * sizeof(int32_t));
    if (!a->q || !a->d || !a->sum) {
        sq_act_q8_free(a);
        return sq_err_set(err, SQ_ENOMEM, "out of memory for a quantized activation of %llu values", (unsigned long long)n);
    }
    for (uint64_t b = 0; b < a->nblocks; b++) {
        uint64_t i0 = b * 32, i1 = i0 + 32 < n ? i0 + 32 : n;
        float amax = 0;
        for (uint64_t i = i0; i < i1; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        float d = amax / 127.0f;
        int32_t s = 0;
        for (uint64_t i = i0; i < i0 + 32; i++) {
            int q = (i < i1 && d > 0) ? (int)nearbyintf(x[i] / d) : 0;
            a->q[i] = (int8_t)q;
            s += q;
        }
        a->d[b] = d;
        a->sum[b] = s;
    }
    return SQ_OK;
}

void sq_act_q8_free(sq_act_q8 *a) {
    free(a->q);
    free(a->d);
    free(a->sum);
    a->q = NULL;
    a->d = NULL;
    a->sum = NULL;
}

void sq_xform_input(const sq_tview *t, const float *x, uint64_t T, float *xs) {
    const uint64_t K = t->cols;
    for (uint64_t r = 0; r < T; r++) {
        const float *xr = x + r * K;
        float *o = xs + r * K;
        for (uint64_t j = 0; j < K; j++) {
            float v = t->perm ? xr[t->perm[j]] : xr[j];
            o[j] = t->in_scale ? v / t->in_scale[j] : v;
        }
    }
}

/* Rows decoded in stored order, put back in original column order. */
static void unxform_rows(const sq_tview *t, uint64_t n, float *out) {
    const uint64_t K = t->cols;
    float *tmp = malloc(K * sizeof(float));
    if (!tmp) abort(); /* one row: not recoverable */
    for (uint64_t r = 0; r < n; r++) {
        float *o = out + r * K;
        memcpy(tmp, o, K * sizeof(float));
        for (uint64_t j = 0; j < K; j++) {
            float v = t->in_scale ? tmp[j] / t->in_scale[j] : tmp[j];
            o[t->perm ? t->perm[j] : j] = v;
        }
    }
    free(tmp);
}

void sq_decode_rows(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    sq_decode_for(t->codec, sq_isa_active())(t, r0, r1, out);
    if (sq_tview_has_xform(t)) unxform_rows(t, r1 - r0, out);
}

void sq_gemv(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    if (!sq_tview_has_xform(t)) {
        sq_gemv_for(t->codec, sq_isa_active())(t, x, y, r0, r1);
        return;
    }
    float *xs = malloc(t->cols * sizeof(float));
    if (!xs) abort();
    sq_xform_input(t, x, 1, xs);
    sq_gemv_for(t->codec, sq_isa_active())(t, xs, y, r0, r1);
    free(xs);
}

/* ---------------- threads ---------------- */
int sq_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

typedef struct pf_job {
    void (*fn)(void *, uint64_t, uint64_t);
    void *ctx;
    uint64_t i0, i1;
} pf_job;

static void *pf_run(void *arg) {
    pf_job *j = arg;
    j->fn(j->ctx, j->i0, j->i1);
    return NULL;
}

/* Spawns a thread per chunk: used when the pool is busy or from inside a
 * pool worker (nested parallel loops). */
static void parallel_spawn(int n_threads, uint64_t n, void (*fn)(void *, uint64_t, uint64_t), void *ctx) {
    pf_job jobs[256];
    pthread_t th[256];
    int started[256] = {0};
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (pf_job){fn, ctx, n * (uint64_t)i / (uint64_t)n_threads, n * (uint64_t)(i + 1) / (uint64_t)n_threads};
        if (i > 0) started[i] = pthread_create(&th[i], NULL, pf_run, &jobs[i]) == 0;
    }
    pf_run(&jobs[0]);
    for (int i = 1; i < n_threads; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        else pf_run(&jobs[i]); /* could not start a thread: do the work here */
    }
}

/* A pool of persistent workers, so that the many short loops of token-by-
 * token decoding do not pay for thread creation. A loop is cut into the
 * same chunks as parallel_spawn would use, and each chunk runs on one
 * thread, so results do not depend on which thread takes which chunk. */
static struct {
    pthread_mutex_t mu, submit;
    pthread_cond_t work, done;
    int workers;
    uint64_t generation;
    void (*fn)(void *, uint64_t, uint64_t);
    void *ctx;
    uint64_t n;
    int parts, next, finished;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
          0, 0, NULL, NULL, 0, 0, 0, 0};
static __thread int in_pool_worker;

/* Takes and runs chunks of the current loop until none is left (pool.mu held on entry and exit). */
static void pool_drain(void) {
    while (pool.next < pool.parts) {
        int i = pool.next++;
        void (*fn)(void *, uint64_t, uint64_t) = pool.fn;
        void *ctx = pool.ctx;
        uint64_t n = pool.n, parts = (uint64_t)pool.parts;
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, n * (uint64_t)i / parts, n * (uint64_t)(i + 1) / parts);
        pthread_mutex_lock(&pool.mu);
        if (++pool.finished == pool.parts) pthread_cond_signal(&pool.done);
    }
}

static void *pool_worker(void *arg) {
    (void)arg;
    in_pool_worker = 1;
    pthread_mutex_lock(&pool.mu);
    uint64_t seen = pool.generation;
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.work, &pool.mu);
        seen = pool.generation;
        pool_drain();
    }
    return NULL;
}

void sq_parallel_for(int n_threads, uint64_t n, void (*fn)(void *, uint64_t, uint64_t), void *ctx) {
    if (n_threads < 1) n_threads = 1;
    if ((uint64_t)n_threads > n) n_threads = n ? (int)n : 1;
    if (n_threads > 256) n_threads = 256;
    if (n_threads == 1) {
        if (n) fn(ctx, 0, n);
        return;
    }
    if (in_pool_worker || pthread_mutex_trylock(&pool.submit) != 0) {
        parallel_spawn(n_threads, n, fn, ctx);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    while (pool.workers < n_threads - 1) { /* grow on demand; workers live until exit */
        pthread_t t;
        if (pthread_create(&t, NULL, pool_worker, NULL) != 0) break;
        pthread_detach(t);
        pool.workers++;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.parts = n_threads;
    pool.next = pool.finished = 0;
    pool.generation++;
    pthread_cond_broadcast(&pool.work);
    pool_drain(); /* the caller works too; with no workers it does everything */
    while (pool.finished < pool.parts) pthread_cond_wait(&pool.done, &pool.mu);
    pool.fn = NULL;
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&pool.submit);
}

/* ---------------- scheme strings ---------------- */
static uint32_t group_bit(uint32_t g) {
    switch (g) {
    case SQ_GROUP_ROW: return SQ_GROUPOK_ROW;
    case SQ_GROUP_TENSOR: return SQ_GROUPOK_TENSOR;
    case 32: return SQ_GROUPOK_32;
    case 64: return SQ_GROUPOK_64;
    case 128: return SQ_GROUPOK_128;
    case 256: return SQ_GROUPOK_256;
    default: return 0;
    }
}

static int codec_has_asym(const sq_codec *c) { return c->id >= SQ_CODEC_INT8 && c->id <= SQ_CODEC_INT2; }
static int codec_has_scale_dtype(const sq_codec *c) {
    return (c->id >= SQ_CODEC_INT8 && c->id <= SQ_CODEC_INT2) || (c->id >= SQ_CODEC_FP8_E4M3 && c->id <= SQ_CODEC_FP4_E2M1);
}

sq_status sq_scheme_parse(const char *s, const sq_codec **codec, uint32_t params[SQ_NPARAMS], sq_err *err) {
    char buf[128];
    if (!s || strlen(s) >= sizeof buf) return sq_err_set(err, SQ_EUSAGE, "scheme: empty or too long");
    strcpy(buf, s);
    char *save = NULL;
    char *tok = strtok_r(buf, ":", &save);
    const sq_codec *c = tok ? sq_codec_by_name(tok) : NULL;
    if (!c) return sq_err_set(err, SQ_EUSAGE, "scheme '%s': unknown codec '%s' (see squish-quantize --list-schemes)", s,
                              tok ? tok : "");
    memset(params, 0, sizeof(uint32_t) * SQ_NPARAMS);
    params[SQ_P_GROUP] = c->default_group;
    params[SQ_P_SCALE_DTYPE] = codec_has_scale_dtype(c) ? (c->default_group == SQ_GROUP_TENSOR ? SQ_DT_F32 : SQ_DT_F16) : 0;
    int saw_group = 0, saw_sym = 0, saw_scale = 0;
    while ((tok = strtok_r(NULL, ":", &save))) {
        if (tok[0] == 'g' && isdigit((unsigned char)tok[1])) {
            char *end;
            unsigned long g = strtoul(tok + 1, &end, 10);
            if (*end || !group_bit((uint32_t)g) || g == 0)
                return sq_err_set(err, SQ_EUSAGE, "scheme '%s': group '%s' must be g32, g64, g128 or g256", s, tok);
            params[SQ_P_GROUP] = (uint32_t)g;
            saw_group++;
        } else if (!strcmp(tok, "pc")) {
            params[SQ_P_GROUP] = SQ_GROUP_ROW;
            saw_group++;
        } else if (!strcmp(tok, "pt")) {
            params[SQ_P_GROUP] = SQ_GROUP_TENSOR;
            saw_group++;
        } else if (!strcmp(tok, "sym") || !strcmp(tok, "asym")) {
            if (!codec_has_asym(c)) return sq_err_set(err, SQ_EUSAGE, "scheme '%s': %s applies to int codecs only", s, tok);
            if (tok[0] == 'a') params[SQ_P_FLAGS] |= SQ_PF_ASYM;
            saw_sym++;
        } else if (!strcmp(tok, "dq")) {
            if (c->id != SQ_CODEC_NF4) return sq_err_set(err, SQ_EUSAGE, "scheme '%s': dq applies to nf4 only", s);
            params[SQ_P_FLAGS] |= SQ_PF_DQ;
        } else if (!strcmp(tok, "s16") || !strcmp(tok, "sbf16") || !strcmp(tok, "s32")) {
            if (!codec_has_scale_dtype(c))
                return sq_err_set(err, SQ_EUSAGE, "scheme '%s': %s does not apply to %s", s, tok, c->name);
            params[SQ_P_SCALE_DTYPE] = !strcmp(tok, "s16") ? SQ_DT_F16 : !strcmp(tok, "sbf16") ? SQ_DT_BF16 : SQ_DT_F32;
            saw_scale++;
        } else {
            return sq_err_set(err, SQ_EUSAGE, "scheme '%s': unknown option '%s'", s, tok);
        }
    }
    if (saw_group > 1 || saw_sym > 1 || saw_scale > 1)
        return sq_err_set(err, SQ_EUSAGE, "scheme '%s': an option is given twice", s);
    if (saw_group && !(c->group_ok & group_bit(params[SQ_P_GROUP])))
        return sq_err_set(err, SQ_EUSAGE, "scheme '%s': codec %s does not take that grouping", s, c->name);
    if (!saw_scale && params[SQ_P_GROUP] == SQ_GROUP_TENSOR && codec_has_scale_dtype(c))
        params[SQ_P_SCALE_DTYPE] = SQ_DT_F32;
    *codec = c;
    return SQ_OK;
}

void sq_scheme_format(const sq_codec *c, const uint32_t p[SQ_NPARAMS], char *out, size_t n) {
    size_t k = (size_t)snprintf(out, n, "%s", c->name);
    int plain = (c->group_ok & SQ_GROUPOK_NONE) || (c->id >= SQ_CODEC_MXFP8_E4M3 && c->id <= SQ_CODEC_MXFP4);
    if (plain) {
        if (k < n && (p[SQ_P_XFORM] & SQ_XF_PERM)) k += (size_t)snprintf(out + k, n - k, "+perm");
        if (k < n && (p[SQ_P_XFORM] & SQ_XF_IN_SCALE)) snprintf(out + k, n - k, "+in_scale");
        return;
    }
    if (k < n) {
        if (p[SQ_P_GROUP] == SQ_GROUP_ROW) k += (size_t)snprintf(out + k, n - k, ":pc");
        else if (p[SQ_P_GROUP] == SQ_GROUP_TENSOR) k += (size_t)snprintf(out + k, n - k, ":pt");
        else k += (size_t)snprintf(out + k, n - k, ":g%u", p[SQ_P_GROUP]);
    }
    if (k < n && codec_has_asym(c)) k += (size_t)snprintf(out + k, n - k, (p[SQ_P_FLAGS] & SQ_PF_ASYM) ? ":asym" : ":sym");
    if (k < n && (p[SQ_P_FLAGS] & SQ_PF_DQ)) k += (size_t)snprintf(out + k, n - k, ":dq");
    if (k < n && codec_has_scale_dtype(c) && p[SQ_P_SCALE_DTYPE] != SQ_DT_F16)
        k += (size_t)snprintf(out + k, n - k, p[SQ_P_SCALE_DTYPE] == SQ_DT_BF16 ? ":sbf16" : ":s32");
    /* input transforms are made by GPTQ/AWQ, not chosen in a scheme; shown after '+' */
    if (k < n && (p[SQ_P_XFORM] & SQ_XF_PERM)) k += (size_t)snprintf(out + k, n - k, "+perm");
    if (k < n && (p[SQ_P_XFORM] & SQ_XF_IN_SCALE)) snprintf(out + k, n - k, "+in_scale");
}

/* ---------------- shapes, layouts, encode driver ---------------- */
void sq_tensor_matrix(const sq_tensor *t, uint64_t *rows, uint64_t *cols) {
    uint64_t r = 1;
    for (uint32_t i = 0; i + 1 < t->ndim; i++) r *= t->dims[i];
    *rows = r;
    *cols = t->dims[t->ndim - 1];
}

uint64_t sq_part_spec_bytes(const sq_part_spec *s) {
    uint64_t b = sq_dtype_size(s->dtype);
    for (uint32_t i = 0; i < s->ndim; i++) b *= s->dims[i];
    return b;
}

int sq_layout(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols, sq_part_spec *out) {
    int n = c->layout(params, rows, cols, out);
    if (params[SQ_P_XFORM] & SQ_XF_PERM) out[n++] = (sq_part_spec){"perm", SQ_DT_U32, 1, {cols}, 0};
    if (params[SQ_P_XFORM] & SQ_XF_IN_SCALE) out[n++] = (sq_part_spec){"in_scale", SQ_DT_F32, 1, {cols}, 0};
    return n;
}

double sq_layout_bpw(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols) {
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = sq_layout(c, params, rows, cols, sp);
    double bits = 0;
    for (int i = 0; i < n; i++)
        if (!sp[i].scratch) bits += 8.0 * (double)sq_part_spec_bytes(&sp[i]);
    return rows && cols ? bits / ((double)rows * (double)cols) : 0.0;
}

/* Validates params for a codec (shared by encode and by reading files). */
static sq_status check_params(const sq_codec *c, const uint32_t *p, sq_err *err, const char *who) {
    if (!(c->group_ok & SQ_GROUPOK_NONE) && !(c->group_ok & group_bit(p[SQ_P_GROUP])))
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: group size %u is not allowed", who, c->name, p[SQ_P_GROUP]);
    if (codec_has_scale_dtype(c) && p[SQ_P_SCALE_DTYPE] != SQ_DT_F16 && p[SQ_P_SCALE_DTYPE] != SQ_DT_BF16 &&
        p[SQ_P_SCALE_DTYPE] != SQ_DT_F32)
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: scale dtype %u is not f16/bf16/f32", who, c->name,
                          p[SQ_P_SCALE_DTYPE]);
    uint32_t allowed = (codec_has_asym(c) ? SQ_PF_ASYM : 0) | (c->id == SQ_CODEC_NF4 ? SQ_PF_DQ : 0);
    if (p[SQ_P_FLAGS] & ~allowed)
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: flags 0x%x not allowed", who, c->name, p[SQ_P_FLAGS]);
    if (!codec_has_scale_dtype(c) && p[SQ_P_SCALE_DTYPE])
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: params[2] must be 0", who, c->name);
    if (p[SQ_P_XFORM] & ~(uint32_t)(SQ_XF_PERM | SQ_XF_IN_SCALE))
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: input transform flags 0x%x are not known", who, c->name,
                          p[SQ_P_XFORM]);
    for (int i = 4; i < SQ_NPARAMS; i++)
        if (p[i]) return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: params[%d] must be 0", who, c->name, i);
    return SQ_OK;
}

typedef struct enc_ctx {
    const sq_codec *c;
    const uint32_t *params;
    const float *w;
    uint64_t rows, cols;
    void *const *parts;
} enc_ctx;

static void enc_chunk(void *ctx, uint64_t r0, uint64_t r1) {
    enc_ctx *e = ctx;
    e->c->encode_rows(e->params, e->w, e->rows, e->cols, r0, r1, e->parts);
}

void sq_encoded_free(sq_encoded *e) {
    for (int i = 0; i < SQ_CODEC_MAX_PARTS; i++) {
        free(e->data[i]);
        e->data[i] = NULL;
    }
}

sq_status sq_encoded_alloc(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols,
                           sq_encoded *out, sq_err *err) {
    memset(out, 0, sizeof *out);
    sq_err perr;
    if (check_params(c, params, &perr, "encode")) return sq_err_set(err, SQ_EUSAGE, "%s", perr.msg);
    if (!rows || !cols) return sq_err_set(err, SQ_EUSAGE, "encode: zero-size tensor (%llu x %llu)",
                                          (unsigned long long)rows, (unsigned long long)cols);
    out->codec = c;
    memcpy(out->params, params, sizeof out->params);
    out->rows = rows;
    out->cols = cols;
    out->nparts = sq_layout(c, params, rows, cols, out->spec);
    for (int i = 0; i < out->nparts; i++) {
        out->bytes[i] = sq_part_spec_bytes(&out->spec[i]);
        out->data[i] = calloc(out->bytes[i] ? (size_t)out->bytes[i] : 1, 1);
        if (!out->data[i]) {
            sq_encoded_free(out);
            return sq_err_set(err, SQ_ENOMEM, "encode: cannot allocate %llu bytes for part %s",
                              (unsigned long long)out->bytes[i], out->spec[i].name);
        }
    }
    return SQ_OK;
}

sq_status sq_encoded_set_xform(sq_encoded *e, const uint32_t *perm, const float *in_scale, sq_err *err) {
    if (e->params[SQ_P_XFORM]) return sq_err_set(err, SQ_EUSAGE, "encode: tensor already has an input transform");
    uint32_t p[SQ_NPARAMS];
    memcpy(p, e->params, sizeof p);
    p[SQ_P_XFORM] = (perm ? SQ_XF_PERM : 0) | (in_scale ? SQ_XF_IN_SCALE : 0);
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = sq_layout(e->codec, p, e->rows, e->cols, sp);
    for (int i = e->nparts; i < n; i++) {
        uint64_t b = sq_part_spec_bytes(&sp[i]);
        void *d = malloc((size_t)b);
        if (!d) return sq_err_set(err, SQ_ENOMEM, "encode: out of memory for part %s", sp[i].name);
        memcpy(d, !strcmp(sp[i].name, "perm") ? (const void *)perm : (const void *)in_scale, (size_t)b);
        e->spec[i] = sp[i];
        e->data[i] = d;
        e->bytes[i] = b;
    }
    e->nparts = n;
    memcpy(e->params, p, sizeof p);
    return SQ_OK;
}

sq_status sq_encode(const sq_codec *c, const uint32_t params[SQ_NPARAMS], const float *w, uint64_t rows, uint64_t cols,
                    int n_threads, sq_encoded *out, sq_err *err) {
    if (params[SQ_P_XFORM])
        return sq_err_set(err, SQ_EUSAGE, "encode: input transforms come from sq_encoded_set_xform, not the encoder");
    sq_status st = sq_encoded_alloc(c, params, rows, cols, out, err);
    if (st) return st;
    if (c->prepare) c->prepare(params, w, rows, cols, out->data);
    enc_ctx e = {c, params, w, rows, cols, out->data};
    sq_parallel_for(n_threads, rows, enc_chunk, &e);
    if (c->finalize) c->finalize(params, rows, cols, out->data);
    return SQ_OK;
}

void sq_tview_from_encoded(const sq_encoded *e, sq_tview *v) {
    memset(v, 0, sizeof *v);
    v->codec = e->codec;
    memcpy(v->params, e->params, sizeof v->params);
    v->rows = e->rows;
    v->cols = e->cols;
    for (int i = 0; i < e->nparts; i++) {
        v->part[i] = e->data[i];
        if (!strcmp(e->spec[i].name, "perm") && (e->params[SQ_P_XFORM] & SQ_XF_PERM)) v->perm = e->data[i];
        if (!strcmp(e->spec[i].name, "in_scale") && (e->params[SQ_P_XFORM] & SQ_XF_IN_SCALE)) v->in_scale = e->data[i];
    }
}

sq_status sq_codec_check_tensor(const sq_file *f, const sq_tensor *t, sq_err *err) {
    const char *path = sq_file_path(f);
    const sq_codec *c = sq_codec_by_id(t->codec);
    if (!c) return sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s: codec id %u is not known to this reader", path,
                              t->name, t->codec);
    char who[SQ_MAX_NAME + 256];
    snprintf(who, sizeof who, "%s: tensor %s (index byte %llu)", path, t->name, (unsigned long long)t->rec_offset);
    sq_status st = check_params(c, t->params, err, who);
    if (st) return st;
    uint64_t rows, cols;
    sq_tensor_matrix(t, &rows, &cols);
    if (!rows || !cols) return sq_err_set(err, SQ_ECORRUPT, "%s: zero-size shape", who);
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = sq_layout(c, t->params, rows, cols, sp), stored = 0;
    for (int i = 0; i < n; i++) {
        if (sp[i].scratch) continue;
        stored++;
        const sq_part *p = sq_tensor_part(t, sp[i].name);
        if (!p) return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s needs part '%s', which is missing", who, c->name, sp[i].name);
        int same = p->dtype == sp[i].dtype && p->ndim == sp[i].ndim;
        for (uint32_t k = 0; same && k < p->ndim; k++) same = p->dims[k] == sp[i].dims[k];
        if (!same)
            return sq_err_set(err, SQ_ECORRUPT, "%s: part '%s' (record at byte %llu) has dtype %s and a shape that do not match codec %s",
                              who, sp[i].name, (unsigned long long)p->rec_offset, sq_dtype_name(p->dtype), c->name);
    }
    if ((uint32_t)stored != t->n_parts)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %u parts stored but codec %s defines %d", who, t->n_parts, c->name, stored);
    return SQ_OK;
}

sq_status sq_tview_open(const sq_file *f, const sq_tensor *t, int skip_checksum, sq_tview *v,
                        void *owned[SQ_CODEC_MAX_PARTS], sq_err *err) {
    memset(v, 0, sizeof *v);
    for (int i = 0; i < SQ_CODEC_MAX_PARTS; i++) owned[i] = NULL;
    sq_status st = sq_codec_check_tensor(f, t, err);
    if (st) return st;
    const sq_codec *c = sq_codec_by_id(t->codec);
    v->codec = c;
    memcpy(v->params, t->params, sizeof v->params);
    sq_tensor_matrix(t, &v->rows, &v->cols);
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = sq_layout(c, t->params, v->rows, v->cols, sp);
    for (int i = 0; i < n; i++) {
        if (sp[i].scratch) continue;
        const void *ptr;
        st = sq_part_read(f, sq_tensor_part(t, sp[i].name), skip_checksum, &ptr, &owned[i], err);
        if (st) break;
        v->part[i] = ptr;
        if (!strcmp(sp[i].name, "perm") && (t->params[SQ_P_XFORM] & SQ_XF_PERM)) v->perm = ptr;
        if (!strcmp(sp[i].name, "in_scale") && (t->params[SQ_P_XFORM] & SQ_XF_IN_SCALE)) v->in_scale = ptr;
    }
    if (!st) st = sq_tview_check_values(f, t, v, err);
    if (st)
        for (int k = 0; k < SQ_CODEC_MAX_PARTS; k++) { free(owned[k]); owned[k] = NULL; }
    return st;
}

typedef struct mt_ctx {
    const sq_tview *t;
    const float *x;
    float *y;
    sq_decode_fn dec;
    sq_gemv_fn gemv;
} mt_ctx;

static void dec_chunk(void *ctx, uint64_t r0, uint64_t r1) {
    mt_ctx *m = ctx;
    m->dec(m->t, r0, r1, m->y + r0 * m->t->cols);
    if (sq_tview_has_xform(m->t)) unxform_rows(m->t, r1 - r0, m->y + r0 * m->t->cols);
}

static void gemv_chunk(void *ctx, uint64_t r0, uint64_t r1) {
    mt_ctx *m = ctx;
    m->gemv(m->t, m->x, m->y, r0, r1);
}

void sq_decode_mt(const sq_tview *t, float *out, int n_threads) {
    mt_ctx m = {t, NULL, out, sq_decode_for(t->codec, sq_isa_active()), NULL};
    sq_parallel_for(n_threads, t->rows, dec_chunk, &m);
}

void sq_gemv_mt(const sq_tview *t, const float *x, float *y, int n_threads) {
    float *xs = NULL;
    if (sq_tview_has_xform(t)) {
        if (!(xs = malloc(t->cols * sizeof(float)))) abort();
        sq_xform_input(t, x, 1, xs);
    }
    mt_ctx m = {t, xs ? xs : x, y, NULL, sq_gemv_for(t->codec, sq_isa_active())};
    sq_parallel_for(n_threads, t->rows, gemv_chunk, &m);
    free(xs);
}
