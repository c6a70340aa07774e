/* GGUF version 3 writer (gguf_write.h). */
#include "gguf_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/fileio.h"

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    int failed;
} buf;

static void put(buf *b, const void *data, size_t n) {
    if (b->failed) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put_u32(buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

static void put_u64(buf *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 8);
}

static void put_f32(buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}

static void put_str(buf *b, const char *s, size_t n) {
    put_u64(b, n);
    put(b, s, n);
}

struct sq_gguf_writer {
    buf kv, info;
    uint64_t n_kv, n_tensors;
    uint64_t *sizes; /* planned bytes of each tensor */
    uint64_t data_size, next, written;
    sq_tmpout out;
    FILE *fp;
};

sq_gguf_writer *sq_gguf_writer_new(void) {
    sq_gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->out.slot = -1;
    return w;
}

void sq_gguf_writer_free(sq_gguf_writer *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp);
    if (w->out.tmp) sq_tmpout_abort(&w->out);
    free(w->kv.p);
    free(w->info.p);
    free(w->sizes);
    free(w);
}

static sq_status kv_done(sq_gguf_writer *w, sq_err *err) {
    w->n_kv++;
    return w->kv.failed ? sq_err_set(err, SQ_ENOMEM, "out of memory for the GGUF metadata") : SQ_OK;
}

static void kv_key(sq_gguf_writer *w, const char *key, uint32_t type) {
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, type);
}

sq_status sq_gguf_kv_str(sq_gguf_writer *w, const char *key, const char *value, sq_err *err) {
    kv_key(w, key, SQ_GGUF_STRING);
    put_str(&w->kv, value, strlen(value));
    return kv_done(w, err);
}

sq_status sq_gguf_kv_u32(sq_gguf_writer *w, const char *key, uint32_t value, sq_err *err) {
    kv_key(w, key, SQ_GGUF_U32);
    put_u32(&w->kv, value);
    return kv_done(w, err);
}

sq_status sq_gguf_kv_f32(sq_gguf_writer *w, const char *key, float value, sq_err *err) {
    kv_key(w, key, SQ_GGUF_F32);
    put_f32(&w->kv, value);
    return kv_done(w, err);
}

sq_status sq_gguf_kv_bool(sq_gguf_writer *w, const char *key, int value, sq_err *err) {
    kv_key(w, key, SQ_GGUF_BOOL);
    uint8_t v = value ? 1 : 0;
    put(&w->kv, &v, 1);
    return kv_done(w, err);
}

static void arr_head(sq_gguf_writer *w, const char *key, uint32_t elem, uint64_t n) {
    kv_key(w, key, SQ_GGUF_ARRAY);
    put_u32(&w->kv, elem);
    put_u64(&w->kv, n);
}

sq_status sq_gguf_kv_strs(sq_gguf_writer *w, const char *key, const char *const *s, const size_t *len, uint64_t n,
                          sq_err *err) {
    arr_head(w, key, SQ_GGUF_STRING, n);
    for (uint64_t i = 0; i < n; i++) put_str(&w->kv, s[i], len[i]);
    return kv_done(w, err);
}

sq_status sq_gguf_kv_i32s(sq_gguf_writer *w, const char *key, const int32_t *v, uint64_t n, sq_err *err) {
    arr_head(w, key, SQ_GGUF_I32, n);
    for (uint64_t i = 0; i < n; i++) put_u32(&w->kv, (uint32_t)v[i]);
    return kv_done(w, err);
}

sq_status sq_gguf_kv_f32s(sq_gguf_writer *w, const char *key, const float *v, uint64_t n, sq_err *err) {
    arr_head(w, key, SQ_GGUF_F32, n);
    for (uint64_t i = 0; i < n; i++) put_f32(&w->kv, v[i]);
    return kv_done(w, err);
}

static uint64_t pad_to(uint64_t n) { return (n + SQ_GGUF_ALIGNMENT - 1) / SQ_GGUF_ALIGNMENT * SQ_GGUF_ALIGNMENT; }

sq_status sq_gguf_plan_tensor(sq_gguf_writer *w, const char *name, uint32_t ndim, const uint64_t *ne, uint32_t type,
                              uint64_t nbytes, sq_err *err) {
    if (w->fp) return sq_err_set(err, SQ_EINTERNAL, "GGUF writer: tensor %s planned after the data began", name);
    uint64_t *s = realloc(w->sizes, (w->n_tensors + 1) * sizeof *s);
    if (!s) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    w->sizes = s;
    s[w->n_tensors++] = nbytes;
    put_str(&w->info, name, strlen(name));
    put_u32(&w->info, ndim);
    for (uint32_t i = 0; i < ndim; i++) put_u64(&w->info, ne[i]);
    put_u32(&w->info, type);
    put_u64(&w->info, w->data_size);
    w->data_size += pad_to(nbytes);
    return w->info.failed ? sq_err_set(err, SQ_ENOMEM, "out of memory for the GGUF tensor infos") : SQ_OK;
}

static uint64_t header_bytes(const sq_gguf_writer *w) { return 4 + 4 + 8 + 8 + w->kv.n + w->info.n; }

uint64_t sq_gguf_file_size(const sq_gguf_writer *w) { return pad_to(header_bytes(w)) + w->data_size; }

static sq_status write_or_fail(sq_gguf_writer *w, const void *p, size_t n, sq_err *err) {
    if (n && fwrite(p, 1, n, w->fp) != n) return sq_err_set(err, SQ_EIO, "%s: write failed (disk full?)", w->out.path);
    return SQ_OK;
}

static sq_status write_zeros(sq_gguf_writer *w, uint64_t n, sq_err *err) {
    static const uint8_t zero[SQ_GGUF_ALIGNMENT];
    return write_or_fail(w, zero, (size_t)n, err);
}

sq_status sq_gguf_begin(sq_gguf_writer *w, const char *path, sq_err *err) {
    sq_status st = sq_tmpout_create(&w->out, path, err);
    if (st) return st;
    if (!(w->fp = fopen(w->out.tmp, "wb"))) return sq_err_set(err, SQ_EIO, "%s: cannot open for writing", w->out.tmp);
    buf h = {0};
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, w->n_tensors);
    put_u64(&h, w->n_kv);
    if (h.failed) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    st = write_or_fail(w, h.p, h.n, err);
    free(h.p);
    if (!st) st = write_or_fail(w, w->kv.p, w->kv.n, err);
    if (!st) st = write_or_fail(w, w->info.p, w->info.n, err);
    if (!st) st = write_zeros(w, pad_to(header_bytes(w)) - header_bytes(w), err);
    return st;
}

sq_status sq_gguf_write_tensor(sq_gguf_writer *w, const void *data, uint64_t nbytes, sq_err *err) {
    if (!w->fp || w->next >= w->n_tensors || w->sizes[w->next] != nbytes)
        return sq_err_set(err, SQ_EINTERNAL, "GGUF writer: tensor %llu is not the planned %llu bytes",
                          (unsigned long long)w->next, (unsigned long long)nbytes);
    sq_status st = write_or_fail(w, data, (size_t)nbytes, err);
    if (!st) st = write_zeros(w, pad_to(nbytes) - nbytes, err);
    w->next++;
    return st;
}

sq_status sq_gguf_commit(sq_gguf_writer *w, sq_err *err) {
    if (!w->fp || w->next != w->n_tensors)
        return sq_err_set(err, SQ_EINTERNAL, "GGUF writer: %llu of %llu tensors written", (unsigned long long)w->next,
                          (unsigned long long)w->n_tensors);
    int bad = fflush(w->fp) != 0;
    bad |= fclose(w->fp) != 0;
    w->fp = NULL;
    if (bad) return sq_err_set(err, SQ_EIO, "%s: write failed (disk full?)", w->out.path);
    return sq_tmpout_commit(&w->out, err); /* clears w->out, also on failure */
}
