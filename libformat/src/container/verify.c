/* Full integrity check of an opened .squizd file: what sq_open does not do
 * (part and appendix checksums, overlaps between data blobs, zero padding
 * between them, codec layouts, values a decode would turn into NaN or inf,
 * embedded files, metadata JSON, header flags and bpw consistent with the
 * index). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/codec.h"
#include "squish/container.h"

typedef struct blob {
    uint64_t off, len;
    const char *tensor, *part; /* tensor == NULL: appendix block number appx */
    uint32_t appx;
} blob;

static void blob_name(const blob *b, char *out, size_t n) {
    if (b->tensor) snprintf(out, n, "tensor %s part %s", b->tensor, b->part);
    else snprintf(out, n, "appendix %u", b->appx);
}

static int blob_cmp(const void *a, const void *b) {
    const blob *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

typedef struct vstate {
    sq_report_fn report;
    void *ctx;
    sq_status first;
    sq_err *err;
} vstate;

static void problem(vstate *v, sq_status st, const char *msg) {
    if (v->report) v->report(v->ctx, st, msg);
    if (!v->first) {
        v->first = st;
        sq_err_set(v->err, st, "%s", msg);
    }
}

/* The data region between blobs is zero padding (spec/squizd.md §8). */
static void check_padding(vstate *v, const sq_file *f, const blob *bl, uint64_t k) {
    uint64_t size;
    const uint8_t *b = sq_file_bytes(f, &size);
    uint64_t from = sq_file_header(f)->data_offset;
    for (uint64_t i = 0; i <= k; i++) {
        uint64_t to = i < k ? bl[i].off : from; /* the region ends at the last blob (checked on open) */
        for (uint64_t p = from; p < to; p++)
            if (b[p]) {
                char name[SQ_MAX_NAME + 64], msg[SQ_MAX_NAME + 256];
                if (i) blob_name(&bl[i - 1], name, sizeof name);
                snprintf(msg, sizeof msg, "%s: padding %s%s (bytes %llu..%llu) is not zero: byte %llu is 0x%02x",
                         sq_file_path(f), i ? "after " : "before the first blob of the data region", i ? name : "",
                         (unsigned long long)from, (unsigned long long)to - 1, (unsigned long long)p, b[p]);
                problem(v, SQ_ECORRUPT, msg);
                break;
            }
        if (i < k && bl[i].off + bl[i].len > from) from = bl[i].off + bl[i].len;
    }
}

/* Embedded files (appendix type 4) are well-formed and have distinct names. */
static void check_embedded(vstate *v, const sq_file *f) {
    uint32_t na = sq_file_nappendix(f);
    char **names = calloc(na ? na : 1, sizeof *names);
    char msg[SQ_MAX_NAME + 256];
    sq_err e;
    for (uint32_t i = 0; names && i < na; i++) {
        const sq_appendix *a = sq_file_appendix(f, i);
        const char *name;
        size_t nl;
        const uint8_t *data;
        uint64_t size;
        void *owned;
        if (a->type != SQ_APPX_FILE) continue;
        const void *ptr;
        if (sq_appendix_read(f, a, &ptr, &owned, &e)) continue; /* reported with the checksums */
        free(owned);
        if (sq_appendix_file(f, a, &name, &nl, &data, &size, &owned, &e)) {
            problem(v, e.status, e.msg);
            continue;
        }
        names[i] = strndup(name, nl);
        free(owned);
        for (uint32_t j = 0; names[i] && j < i; j++)
            if (names[j] && !strcmp(names[j], names[i])) {
                snprintf(msg, sizeof msg, "%s: appendix %u embeds a file named %s, as appendix %u does", sq_file_path(f), i,
                         names[i], j);
                problem(v, SQ_ECORRUPT, msg);
            }
    }
    for (uint32_t i = 0; names && i < na; i++) free(names[i]);
    free(names);
}

sq_status sq_verify(sq_file *f, sq_report_fn report, void *ctx, sq_err *err) {
    vstate v = {report, ctx, SQ_OK, err};
    const sq_header *h = sq_file_header(f);
    const char *path = sq_file_path(f);
    sq_err e;
    char msg[2 * SQ_MAX_NAME + 512];
    uint32_t nt = sq_file_ntensors(f), na = sq_file_nappendix(f);

    /* Count blobs first (bounded by the index, which is already parsed). */
    uint64_t nb = na;
    for (uint32_t i = 0; i < nt; i++) nb += sq_file_tensor(f, i)->n_parts;
    blob *bl = malloc((size_t)(nb ? nb : 1) * sizeof *bl);
    if (!bl) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
    uint64_t k = 0, elems = 0, bits = 0, flags = 0;
    int sums_ok = 1;
    for (uint32_t i = 0; i < nt; i++) {
        const sq_tensor *t = sq_file_tensor(f, i);
        int bad = 0;
        for (uint32_t j = 0; j < t->n_parts; j++) {
            const sq_part *p = &t->parts[j];
            bl[k++] = (blob){p->offset, p->stored_size, t->name, p->name, 0};
            const void *ptr;
            void *owned;
            if (sq_part_read(f, p, 0, &ptr, &owned, &e)) { problem(&v, e.status, e.msg); bad = 1; }
            free(owned);
            sums_ok = sums_ok && p->raw_size <= UINT64_MAX / 8 && bits <= UINT64_MAX - p->raw_size * 8;
            bits += p->raw_size * 8;
            if (p->compression == SQ_COMP_ZSTD) flags |= SQ_FLAG_ZSTD;
            if (p->compression == SQ_COMP_TCA_TBE) flags |= SQ_FLAG_TCA_TBE;
        }
        if (sq_codec_check_tensor(f, t, &e)) { problem(&v, e.status, e.msg); bad = 1; }
        if (!bad) { /* values a decode would turn into NaN or inf */
            sq_tview tv;
            void *owned[SQ_CODEC_MAX_PARTS];
            if (sq_tview_open(f, t, 1, &tv, owned, &e)) problem(&v, e.status, e.msg);
            else for (int j = 0; j < SQ_CODEC_MAX_PARTS; j++) free(owned[j]);
        }
        flags |= sq_codec_technique_flags(t->codec);
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->ndim; d++) n *= t->dims[d]; /* no overflow: checked on open */
        sums_ok = sums_ok && elems <= UINT64_MAX - n;
        elems += n;
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(sq_file_tensor(f, j)->name, t->name)) {
                snprintf(msg, sizeof msg, "%s: tensor name %s appears twice in the index (records at %llu and %llu)", path,
                         t->name, (unsigned long long)sq_file_tensor(f, j)->rec_offset, (unsigned long long)t->rec_offset);
                problem(&v, SQ_ECORRUPT, msg);
            }
    }
    for (uint32_t i = 0; i < na; i++) {
        const sq_appendix *a = sq_file_appendix(f, i);
        bl[k++] = (blob){a->offset, a->stored_size, NULL, NULL, i};
        const void *ptr;
        void *owned;
        if (sq_appendix_read(f, a, &ptr, &owned, &e)) problem(&v, e.status, e.msg);
        free(owned);
        if ((a->flags >> 8) == SQ_COMP_ZSTD) flags |= SQ_FLAG_ZSTD;
        if (a->type == SQ_APPX_SPARSITY) flags |= SQ_FLAG_SPARSE;
        if (a->type == SQ_APPX_EAGLE_DRAFT) flags |= SQ_FLAG_EAGLE_DRAFT;
        if (a->type == SQ_APPX_TCA_TBE) flags |= SQ_FLAG_TCA_TBE;
    }
    check_embedded(&v, f);
    qsort(bl, (size_t)k, sizeof *bl, blob_cmp);
    for (uint64_t i = 1; i < k; i++)
        if (bl[i - 1].off + bl[i - 1].len > bl[i].off) {
            char a[SQ_MAX_NAME + 64], b[SQ_MAX_NAME + 64];
            blob_name(&bl[i - 1], a, sizeof a);
            blob_name(&bl[i], b, sizeof b);
            snprintf(msg, sizeof msg, "%s: data of %s [%llu, +%llu) overlaps %s at %llu", path, a,
                     (unsigned long long)bl[i - 1].off, (unsigned long long)bl[i - 1].len, b, (unsigned long long)bl[i].off);
            problem(&v, SQ_ECORRUPT, msg);
        }
    check_padding(&v, f, bl, k);
    free(bl);

    /* Flags other than the ones derived from the index (e.g. GPTQ, AWQ) may be set by writers. */
    uint64_t derived_mask = SQ_FLAG_INT8 | SQ_FLAG_INT4 | SQ_FLAG_INT3 | SQ_FLAG_INT2 | SQ_FLAG_NF4 | SQ_FLAG_FP8 |
                            SQ_FLAG_FP6 | SQ_FLAG_FP4 | SQ_FLAG_MXFP8 | SQ_FLAG_MXFP6 | SQ_FLAG_MXFP4 | SQ_FLAG_FLOAT |
                            SQ_FLAG_ZSTD | SQ_FLAG_SPARSE | SQ_FLAG_EAGLE_DRAFT | SQ_FLAG_TCA_TBE;
    for (const sq_codec *const *c = sq_codec_list(); *c; c++) derived_mask |= (*c)->technique_flag; /* QuIP#, AQLM, ... */
    if (h->meta_compression) flags |= SQ_FLAG_ZSTD;
    if ((h->flags & derived_mask) != flags) {
        snprintf(msg, sizeof msg, "%s: header flags (offset 16) = 0x%llx but the index implies 0x%llx", path,
                 (unsigned long long)(h->flags & derived_mask), (unsigned long long)flags);
        problem(&v, SQ_ECORRUPT, msg);
    }
    /* spec/squizd.md §2: both sums exact in 64 bits, one double division, rounded to f32 */
    float bpw = elems ? (float)((double)bits / (double)elems) : 0.0f;
    if (!sums_ok) {
        snprintf(msg, sizeof msg, "%s: the index's bits or elements do not fit in 64 bits (avg_bpw undefined)", path);
        problem(&v, SQ_ECORRUPT, msg);
    } else if (bpw != h->avg_bpw) {
        snprintf(msg, sizeof msg, "%s: avg_bpw (offset 56) = %g but the index gives %g", path, (double)h->avg_bpw, (double)bpw);
        problem(&v, SQ_ECORRUPT, msg);
    }
    if (!(h->sparsity >= 0.0f && h->sparsity <= 1.0f)) {
        snprintf(msg, sizeof msg, "%s: sparsity (offset 60) = %g is outside [0, 1]", path, (double)h->sparsity);
        problem(&v, SQ_ECORRUPT, msg);
    }
    /* an arch value this reader does not know is ignored (spec §7): a later 1.y may add architectures */
    const char *meta = sq_file_metadata(f, &e);
    if (!meta) {
        problem(&v, e.status, e.msg);
    } else {
        json_tokener *tok = json_tokener_new();
        json_object *obj = tok ? json_tokener_parse_ex(tok, meta, (int)strlen(meta)) : NULL;
        if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != strlen(meta) || !json_object_is_type(obj, json_type_object)) {
            snprintf(msg, sizeof msg, "%s: metadata section at %llu is not a JSON object", path,
                     (unsigned long long)h->meta_offset);
            problem(&v, SQ_ECORRUPT, msg);
        }
        json_object_put(obj);
        if (tok) json_tokener_free(tok);
    }
    return v.first;
}
