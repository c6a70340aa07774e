#include "describe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/hash.h"

static const char *const flag_names[] = {"INT8", "INT4", "INT3", "INT2", "NF4", "FP8", "FP6", "FP4", "MXFP8",
                                         "MXFP6", "MXFP4", "SPARSE", "GPTQ", "AWQ", "AQLM", "QUIPSHARP", "SPQR",
                                         "EAGLE_DRAFT", "TCA_TBE", "ZSTD", "FLOAT", "MIXED"};

void describe_flags(uint64_t flags, char *out, size_t n) {
    size_t k = 0;
    out[0] = 0;
    for (unsigned i = 0; i < 64 && k < n; i++) {
        if (!(flags >> i & 1)) continue;
        if (i < sizeof flag_names / sizeof flag_names[0])
            k += (size_t)snprintf(out + k, n - k, "%s%s", k ? " " : "", flag_names[i]);
        else
            k += (size_t)snprintf(out + k, n - k, "%sBIT%u", k ? " " : "", i);
    }
    if (!flags) snprintf(out, n, "none");
}

void describe_shape(const uint64_t *dims, uint32_t ndim, char *out, size_t n) {
    size_t k = (size_t)snprintf(out, n, "[");
    for (uint32_t i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (k < n) snprintf(out + k, n - k, "]");
}

void describe_scheme(const sq_tensor *t, char *out, size_t n) {
    const sq_codec *c = sq_codec_by_id(t->codec);
    if (c) sq_scheme_format(c, t->params, out, n);
    else snprintf(out, n, "codec#%u", t->codec);
}

uint64_t tensor_elems(const sq_tensor *t) {
    uint64_t e = 1;
    for (uint32_t i = 0; i < t->ndim; i++) e *= t->dims[i];
    return e;
}

uint64_t tensor_raw_bytes(const sq_tensor *t) {
    uint64_t b = 0;
    for (uint32_t i = 0; i < t->n_parts; i++) b += t->parts[i].raw_size;
    return b;
}

uint64_t tensor_stored_bytes(const sq_tensor *t) {
    uint64_t b = 0;
    for (uint32_t i = 0; i < t->n_parts; i++) b += t->parts[i].stored_size;
    return b;
}

static int part_ok(const sq_file *f, const sq_part *p) {
    uint64_t size;
    const uint8_t *base = sq_file_bytes(f, &size);
    return sq_xxh64(base + p->offset, (size_t)p->stored_size, 0) == p->checksum;
}

int tensor_checksums_ok(const sq_file *f, const sq_tensor *t) {
    for (uint32_t i = 0; i < t->n_parts; i++)
        if (!part_ok(f, &t->parts[i])) return 0;
    return 1;
}

static json_object *u64_array(const uint64_t *v, uint32_t n) {
    json_object *a = json_object_new_array();
    for (uint32_t i = 0; i < n; i++) json_object_array_add(a, json_object_new_int64((int64_t)v[i]));
    return a;
}

static json_object *hex64(uint64_t v) {
    char b[17];
    snprintf(b, sizeof b, "%016llx", (unsigned long long)v);
    return json_object_new_string(b);
}

json_object *describe_header_json(const sq_header *h) {
    json_object *o = json_object_new_object();
    char b[512];
    snprintf(b, sizeof b, "%u.%u", h->major, h->minor);
    json_object_object_add(o, "version", json_object_new_string(b));
    json_object_object_add(o, "alignment", json_object_new_int64(h->alignment));
    json_object_object_add(o, "flags", json_object_new_int64((int64_t)h->flags));
    describe_flags(h->flags, b, sizeof b);
    json_object *fl = json_object_new_array();
    if (h->flags) {
        char *save = NULL;
        for (char *tok = strtok_r(b, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
            json_object_array_add(fl, json_object_new_string(tok));
    }
    json_object_object_add(o, "flag_names", fl);
    json_object_object_add(o, "arch", json_object_new_string(sq_arch_name(h->arch)));
    json_object_object_add(o, "n_layers", json_object_new_int64(h->n_layers));
    json_object_object_add(o, "hidden_size", json_object_new_int64(h->hidden_size));
    json_object_object_add(o, "n_heads", json_object_new_int64(h->n_heads));
    json_object_object_add(o, "n_kv_heads", json_object_new_int64(h->n_kv_heads));
    json_object_object_add(o, "vocab_size", json_object_new_int64(h->vocab_size));
    json_object_object_add(o, "intermediate_size", json_object_new_int64(h->intermediate_size));
    json_object_object_add(o, "avg_bpw", json_object_new_double(h->avg_bpw));
    json_object_object_add(o, "sparsity", json_object_new_double(h->sparsity));
    static const uint8_t zero[32];
    if (memcmp(h->calib_hash, zero, 32)) {
        sq_hex32(h->calib_hash, b);
        json_object_object_add(o, "calib_hash", json_object_new_string(b));
    } else {
        json_object_object_add(o, "calib_hash", NULL);
    }
    json_object_object_add(o, "n_tensors", json_object_new_int64(h->n_tensors));
    json_object_object_add(o, "n_appendix", json_object_new_int64(h->n_appendix));
    json_object_object_add(o, "file_size", json_object_new_int64((int64_t)h->file_size));
    return o;
}

json_object *describe_tensor_json(const sq_file *f, const sq_tensor *t, int with_parts, int check) {
    json_object *o = json_object_new_object();
    char b[256];
    const sq_codec *c = sq_codec_by_id(t->codec);
    json_object_object_add(o, "name", json_object_new_string(t->name));
    json_object_object_add(o, "shape", u64_array(t->dims, t->ndim));
    json_object_object_add(o, "source_dtype", json_object_new_string(sq_dtype_name(t->src_dtype)));
    json_object_object_add(o, "codec", c ? json_object_new_string(c->name) : NULL);
    json_object_object_add(o, "codec_id", json_object_new_int64(t->codec));
    describe_scheme(t, b, sizeof b);
    json_object_object_add(o, "scheme", json_object_new_string(b));
    json_object *pa = json_object_new_array();
    for (int i = 0; i < SQ_NPARAMS; i++) json_object_array_add(pa, json_object_new_int64(t->params[i]));
    json_object_object_add(o, "params", pa);
    uint64_t e = tensor_elems(t), raw = tensor_raw_bytes(t), stored = tensor_stored_bytes(t);
    json_object_object_add(o, "elements", json_object_new_int64((int64_t)e));
    json_object_object_add(o, "bpw", json_object_new_double(e ? 8.0 * (double)raw / (double)e : 0));
    json_object_object_add(o, "bytes", json_object_new_int64((int64_t)raw));
    json_object_object_add(o, "stored_bytes", json_object_new_int64((int64_t)stored));
    if (check) json_object_object_add(o, "checksum", json_object_new_string(tensor_checksums_ok(f, t) ? "ok" : "mismatch"));
    if (with_parts) {
        json_object *parts = json_object_new_array();
        for (uint32_t i = 0; i < t->n_parts; i++) {
            const sq_part *p = &t->parts[i];
            json_object *po = json_object_new_object();
            json_object_object_add(po, "name", json_object_new_string(p->name));
            json_object_object_add(po, "dtype", json_object_new_string(sq_dtype_name(p->dtype)));
            json_object_object_add(po, "shape", u64_array(p->dims, p->ndim));
            json_object_object_add(po, "offset", json_object_new_int64((int64_t)p->offset));
            json_object_object_add(po, "stored_size", json_object_new_int64((int64_t)p->stored_size));
            json_object_object_add(po, "raw_size", json_object_new_int64((int64_t)p->raw_size));
            json_object_object_add(po, "compression", json_object_new_string(sq_compression_name(p->compression)));
            json_object_object_add(po, "checksum_xxh64", hex64(p->checksum));
            if (check) json_object_object_add(po, "checksum_ok", json_object_new_boolean(part_ok(f, p)));
            json_object_array_add(parts, po);
        }
        json_object_object_add(o, "parts", parts);
    }
    return o;
}
