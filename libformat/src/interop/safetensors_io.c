/* The safetensors container for the GPTQ/AWQ interop (see safetensors_io.h). */
#include "interop/safetensors_io.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/json_util.h"

#define MAX_HEADER (100u << 20) /* the limit of the reference implementation */

static const struct {
    const char *name;
    uint32_t size, dtype;
} st_types[] = {{"F64", 8, SQ_DT_F64},  {"F32", 4, SQ_DT_F32}, {"F16", 2, SQ_DT_F16},  {"BF16", 2, SQ_DT_BF16},
                {"I64", 8, SQ_DT_I64},  {"I32", 4, SQ_DT_I32}, {"I16", 2, SQ_DT_I16},  {"I8", 1, SQ_DT_I8},
                {"U64", 8, SQ_DT_U64},  {"U32", 4, SQ_DT_U32}, {"U16", 2, SQ_DT_U16},  {"U8", 1, SQ_DT_U8},
                {"BOOL", 1, SQ_DT_INVALID}, {"F8_E4M3", 1, SQ_DT_INVALID}, {"F8_E5M2", 1, SQ_DT_INVALID}};

static int st_type(const char *s) {
    for (size_t i = 0; i < sizeof st_types / sizeof st_types[0]; i++)
        if (!strcmp(s, st_types[i].name)) return (int)i;
    return -1;
}

sq_status sq_st_parse(sq_st_set *s, const char *path, const uint8_t *map, uint64_t size, int file, sq_err *err) {
    if (size < 8) return sq_err_set(err, SQ_ECORRUPT, "%s: truncated: the 8-byte header length is missing", path);
    uint64_t n = get64(map);
    if (n > size - 8)
        return sq_err_set(err, SQ_ECORRUPT, "%s: header length %llu runs past the end of the file (%llu bytes)", path,
                          (unsigned long long)n, (unsigned long long)size);
    if (n > MAX_HEADER) return sq_err_set(err, SQ_ENOMEM, "%s: header length %llu exceeds 100 MiB", path, (unsigned long long)n);
    json_object *root;
    sq_status st = sq_json_parse_object(path, (const char *)map + 8, (size_t)n, &root, err);
    if (st) return st;
    const uint8_t *data = map + 8 + n;
    const uint64_t dsize = size - 8 - n;
    json_object_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        json_object *dt, *shape, *offs;
        if (!json_object_is_type(val, json_type_object) || !json_object_object_get_ex(val, "dtype", &dt) ||
            !json_object_object_get_ex(val, "shape", &shape) || !json_object_object_get_ex(val, "data_offsets", &offs) ||
            !json_object_is_type(dt, json_type_string) || !json_object_is_type(shape, json_type_array) ||
            !json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2) {
            st = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: header entry needs dtype, shape and data_offsets [begin, end]", path, key);
            break;
        }
        int ti = st_type(json_object_get_string(dt));
        if (ti < 0) {
            st = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: unknown dtype %s", path, key, json_object_get_string(dt));
            break;
        }
        size_t nd = json_object_array_length(shape);
        if (nd > SQ_MAX_NDIM) {
            st = sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s has %zu dimensions (max 8)", path, key, nd);
            break;
        }
        sq_st_entry e;
        memset(&e, 0, sizeof e);
        uint64_t bytes = st_types[ti].size;
        int ok = 1;
        for (size_t i = 0; i < nd && ok; i++) {
            json_object *d = json_object_array_get_idx(shape, i);
            ok = json_object_is_type(d, json_type_int) && json_object_get_int64(d) >= 0;
            if (ok) ok = mul_ok(bytes, e.dims[i] = (uint64_t)json_object_get_int64(d), &bytes);
        }
        json_object *b0 = json_object_array_get_idx(offs, 0), *b1 = json_object_array_get_idx(offs, 1);
        if (!ok || !json_object_is_type(b0, json_type_int) || !json_object_is_type(b1, json_type_int)) {
            st = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: shape or data_offsets are not non-negative integers", path, key);
            break;
        }
        int64_t begin = json_object_get_int64(b0), end = json_object_get_int64(b1);
        if (begin < 0 || end < begin || (uint64_t)end > dsize || (uint64_t)(end - begin) != bytes) {
            st = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: data_offsets [%lld, %lld] do not hold its %llu bytes within the %llu data bytes",
                            path, key, (long long)begin, (long long)end, (unsigned long long)bytes, (unsigned long long)dsize);
            break;
        }
        e.ndim = nd ? (uint32_t)nd : 1;
        if (!nd) e.dims[0] = 1;
        snprintf(e.dtype_name, sizeof e.dtype_name, "%s", st_types[ti].name);
        e.dtype = st_types[ti].dtype;
        e.data = data + begin;
        e.nbytes = bytes;
        e.file = file;
        sq_st_entry *ne = realloc(s->e, (s->n + 1) * sizeof *ne);
        if (!ne || !(e.name = strdup(key))) {
            if (ne) s->e = ne;
            st = sq_err_set(err, SQ_ENOMEM, "out of memory");
            break;
        }
        s->e = ne;
        s->e[s->n++] = e;
    }
    json_object_put(root);
    return st;
}

static int cmp_entry(const void *a, const void *b) { return strcmp(((const sq_st_entry *)a)->name, ((const sq_st_entry *)b)->name); }

sq_status sq_st_sort(sq_st_set *s, sq_err *err) {
    if (s->n) qsort(s->e, s->n, sizeof *s->e, cmp_entry);
    for (uint32_t i = 1; i < s->n; i++)
        if (!strcmp(s->e[i].name, s->e[i - 1].name))
            return sq_err_set(err, SQ_ECORRUPT, "tensor %s appears twice in the model's safetensors files", s->e[i].name);
    return SQ_OK;
}

const sq_st_entry *sq_st_find(const sq_st_set *s, const char *name) {
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->e[mid].name, name);
        if (!c) return &s->e[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

void sq_st_free(sq_st_set *s) {
    for (uint32_t i = 0; i < s->n; i++) free(s->e[i].name);
    free(s->e);
    s->e = NULL;
    s->n = 0;
}

uint64_t sq_st_desc_bytes(const sq_st_desc *d) {
    int ti = st_type(d->dtype_name);
    uint64_t b = ti < 0 ? 0 : st_types[ti].size;
    for (uint32_t i = 0; i < d->ndim; i++) b *= d->dims[i];
    return b;
}

sq_status sq_st_out_begin(sq_st_out *o, const char *path, const sq_st_desc *d, uint32_t n, const char *const *meta,
                          int n_meta, sq_err *err) {
    memset(o, 0, sizeof *o);
    json_object *root = json_object_new_object(), *m = json_object_new_object();
    for (int i = 0; i < n_meta; i++) json_object_object_add(m, meta[2 * i], json_object_new_string(meta[2 * i + 1]));
    json_object_object_add(root, "__metadata__", m);
    uint64_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        json_object *t = json_object_new_object(), *shape = json_object_new_array(), *offs = json_object_new_array();
        for (uint32_t k = 0; k < d[i].ndim; k++) json_object_array_add(shape, json_object_new_int64((int64_t)d[i].dims[k]));
        uint64_t b = sq_st_desc_bytes(&d[i]);
        json_object_array_add(offs, json_object_new_int64((int64_t)off));
        json_object_array_add(offs, json_object_new_int64((int64_t)(off + b)));
        off += b;
        json_object_object_add(t, "dtype", json_object_new_string(d[i].dtype_name));
        json_object_object_add(t, "shape", shape);
        json_object_object_add(t, "data_offsets", offs);
        json_object_object_add(root, d[i].name, t);
    }
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t tl = strlen(text), padded = (tl + 7) / 8 * 8; /* the data starts 8-aligned: I32/F32 tensors map aligned */
    uint8_t len[8];
    put64(len, padded);
    o->expect = off;
    o->path = strdup(path);
    o->f = fopen(path, "wbe");
    sq_status st = SQ_OK;
    if (!o->path || !o->f) st = sq_err_set(err, SQ_EIO, "%s: cannot create: %s", path, strerror(errno));
    else if (fwrite(len, 1, 8, o->f) != 8 || fwrite(text, 1, tl, o->f) != tl) st = sq_err_set(err, SQ_EIO, "%s: write failed", path);
    for (size_t i = tl; !st && i < padded; i++)
        if (fputc(' ', o->f) == EOF) st = sq_err_set(err, SQ_EIO, "%s: write failed", path);
    json_object_put(root);
    if (st) sq_st_out_abort(o);
    return st;
}

sq_status sq_st_out_write(sq_st_out *o, const void *data, uint64_t size, sq_err *err) {
    if (o->written + size > o->expect) return sq_err_set(err, SQ_EINTERNAL, "%s: more tensor bytes than the header announced", o->path);
    if (size && fwrite(data, 1, (size_t)size, o->f) != size) return sq_err_set(err, SQ_EIO, "%s: write failed: %s", o->path, strerror(errno));
    o->written += size;
    return SQ_OK;
}

sq_status sq_st_out_end(sq_st_out *o, sq_err *err) {
    sq_status st = SQ_OK;
    if (o->written != o->expect) st = sq_err_set(err, SQ_EINTERNAL, "%s: %llu tensor bytes written, %llu announced", o->path,
                                                (unsigned long long)o->written, (unsigned long long)o->expect);
    else if (fflush(o->f) || fsync(fileno(o->f))) st = sq_err_set(err, SQ_EIO, "%s: write failed: %s", o->path, strerror(errno));
    if (fclose(o->f) && !st) st = sq_err_set(err, SQ_EIO, "%s: close failed: %s", o->path, strerror(errno));
    o->f = NULL;
    free(o->path);
    o->path = NULL;
    return st;
}

void sq_st_out_abort(sq_st_out *o) {
    if (o->f) fclose(o->f);
    o->f = NULL;
    free(o->path);
    o->path = NULL;
}
