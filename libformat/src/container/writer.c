/* Streaming, atomic .squizd writer.
 * Layout written: header placeholder | part and appendix data (aligned) |
 * index | metadata | appendix table; then the real header at offset 0,
 * fsync, rename over the target, fsync of the directory.
 * The header at offset 0 holds the offsets, sizes and checksums of what
 * follows the data, so a stream (standard output, a FIFO) cannot be written
 * front to back: it is spooled to an unlinked file in $TMPDIR, as large as
 * the output, and copied out on commit. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/bytes.h"
#include "squish/codec.h"
#include "squish/container.h"
#include "squish/hash.h"
#include "squish/fileio.h"
#include "squish/tca_tbe.h"
#include "common/tempfiles.h"

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static int buf_reserve(buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_append(buf *b, const void *data, size_t n) {
    if (buf_reserve(b, n)) return -1;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static int buf_zeros(buf *b, size_t n) {
    if (buf_reserve(b, n)) return -1;
    memset(b->p + b->len, 0, n);
    b->len += n;
    return 0;
}

struct sq_writer {
    char *path;      /* final destination ("-" for stdout) */
    int stream;      /* destination is a stream (stdout, a device, a FIFO): copy, never rename */
    char *tmp_path;
    int fd, temp_slot;
    int failed;
    sq_writer_opts opts;
    uint64_t pos;    /* end of written data */
    sq_model_info info;
    char *meta;      /* JSON text */
    buf index;
    buf appendix;
    uint32_t n_tensors, n_appendix;
    /* tensor being built */
    int in_tensor;
    buf rec;
    uint32_t rec_nparts;
    uint64_t flags;
    uint64_t total_elems, total_bits;
    uint64_t cur_elems;
    /* names seen, for duplicate detection */
    char **names;
    size_t n_names, names_cap;
};

static sq_status fail(sq_writer *w, sq_err *err, sq_status st, const char *fmt, const char *detail) {
    w->failed = 1;
    return sq_err_set(err, st, fmt, w->path, detail);
}

static sq_status write_all(sq_writer *w, const void *data, size_t n, sq_err *err) {
    const uint8_t *p = data;
    while (n) {
        ssize_t k = write(w->fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return fail(w, err, SQ_EIO, "%s: write failed: %s", strerror(errno));
        }
        p += k;
        n -= (size_t)k;
        w->pos += (uint64_t)k;
    }
    return SQ_OK;
}

static sq_status pad_to(sq_writer *w, uint64_t align, sq_err *err) {
    static const uint8_t zeros[4096];
    uint64_t target = align_up(w->pos, align);
    while (w->pos < target) {
        size_t n = target - w->pos > sizeof zeros ? sizeof zeros : (size_t)(target - w->pos);
        sq_status st = write_all(w, zeros, n, err);
        if (st) return st;
    }
    return SQ_OK;
}

sq_writer *sq_writer_open(const char *path, const sq_writer_opts *opts, sq_err *err) {
    sq_writer *w = calloc(1, sizeof *w);
    if (!w) { sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path); return NULL; }
    w->fd = -1;
    w->temp_slot = -1;
    if (opts) w->opts = *opts;
    if (!w->opts.alignment) w->opts.alignment = SQ_MIN_ALIGN;
    if (w->opts.alignment < SQ_MIN_ALIGN || w->opts.alignment > SQ_MAX_ALIGN ||
        (w->opts.alignment & (w->opts.alignment - 1))) {
        sq_err_set(err, SQ_EUSAGE, "%s: alignment %u is not a power of two in [64, 1 MiB]", path,
                   w->opts.alignment);
        free(w);
        return NULL;
    }
    if (!w->opts.zstd_level) w->opts.zstd_level = 3;
    w->path = strdup(path);
    size_t plen = strlen(path);
    struct stat st;
    /* an existing non-regular target (/dev/stdout, a FIFO) is written through, never replaced */
    w->stream = !strcmp(path, "-") || (stat(path, &st) == 0 && !S_ISREG(st.st_mode));
    if (w->stream && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        sq_err_set(err, SQ_EIO, "%s: is a directory", path);
        sq_writer_abort(w);
        return NULL;
    }
    if (w->stream) {
        const char *td = getenv("TMPDIR");
        if (!td || !*td) td = "/tmp";
        w->tmp_path = malloc(strlen(td) + 64);
        if (w->tmp_path) sprintf(w->tmp_path, "%s/squish-stream.squish-tmp-%ld-XXXXXX", td, (long)getpid());
    } else {
        sq_remove_stale_temps(path);
        w->tmp_path = malloc(plen + 48);
        if (w->tmp_path) sprintf(w->tmp_path, "%s.squish-tmp-%ld-XXXXXX", path, (long)getpid());
    }
    if (!w->path || !w->tmp_path) {
        sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
        sq_writer_abort(w);
        return NULL;
    }
    w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
    if (w->fd < 0) {
        sq_err_set(err, SQ_EIO, "%s: cannot create temporary file %s: %s", path, w->tmp_path, strerror(errno));
        free(w->tmp_path);
        w->tmp_path = NULL;
        sq_writer_abort(w);
        return NULL;
    }
    if (w->stream) {
        /* A spool for standard output is never renamed: unlink it now, so it
         * is gone however the process ends (SIGPIPE when the reader goes
         * away, SIGKILL, a crash), not only through the signal handler. */
        unlink(w->tmp_path);
        free(w->tmp_path);
        w->tmp_path = NULL;
    } else {
        fchmod(w->fd, 0644 & ~0u);
        w->temp_slot = sq_temp_register(w->tmp_path);
    }
    uint8_t zero[SQ_HEADER_SIZE] = {0};
    if (write_all(w, zero, sizeof zero, err)) {
        sq_writer_abort(w);
        return NULL;
    }
    return w;
}

void sq_writer_set_model(sq_writer *w, const sq_model_info *info) { w->info = *info; }

void sq_writer_add_flags(sq_writer *w, uint64_t flags) { w->flags |= flags; }

sq_status sq_writer_set_metadata(sq_writer *w, const char *json, sq_err *err) {
    free(w->meta);
    w->meta = strdup(json ? json : "{}");
    if (!w->meta) return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
    return SQ_OK;
}

static int valid_name(const char *s, size_t n) {
    /* printable UTF-8 without control characters */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return n > 0;
}

sq_status sq_writer_begin_tensor(sq_writer *w, const char *name, uint32_t ndim, const uint64_t *dims,
                                 uint32_t src_dtype, uint32_t codec, const uint32_t params[SQ_NPARAMS],
                                 sq_err *err) {
    if (w->failed) return sq_err_set(err, SQ_EINTERNAL, "%s: writer already failed", w->path);
    if (w->in_tensor) return fail(w, err, SQ_EINTERNAL, "%s: tensor %s begun inside another", name);
    size_t nlen = strlen(name);
    if (nlen > SQ_MAX_NAME || !valid_name(name, nlen))
        return fail(w, err, SQ_EUSAGE, "%s: invalid tensor name '%s'", name);
    if (ndim < 1 || ndim > SQ_MAX_NDIM) return fail(w, err, SQ_EUSAGE, "%s: tensor %s: bad ndim", name);
    for (size_t i = 0; i < w->n_names; i++)
        if (!strcmp(w->names[i], name)) return fail(w, err, SQ_EUSAGE, "%s: duplicate tensor name %s", name);
    if (w->n_names == w->names_cap) {
        size_t cap = w->names_cap ? w->names_cap * 2 : 64;
        char **nn = realloc(w->names, cap * sizeof *nn);
        if (!nn) return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
        w->names = nn;
        w->names_cap = cap;
    }
    if (!(w->names[w->n_names] = strdup(name))) return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
    w->n_names++;

    uint8_t fixed[48] = {0};
    put16(fixed + 4, (uint16_t)nlen);
    fixed[6] = (uint8_t)ndim;
    fixed[7] = (uint8_t)src_dtype;
    put16(fixed + 8, (uint16_t)codec);
    /* fixed[10] = n_parts, filled at end_tensor */
    for (int i = 0; i < SQ_NPARAMS; i++) put32(fixed + 16 + 4 * i, params ? params[i] : 0);
    w->rec.len = 0;
    if (buf_append(&w->rec, fixed, sizeof fixed)) return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
    uint64_t elems = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        uint8_t d[8];
        put64(d, dims[i]);
        if (buf_append(&w->rec, d, 8)) return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
        if (!mul_ok(elems, dims[i], &elems)) return fail(w, err, SQ_EUSAGE, "%s: tensor %s: shape overflows", name);
    }
    if (buf_append(&w->rec, name, nlen) || buf_zeros(&w->rec, (size_t)(align_up(w->rec.len, 8) - w->rec.len)))
        return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
    w->rec_nparts = 0;
    w->cur_elems = elems;
    w->in_tensor = 1;
    w->flags |= sq_codec_technique_flags(codec);
    return SQ_OK;
}

/* Compresses data with zstd into a new buffer (content size and checksum in the frame). */
static void *zstd_pack(const void *data, uint64_t size, int level, size_t *out_len) {
    size_t cap = ZSTD_compressBound((size_t)size);
    void *out = malloc(cap ? cap : 1);
    if (!out) return NULL;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!cc) { free(out); return NULL; }
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0);
    size_t n = ZSTD_compress2(cc, out, cap, data, (size_t)size);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(n)) { free(out); return NULL; }
    *out_len = n;
    return out;
}

/* Writes a data blob aligned; returns offset, stored size and checksum. */
static sq_status write_blob(sq_writer *w, const void *data, uint64_t size, uint32_t *compression,
                            uint64_t *off, uint64_t *stored, uint64_t *sum, sq_err *err) {
    sq_status st = pad_to(w, w->opts.alignment, err);
    if (st) return st;
    *off = w->pos;
    const void *src = data;
    void *packed = NULL;
    uint64_t n = size;
    if (*compression == SQ_COMP_TCA_TBE) { /* bf16 (checked by the caller) */
        uint8_t *coded;
        uint64_t plen;
        sq_err e;
        if (sq_tbe_encode(data, size / 2, &coded, &plen, &e)) return fail(w, err, e.status, "%s: %s", e.msg);
        packed = coded;
        if (plen >= size) { /* exponents too spread out to gain: store raw */
            free(packed);
            packed = NULL;
            *compression = SQ_COMP_NONE;
        } else {
            src = packed;
            n = plen;
            w->flags |= SQ_FLAG_TCA_TBE;
        }
    } else if (*compression == SQ_COMP_ZSTD) {
        size_t plen;
        packed = zstd_pack(data, size, w->opts.zstd_level, &plen);
        if (!packed) return fail(w, err, SQ_ENOMEM, "%s: zstd compression failed%s", "");
        if (plen >= size) { /* incompressible: store raw */
            free(packed);
            packed = NULL;
            *compression = SQ_COMP_NONE;
        } else {
            src = packed;
            n = plen;
            w->flags |= SQ_FLAG_ZSTD;
        }
    }
    *stored = n;
    *sum = sq_xxh64(src, (size_t)n, 0);
    st = write_all(w, src, (size_t)n, err);
    free(packed);
    return st;
}

static sq_status part_record(sq_writer *w, const char *name, size_t nlen, uint32_t dtype, uint32_t ndim,
                             const uint64_t *dims, uint32_t compression, uint64_t off, uint64_t stored, uint64_t size,
                             uint64_t sum, sq_err *err);

/* Checks a part's name, shape and raw size before anything is written. */
static sq_status check_part(sq_writer *w, const char *name, uint32_t dtype, uint32_t ndim, const uint64_t *dims,
                            uint64_t raw_size, sq_err *err) {
    if (w->failed) return sq_err_set(err, SQ_EINTERNAL, "%s: writer already failed", w->path);
    if (!w->in_tensor) return fail(w, err, SQ_EINTERNAL, "%s: part %s outside a tensor", name);
    size_t nlen = strlen(name);
    if (nlen > SQ_MAX_PART_NAME || !valid_name(name, nlen))
        return fail(w, err, SQ_EUSAGE, "%s: invalid part name '%s'", name);
    if (w->rec_nparts >= SQ_MAX_PARTS) return fail(w, err, SQ_EUSAGE, "%s: too many parts (%s)", name);
    if (ndim < 1 || ndim > 4) return fail(w, err, SQ_EUSAGE, "%s: part %s: ndim must be 1..4", name);
    uint64_t expect = sq_dtype_size(dtype);
    if (!expect) return fail(w, err, SQ_EUSAGE, "%s: part %s: invalid dtype", name);
    for (uint32_t i = 0; i < ndim; i++)
        if (!mul_ok(expect, dims[i], &expect)) return fail(w, err, SQ_EUSAGE, "%s: part %s: size overflows", name);
    if (expect != raw_size) return fail(w, err, SQ_EINTERNAL, "%s: part %s: size does not match dtype x shape", name);
    return SQ_OK;
}


sq_status sq_writer_add_part(sq_writer *w, const char *name, uint32_t dtype, uint32_t ndim,
                             const uint64_t *dims, const void *data, uint64_t size, uint32_t compression,
                             sq_err *err) {
    sq_status st = check_part(w, name, dtype, ndim, dims, size, err);
    if (st) return st;
    size_t nlen = strlen(name);
    if (compression > SQ_COMP_TCA_TBE) return fail(w, err, SQ_EUSAGE, "%s: part %s: unknown compression", name);
    if (compression == SQ_COMP_TCA_TBE && dtype != SQ_DT_BF16)
        return fail(w, err, SQ_EUSAGE, "%s: part %s: TCA-TBE codes bf16 parts only", name);
    uint64_t off, stored, sum;
    st = write_blob(w, data, size, &compression, &off, &stored, &sum, err);
    if (st) return st;
    return part_record(w, name, nlen, dtype, ndim, dims, compression, off, stored, size, sum, err);
}

sq_status sq_writer_add_part_stored(sq_writer *w, const char *name, uint32_t dtype, uint32_t ndim, const uint64_t *dims,
                                    const void *stored_data, uint64_t stored_size, uint64_t raw_size,
                                    uint32_t compression, sq_err *err) {
    sq_status st = check_part(w, name, dtype, ndim, dims, raw_size, err);
    if (st) return st;
    size_t nlen = strlen(name);
    if (compression > SQ_COMP_TCA_TBE || (compression == SQ_COMP_NONE && stored_size != raw_size) ||
        (compression == SQ_COMP_TCA_TBE && dtype != SQ_DT_BF16))
        return fail(w, err, SQ_EUSAGE, "%s: part %s: bad compression or stored size", name);
    if ((st = pad_to(w, w->opts.alignment, err))) return st;
    uint64_t off = w->pos, sum = sq_xxh64(stored_data, (size_t)stored_size, 0);
    if (compression == SQ_COMP_ZSTD) w->flags |= SQ_FLAG_ZSTD;
    if (compression == SQ_COMP_TCA_TBE) w->flags |= SQ_FLAG_TCA_TBE;
    if ((st = write_all(w, stored_data, (size_t)stored_size, err))) return st;
    return part_record(w, name, nlen, dtype, ndim, dims, compression, off, stored_size, raw_size, sum, err);
}

static sq_status part_record(sq_writer *w, const char *name, size_t nlen, uint32_t dtype, uint32_t ndim,
                             const uint64_t *dims, uint32_t compression, uint64_t off, uint64_t stored, uint64_t size,
                             uint64_t sum, sq_err *err) {
    uint8_t r[40] = {0};
    r[0] = (uint8_t)nlen;
    r[1] = (uint8_t)dtype;
    r[2] = (uint8_t)ndim;
    r[3] = (uint8_t)compression;
    put64(r + 8, off);
    put64(r + 16, stored);
    put64(r + 24, size);
    put64(r + 32, sum);
    if (buf_append(&w->rec, r, sizeof r)) return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
    for (uint32_t i = 0; i < ndim; i++) {
        uint8_t d[8];
        put64(d, dims[i]);
        if (buf_append(&w->rec, d, 8)) return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
    }
    if (buf_append(&w->rec, name, nlen) || buf_zeros(&w->rec, (size_t)(align_up(w->rec.len, 8) - w->rec.len)))
        return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
    w->rec_nparts++;
    w->total_bits += size * 8;
    return SQ_OK;
}

sq_status sq_writer_end_tensor(sq_writer *w, sq_err *err) {
    if (w->failed) return sq_err_set(err, SQ_EINTERNAL, "%s: writer already failed", w->path);
    if (!w->in_tensor) return fail(w, err, SQ_EINTERNAL, "%s: end_tensor without begin%s", "");
    if (w->rec_nparts == 0) return fail(w, err, SQ_EINTERNAL, "%s: tensor without parts%s", "");
    put32(w->rec.p, (uint32_t)w->rec.len);
    w->rec.p[10] = (uint8_t)w->rec_nparts;
    if (buf_append(&w->index, w->rec.p, w->rec.len)) return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
    w->n_tensors++;
    w->total_elems += w->cur_elems;
    w->in_tensor = 0;
    return SQ_OK;
}

sq_status sq_writer_add_appendix(sq_writer *w, uint32_t type, uint32_t flags, const void *data, uint64_t size,
                                 uint32_t compression, sq_err *err) {
    if (w->failed) return sq_err_set(err, SQ_EINTERNAL, "%s: writer already failed", w->path);
    if (w->in_tensor) return fail(w, err, SQ_EINTERNAL, "%s: appendix inside a tensor%s", "");
    if (compression > SQ_COMP_ZSTD) return fail(w, err, SQ_EUSAGE, "%s: appendix: unknown compression%s", "");
    uint64_t off, stored, sum;
    sq_status st = write_blob(w, data, size, &compression, &off, &stored, &sum, err);
    if (st) return st;
    uint8_t e[48] = {0};
    put32(e, type);
    put32(e + 4, flags);
    put32(e + 8, compression);
    put64(e + 16, off);
    put64(e + 24, stored);
    put64(e + 32, size);
    put64(e + 40, sum);
    if (buf_append(&w->appendix, e, sizeof e)) return fail(w, err, SQ_ENOMEM, "%s: out of memory%s", "");
    w->n_appendix++;
    if (type == SQ_APPX_SPARSITY) w->flags |= SQ_FLAG_SPARSE;
    if (type == SQ_APPX_EAGLE_DRAFT) w->flags |= SQ_FLAG_EAGLE_DRAFT;
    if (type == SQ_APPX_TCA_TBE) w->flags |= SQ_FLAG_TCA_TBE;
    return SQ_OK;
}

void sq_header_encode(const sq_header *h, uint8_t b[SQ_HEADER_SIZE]) {
    memset(b, 0, SQ_HEADER_SIZE);
    memcpy(b, SQ_MAGIC, 4);
    put16(b + 4, h->major);
    put16(b + 6, h->minor);
    put32(b + 8, h->header_size);
    put32(b + 12, h->alignment);
    put64(b + 16, h->flags);
    put32(b + 24, h->incompat);
    put32(b + 28, h->arch);
    put32(b + 32, h->n_layers);
    put32(b + 36, h->hidden_size);
    put32(b + 40, h->n_heads);
    put32(b + 44, h->n_kv_heads);
    put32(b + 48, h->vocab_size);
    put32(b + 52, h->intermediate_size);
    putf32(b + 56, h->avg_bpw);
    putf32(b + 60, h->sparsity);
    memcpy(b + 64, h->calib_hash, 32);
    put32(b + 96, h->n_tensors);
    put32(b + 100, h->n_appendix);
    put64(b + 104, h->index_offset);
    put64(b + 112, h->index_size);
    put64(b + 120, h->index_checksum);
    put64(b + 128, h->meta_offset);
    put64(b + 136, h->meta_stored_size);
    put64(b + 144, h->meta_raw_size);
    put64(b + 152, h->meta_checksum);
    put32(b + 160, h->meta_compression);
    put64(b + 168, h->appendix_offset);
    put64(b + 176, h->appendix_size);
    put64(b + 184, h->data_offset);
    put64(b + 192, h->data_size);
    put64(b + 200, h->file_size);
    put64(b + 208, h->appendix_checksum);
    put64(b + 248, sq_xxh64(b, 248, 0));
}

static sq_status copy_to_stream(sq_writer *w, sq_err *err) {
    if (lseek(w->fd, 0, SEEK_SET) < 0) return fail(w, err, SQ_EIO, "%s: seek failed: %s", strerror(errno));
    int out = STDOUT_FILENO;
    if (strcmp(w->path, "-") && (out = open(w->path, O_WRONLY | O_CLOEXEC)) < 0)
        return fail(w, err, SQ_EIO, "%s: cannot open for writing: %s", strerror(errno));
    sq_status st = SQ_OK;
    char b[1 << 16];
    for (;;) {
        ssize_t k = read(w->fd, b, sizeof b);
        if (k < 0) {
            if (errno == EINTR) continue;
            st = fail(w, err, SQ_EIO, "%s: read back failed: %s", strerror(errno));
            break;
        }
        if (k == 0) break;
        for (ssize_t o = 0; o < k && !st;) {
            ssize_t m = write(out, b + o, (size_t)(k - o));
            if (m < 0) {
                if (errno == EINTR) continue;
                st = fail(w, err, SQ_EIO, "%s: write failed: %s", strerror(errno));
            } else {
                o += m;
            }
        }
        if (st) break;
    }
    if (out != STDOUT_FILENO) close(out);
    return st;
}

static void writer_free(sq_writer *w) {
    if (w->fd >= 0) close(w->fd);
    if (w->tmp_path) unlink(w->tmp_path); /* no-op after a successful rename */
    sq_temp_release(w->temp_slot);
    for (size_t i = 0; i < w->n_names; i++) free(w->names[i]);
    free(w->names);
    free(w->path);
    free(w->tmp_path);
    free(w->meta);
    free(w->index.p);
    free(w->appendix.p);
    free(w->rec.p);
    free(w);
}

void sq_writer_abort(sq_writer *w) {
    if (w) writer_free(w);
}

sq_status sq_writer_commit(sq_writer *w, sq_err *err) {
    sq_status st = SQ_OK;
    if (w->failed) { st = sq_err_set(err, SQ_EINTERNAL, "%s: writer already failed", w->path); goto out; }
    if (w->in_tensor) { st = fail(w, err, SQ_EINTERNAL, "%s: commit inside a tensor%s", ""); goto out; }
    sq_header h;
    memset(&h, 0, sizeof h);
    h.major = SQ_VERSION_MAJOR;
    h.minor = SQ_VERSION_MINOR;
    h.header_size = SQ_HEADER_SIZE;
    h.alignment = w->opts.alignment;
    h.arch = w->info.arch;
    h.n_layers = w->info.n_layers;
    h.hidden_size = w->info.hidden_size;
    h.n_heads = w->info.n_heads;
    h.n_kv_heads = w->info.n_kv_heads;
    h.vocab_size = w->info.vocab_size;
    h.intermediate_size = w->info.intermediate_size;
    h.sparsity = w->info.sparsity;
    memcpy(h.calib_hash, w->info.calib_hash, 32);
    h.avg_bpw = w->total_elems ? (float)((double)w->total_bits / (double)w->total_elems) : 0.0f;
    h.n_tensors = w->n_tensors;
    h.n_appendix = w->n_appendix;
    h.data_offset = SQ_HEADER_SIZE;
    h.data_size = w->pos - SQ_HEADER_SIZE;

    if ((st = pad_to(w, 8, err))) goto out;
    h.index_offset = w->pos;
    h.index_size = w->index.len;
    h.index_checksum = sq_xxh64(w->index.p, w->index.len, 0);
    if ((st = write_all(w, w->index.p, w->index.len, err))) goto out;

    const char *meta = w->meta ? w->meta : "{}";
    size_t mlen = strlen(meta);
    const void *msrc = meta;
    size_t mstored = mlen;
    void *mpacked = NULL;
    h.meta_compression = SQ_COMP_NONE;
    if (w->opts.compress_meta) {
        size_t plen;
        mpacked = zstd_pack(meta, mlen, w->opts.zstd_level, &plen);
        if (mpacked && plen < mlen) {
            msrc = mpacked;
            mstored = plen;
            h.meta_compression = SQ_COMP_ZSTD;
            w->flags |= SQ_FLAG_ZSTD;
        }
    }
    if ((st = pad_to(w, 8, err))) { free(mpacked); goto out; }
    h.meta_offset = w->pos;
    h.meta_stored_size = mstored;
    h.meta_raw_size = mlen;
    h.meta_checksum = sq_xxh64(msrc, mstored, 0);
    st = write_all(w, msrc, mstored, err);
    free(mpacked);
    if (st) goto out;

    if ((st = pad_to(w, 8, err))) goto out;
    h.appendix_offset = w->pos;
    h.appendix_size = w->appendix.len;
    h.appendix_checksum = sq_xxh64(w->appendix.p, w->appendix.len, 0);
    if ((st = write_all(w, w->appendix.p, w->appendix.len, err))) goto out;
    h.file_size = w->pos;
    h.flags = w->flags;

    uint8_t hb[SQ_HEADER_SIZE];
    sq_header_encode(&h, hb);
    if (pwrite(w->fd, hb, sizeof hb, 0) != (ssize_t)sizeof hb) {
        st = fail(w, err, SQ_EIO, "%s: writing header failed: %s", strerror(errno));
        goto out;
    }
    if (w->stream) {
        st = copy_to_stream(w, err);
        goto out;
    }
    if (fsync(w->fd) != 0) { st = fail(w, err, SQ_EIO, "%s: fsync failed: %s", strerror(errno)); goto out; }
    if (rename(w->tmp_path, w->path) != 0) {
        st = fail(w, err, SQ_EIO, "%s: rename into place failed: %s", strerror(errno));
        goto out;
    }
    free(w->tmp_path);
    w->tmp_path = NULL;
    {
        char *dcopy = strdup(w->path);
        if (dcopy) {
            int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) { fsync(dfd); close(dfd); }
            free(dcopy);
        }
    }
out:
    writer_free(w);
    return st;
}
