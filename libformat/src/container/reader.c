/* .squizd reader: mmap, validate every field against the file size before
 * use, zero-copy access to uncompressed parts. Every error names the file,
 * the field and its byte offset. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/bytes.h"
#include "squish/container.h"
#include "squish/hash.h"
#include "squish/tca_tbe.h"

/* Largest decompressed size accepted for one part or section (hostile
 * raw_size fields must not trigger huge allocations). */
#define SQ_MAX_RAW (1ull << 40)

struct sq_file {
    char *path;
    uint8_t *map;
    uint64_t size;
    int mapped;
    sq_header h;
    sq_tensor *tensors;
    uint32_t n_tensors, n_alloc; /* n_alloc: records whose name was allocated */
    sq_appendix *appx;
    uint32_t n_appx;
    char *meta;
    uint64_t blobs_end; /* where the part or appendix blob that ends last ends */
};

const char *sq_file_path(const sq_file *f) { return f->path; }
const sq_header *sq_file_header(const sq_file *f) { return &f->h; }
const uint8_t *sq_file_bytes(const sq_file *f, uint64_t *size) {
    if (size) *size = f->size;
    return f->map;
}
uint32_t sq_file_ntensors(const sq_file *f) { return f->n_tensors; }
const sq_tensor *sq_file_tensor(const sq_file *f, uint32_t i) { return i < f->n_tensors ? &f->tensors[i] : NULL; }
uint32_t sq_file_nappendix(const sq_file *f) { return f->n_appx; }
const sq_appendix *sq_file_appendix(const sq_file *f, uint32_t i) { return i < f->n_appx ? &f->appx[i] : NULL; }

const sq_tensor *sq_file_find(const sq_file *f, const char *name) {
    for (uint32_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const sq_part *sq_tensor_part(const sq_tensor *t, const char *name) {
    for (uint32_t i = 0; i < t->n_parts; i++)
        if (!strcmp(t->parts[i].name, name)) return &t->parts[i];
    return NULL;
}

void sq_close(sq_file *f) {
    if (!f) return;
    if (f->map) {
        if (f->mapped) munmap(f->map, f->size);
        else free(f->map);
    }
    for (uint32_t i = 0; i < f->n_alloc; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->appx);
    free(f->meta);
    free(f->path);
    free(f);
}

static sq_status load_stdin(sq_file *f, sq_err *err) {
    size_t cap = 1 << 20, len = 0;
    uint8_t *b = malloc(cap);
    if (!b) return sq_err_set(err, SQ_ENOMEM, "-: out of memory reading standard input");
    for (;;) {
        if (len == cap) {
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) { free(b); return sq_err_set(err, SQ_ENOMEM, "-: out of memory reading standard input"); }
            b = nb;
            cap *= 2;
        }
        ssize_t k = read(STDIN_FILENO, b + len, cap - len);
        if (k < 0) {
            if (errno == EINTR) continue;
            free(b);
            return sq_err_set(err, SQ_EIO, "-: read failed: %s", strerror(errno));
        }
        if (k == 0) break;
        len += (size_t)k;
    }
    f->map = b;
    f->size = len;
    return SQ_OK;
}

/* The first piece of a split set, "BASE-00001-of-NNNNN.squizd": returns
 * NNNNN (0 when path is not one) and the length of BASE. */
static unsigned split_count(const char *path, size_t *base_len) {
    size_t n = strlen(path);
    if (n < 22 || strcmp(path + n - 7, ".squizd")) return 0;
    const char *p = path + n - 22;
    if (strncmp(p, "-00001-of-", 10)) return 0;
    unsigned c = 0;
    for (int i = 10; i < 15; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        c = c * 10 + (unsigned)(p[i] - '0');
    }
    *base_len = (size_t)(p - path);
    return c;
}

/* Maps the pieces of a split set next to each other in one reserved range,
 * so the set reads as one file with zero copies (spec/squizd.md §8). */
static sq_status load_split(sq_file *f, unsigned count, size_t base_len, sq_err *err) {
    const long page = sysconf(_SC_PAGESIZE);
    int *fds = malloc(count * sizeof *fds);
    uint64_t *sizes = malloc(count * sizeof *sizes), total = 0;
    char *piece = malloc(base_len + 32);
    sq_status st = SQ_OK;
    unsigned opened = 0;
    if (!fds || !sizes || !piece) st = sq_err_set(err, SQ_ENOMEM, "%s: out of memory", f->path);
    for (unsigned i = 0; !st && i < count; i++) {
        sprintf(piece, "%.*s-%05u-of-%05u.squizd", (int)base_len, f->path, i + 1, count);
        struct stat stt;
        fds[i] = open(piece, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            st = sq_err_set(err, SQ_EIO, "%s: piece %u of %u of the split set is missing: %s: %s", f->path, i + 1, count,
                            piece, strerror(errno));
            break;
        }
        opened++;
        if (fstat(fds[i], &stt) != 0 || !S_ISREG(stt.st_mode)) {
            st = sq_err_set(err, SQ_EIO, "%s: not a regular file", piece);
            break;
        }
        sizes[i] = (uint64_t)stt.st_size;
        total += sizes[i];
        /* every piece but the last has the first piece's size, a multiple of 64 KiB */
        if (!sizes[i] || (i > 0 && i + 1 < count && sizes[i] != sizes[0]) || (i + 1 == count && sizes[i] > sizes[0]) ||
            (i + 1 < count && (sizes[i] % 65536 || sizes[i] % (uint64_t)page)))
            st = sq_err_set(err, SQ_ECORRUPT, "%s: piece %s has %llu bytes: pieces must all have the first one's size (a "
                            "multiple of 64 KiB) except a shorter, non-empty last one", f->path, piece,
                            (unsigned long long)sizes[i]);
    }
    uint8_t *base = NULL;
    if (!st) {
        void *r = mmap(NULL, (size_t)total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r == MAP_FAILED) st = sq_err_set(err, SQ_EIO, "%s: cannot reserve %llu bytes: %s", f->path,
                                             (unsigned long long)total, strerror(errno));
        else base = r;
    }
    uint64_t off = 0;
    for (unsigned i = 0; !st && i < count; i++) {
        void *m = mmap(base + off, (size_t)sizes[i], PROT_READ, MAP_PRIVATE | MAP_FIXED, fds[i], 0);
        if (m == MAP_FAILED) st = sq_err_set(err, SQ_EIO, "%s: mmap of piece %u failed: %s", f->path, i + 1, strerror(errno));
        off += sizes[i];
    }
    for (unsigned i = 0; i < opened; i++) close(fds[i]);
    if (st && base) munmap(base, (size_t)total);
    if (!st) {
        f->map = base;
        f->size = total;
        f->mapped = 1;
    }
    free(fds);
    free(sizes);
    free(piece);
    return st;
}

static sq_status load_file(sq_file *f, sq_err *err) {
    size_t base_len;
    unsigned pieces = split_count(f->path, &base_len);
    if (pieces > 1) return load_split(f, pieces, base_len, err);
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sq_err_set(err, SQ_EIO, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return sq_err_set(err, SQ_EIO, "%s: cannot stat: %s", f->path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sq_err_set(err, SQ_EIO, "%s: not a regular file", f->path);
    }
    f->size = (uint64_t)st.st_size;
    if (f->size == 0) {
        close(fd);
        return sq_err_set(err, SQ_ECORRUPT, "%s: empty file (a .squizd file starts with a 256-byte header)", f->path);
    }
    void *m = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return sq_err_set(err, SQ_EIO, "%s: mmap failed: %s", f->path, strerror(errno));
    f->map = m;
    f->mapped = 1;
    return SQ_OK;
}

static sq_status parse_header(sq_file *f, sq_err *err) {
    const uint8_t *b = f->map;
    const char *p = f->path;
    if (f->size < 4 || memcmp(b, SQ_MAGIC, 4) != 0)
        return sq_err_set(err, SQ_ECORRUPT, "%s: not a .squizd file: magic at offset 0 is not \"SQZD\"", p);
    if (f->size < SQ_HEADER_SIZE)
        return sq_err_set(err, SQ_ECORRUPT, "%s: truncated: file is %llu bytes, the header alone needs 256", p,
                          (unsigned long long)f->size);
    sq_header *h = &f->h;
    h->major = get16(b + 4);
    h->minor = get16(b + 6);
    if (h->major != SQ_VERSION_MAJOR)
        return sq_err_set(err, h->major > SQ_VERSION_MAJOR ? SQ_EUNSUPPORTED : SQ_ECORRUPT,
                          "%s: format version %u.%u (offset 4) is not supported; this reader handles %u.x", p,
                          h->major, h->minor, SQ_VERSION_MAJOR);
    h->header_checksum = get64(b + 248);
    uint64_t hsum = sq_xxh64(b, 248, 0);
    if (hsum != h->header_checksum)
        return sq_err_set(err, SQ_ECORRUPT,
                          "%s: header checksum mismatch (offset 248: stored %016llx, computed %016llx)", p,
                          (unsigned long long)h->header_checksum, (unsigned long long)hsum);
    h->header_size = get32(b + 8);
    h->alignment = get32(b + 12);
    h->flags = get64(b + 16);
    h->incompat = get32(b + 24);
    h->arch = get32(b + 28);
    h->n_layers = get32(b + 32);
    h->hidden_size = get32(b + 36);
    h->n_heads = get32(b + 40);
    h->n_kv_heads = get32(b + 44);
    h->vocab_size = get32(b + 48);
    h->intermediate_size = get32(b + 52);
    h->avg_bpw = getf32(b + 56);
    h->sparsity = getf32(b + 60);
    memcpy(h->calib_hash, b + 64, 32);
    h->n_tensors = get32(b + 96);
    h->n_appendix = get32(b + 100);
    h->index_offset = get64(b + 104);
    h->index_size = get64(b + 112);
    h->index_checksum = get64(b + 120);
    h->meta_offset = get64(b + 128);
    h->meta_stored_size = get64(b + 136);
    h->meta_raw_size = get64(b + 144);
    h->meta_checksum = get64(b + 152);
    h->meta_compression = get32(b + 160);
    h->appendix_offset = get64(b + 168);
    h->appendix_size = get64(b + 176);
    h->data_offset = get64(b + 184);
    h->data_size = get64(b + 192);
    h->file_size = get64(b + 200);
    h->appendix_checksum = get64(b + 208);

    if (h->header_size != SQ_HEADER_SIZE)
        return sq_err_set(err, SQ_ECORRUPT, "%s: header_size (offset 8) is %u, must be 256", p, h->header_size);
    if (h->incompat & ~SQ_INCOMPAT_KNOWN_MASK)
        return sq_err_set(err, SQ_EUNSUPPORTED, "%s: incompatible feature bits 0x%x (offset 24) not understood", p,
                          h->incompat);
    if (h->alignment < SQ_MIN_ALIGN || h->alignment > SQ_MAX_ALIGN || (h->alignment & (h->alignment - 1)))
        return sq_err_set(err, SQ_ECORRUPT, "%s: alignment (offset 12) is %u, must be a power of two in [64, 2^20]",
                          p, h->alignment);
    if (h->file_size != f->size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %s: file is %llu bytes but file_size (offset 200) says %llu", p,
                          f->size < h->file_size ? "truncated" : "trailing bytes", (unsigned long long)f->size,
                          (unsigned long long)h->file_size);
    if (h->meta_compression > SQ_COMP_ZSTD)
        return sq_err_set(err, SQ_EUNSUPPORTED, "%s: meta_compression (offset 160) = %u is unknown", p,
                          h->meta_compression);
    /* Sections: inside the file, in order, not overlapping. */
    struct { const char *name; int off_at; uint64_t off, len; } sec[4] = {
        {"data", 184, h->data_offset, h->data_size},
        {"index", 104, h->index_offset, h->index_size},
        {"metadata", 128, h->meta_offset, h->meta_stored_size},
        {"appendix table", 168, h->appendix_offset, h->appendix_size}};
    uint64_t prev_end = SQ_HEADER_SIZE;
    for (int i = 0; i < 4; i++) {
        uint64_t end;
        if (!add_ok(sec[i].off, sec[i].len, &end) || end > f->size)
            return sq_err_set(err, SQ_ECORRUPT, "%s: %s section (offset field at %d) [%llu, +%llu) runs past end of file (%llu bytes)",
                              p, sec[i].name, sec[i].off_at, (unsigned long long)sec[i].off,
                              (unsigned long long)sec[i].len, (unsigned long long)f->size);
        if (sec[i].off < prev_end)
            return sq_err_set(err, SQ_ECORRUPT, "%s: %s section offset (field at %d) = %llu overlaps the previous section (ends at %llu)",
                              p, sec[i].name, sec[i].off_at, (unsigned long long)sec[i].off,
                              (unsigned long long)prev_end);
        prev_end = end;
    }
    if (prev_end != f->size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %llu bytes after the last section (the appendix table ends at byte %llu, "
                          "file_size is %llu)", p, (unsigned long long)(f->size - prev_end), (unsigned long long)prev_end,
                          (unsigned long long)f->size);
    /* the bytes between sections are zero padding (spec §1) */
    for (int i = 1; i < 4; i++) {
        uint64_t from = sec[i - 1].off + sec[i - 1].len;
        for (uint64_t k = from; k < sec[i].off; k++)
            if (b[k])
                return sq_err_set(err, SQ_ECORRUPT, "%s: padding between the %s and the %s section (bytes %llu..%llu) is not "
                                  "zero: byte %llu is 0x%02x", p, sec[i - 1].name, sec[i].name, (unsigned long long)from,
                                  (unsigned long long)sec[i].off - 1, (unsigned long long)k, b[k]);
    }
    if (h->data_offset != SQ_HEADER_SIZE)
        return sq_err_set(err, SQ_ECORRUPT, "%s: data_offset (offset 184) is %llu, must be 256", p,
                          (unsigned long long)h->data_offset);
    if (h->meta_compression == SQ_COMP_NONE && h->meta_raw_size != h->meta_stored_size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: meta_raw_size (offset 144) differs from meta_stored_size for uncompressed metadata", p);
    if (h->meta_raw_size > SQ_MAX_RAW)
        return sq_err_set(err, SQ_ENOMEM, "%s: meta_raw_size (offset 144) = %llu exceeds the 1 TiB limit", p,
                          (unsigned long long)h->meta_raw_size);
    if ((uint64_t)h->n_appendix * 48 != h->appendix_size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: appendix_size (offset 176) = %llu but n_appendix (offset 100) = %u needs %llu", p,
                          (unsigned long long)h->appendix_size, h->n_appendix, (unsigned long long)h->n_appendix * 48);
    uint64_t isum = sq_xxh64(b + h->index_offset, (size_t)h->index_size, 0);
    if (isum != h->index_checksum)
        return sq_err_set(err, SQ_ECORRUPT, "%s: index checksum mismatch (field at offset 120: stored %016llx, computed %016llx)", p,
                          (unsigned long long)h->index_checksum, (unsigned long long)isum);
    uint64_t asum = sq_xxh64(b + h->appendix_offset, (size_t)h->appendix_size, 0);
    if (asum != h->appendix_checksum)
        return sq_err_set(err, SQ_ECORRUPT, "%s: appendix table checksum mismatch (field at offset 208: stored %016llx, computed %016llx)", p,
                          (unsigned long long)h->appendix_checksum, (unsigned long long)asum);
    return SQ_OK;
}

static int valid_name(const uint8_t *s, size_t n) {
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

/* Checks a data blob's placement: aligned, inside the data region. */
static sq_status check_blob(sq_file *f, const char *what, uint64_t field_at, uint64_t off, uint64_t len,
                            sq_err *err) {
    const sq_header *h = &f->h;
    uint64_t end;
    if (off % h->alignment)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %s: offset (field at byte %llu) = %llu is not aligned to %u", f->path,
                          what, (unsigned long long)field_at, (unsigned long long)off, h->alignment);
    if (off < h->data_offset || !add_ok(off, len, &end) || end > h->data_offset + h->data_size)
        return sq_err_set(err, SQ_ECORRUPT,
                          "%s: %s: [%llu, +%llu) (offset field at byte %llu) is outside the data section [%llu, %llu)",
                          f->path, what, (unsigned long long)off, (unsigned long long)len, (unsigned long long)field_at,
                          (unsigned long long)h->data_offset, (unsigned long long)(h->data_offset + h->data_size));
    if (end > f->blobs_end) f->blobs_end = end;
    return SQ_OK;
}

static sq_status parse_part(sq_file *f, const sq_tensor *t, sq_part *pt, const uint8_t *rec, uint64_t at,
                            uint64_t avail, uint64_t *used, sq_err *err) {
    const char *p = f->path;
    if (avail < 40)
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: part record at byte %llu is truncated (%llu bytes left, needs 40)",
                          p, t->name, (unsigned long long)at, (unsigned long long)avail);
    uint32_t nlen = rec[0];
    pt->dtype = rec[1];
    pt->ndim = rec[2];
    pt->compression = rec[3];
    pt->offset = get64(rec + 8);
    pt->stored_size = get64(rec + 16);
    pt->raw_size = get64(rec + 24);
    pt->checksum = get64(rec + 32);
    pt->rec_offset = at;
    if (get32(rec + 4) != 0)
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: part record at byte %llu: reserved bytes 4..7 are not zero", p,
                          t->name, (unsigned long long)at);
    if (nlen < 1 || nlen > SQ_MAX_PART_NAME)
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: part name length (byte %llu) = %u, must be 1..32", p, t->name,
                          (unsigned long long)at, nlen);
    if (pt->ndim < 1 || pt->ndim > 4)
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: part ndim (byte %llu) = %u, must be 1..4", p, t->name,
                          (unsigned long long)(at + 2), pt->ndim);
    uint64_t need = align_up(40 + 8ull * pt->ndim + nlen, 8);
    if (avail < need)
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: part record at byte %llu is truncated (needs %llu bytes, %llu left)",
                          p, t->name, (unsigned long long)at, (unsigned long long)need, (unsigned long long)avail);
    const uint8_t *nm = rec + 40 + 8 * pt->ndim;
    if (!valid_name(nm, nlen))
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: part name at byte %llu contains control or NUL bytes", p,
                          t->name, (unsigned long long)(at + 40 + 8 * pt->ndim));
    memcpy(pt->name, nm, nlen);
    pt->name[nlen] = 0;
    size_t esz = sq_dtype_size(pt->dtype);
    if (!esz)
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s part %s: dtype (byte %llu) = %u is not a known type", p,
                          t->name, pt->name, (unsigned long long)(at + 1), pt->dtype);
    if (pt->compression > SQ_COMP_TCA_TBE)
        return sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s part %s: compression (byte %llu) = %u is unknown", p,
                          t->name, pt->name, (unsigned long long)(at + 3), pt->compression);
    if (pt->compression == SQ_COMP_TCA_TBE && pt->dtype != SQ_DT_BF16)
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s part %s: compression (byte %llu) = 2 (TCA-TBE) codes bf16 parts "
                          "only, this part is %s", p, t->name, pt->name, (unsigned long long)(at + 3),
                          sq_dtype_name(pt->dtype));
    uint64_t bytes = esz;
    for (uint32_t i = 0; i < pt->ndim; i++) {
        pt->dims[i] = get64(rec + 40 + 8 * i);
        if (!mul_ok(bytes, pt->dims[i], &bytes))
            return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s part %s: shape (byte %llu) overflows 64 bits", p, t->name,
                              pt->name, (unsigned long long)(at + 40));
    }
    if (bytes != pt->raw_size)
        return sq_err_set(err, SQ_ECORRUPT,
                          "%s: tensor %s part %s: raw_size (byte %llu) = %llu but dtype and shape give %llu", p,
                          t->name, pt->name, (unsigned long long)(at + 24), (unsigned long long)pt->raw_size,
                          (unsigned long long)bytes);
    if (pt->raw_size > SQ_MAX_RAW)
        return sq_err_set(err, SQ_ENOMEM, "%s: tensor %s part %s: raw_size (byte %llu) exceeds the 1 TiB limit", p,
                          t->name, pt->name, (unsigned long long)(at + 24));
    if (pt->compression == SQ_COMP_NONE && pt->stored_size != pt->raw_size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s part %s: stored_size (byte %llu) != raw_size for an uncompressed part",
                          p, t->name, pt->name, (unsigned long long)(at + 16));
    if (pt->compression == SQ_COMP_TCA_TBE) { /* between no escape and one per value (spec §13.3 T2) */
        uint64_t n = pt->raw_size / 2, lo = sq_tbe_coded_size(n, 0), hi = sq_tbe_coded_size(n, n);
        if (pt->stored_size < lo || pt->stored_size > hi)
            return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s part %s: stored_size (byte %llu) = %llu cannot hold %llu "
                              "TCA-TBE-coded values (%llu..%llu bytes)", p, t->name, pt->name,
                              (unsigned long long)(at + 16), (unsigned long long)pt->stored_size,
                              (unsigned long long)n, (unsigned long long)lo, (unsigned long long)hi);
    }
    char what[SQ_MAX_NAME + 64];
    snprintf(what, sizeof what, "tensor %s part %s", t->name, pt->name);
    sq_status st = check_blob(f, what, at + 8, pt->offset, pt->stored_size, err);
    if (st) return st;
    for (uint64_t k = 40 + 8ull * pt->ndim + nlen; k < need; k++)
        if (rec[k]) return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s part %s: padding after the name is not zero", p,
                                           t->name, pt->name);
    *used = need;
    return SQ_OK;
}

static sq_status parse_index(sq_file *f, sq_err *err) {
    const char *p = f->path;
    const sq_header *h = &f->h;
    const uint8_t *base = f->map + h->index_offset;
    uint64_t size = h->index_size, pos = 0;
    /* Each record takes at least 48+8+8+40+8+8 bytes: bound n before allocating. */
    if ((uint64_t)h->n_tensors * 112 > size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: n_tensors (offset 96) = %u cannot fit in an index of %llu bytes", p,
                          h->n_tensors, (unsigned long long)size);
    f->tensors = calloc(h->n_tensors ? h->n_tensors : 1, sizeof *f->tensors);
    if (!f->tensors) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory for %u tensors", p, h->n_tensors);
    for (uint32_t i = 0; i < h->n_tensors; i++) {
        uint64_t at = h->index_offset + pos;
        uint64_t avail = size - pos;
        const uint8_t *r = base + pos;
        if (avail < 48)
            return sq_err_set(err, SQ_ECORRUPT, "%s: index: tensor record %u at byte %llu is truncated", p, i,
                              (unsigned long long)at);
        sq_tensor *t = &f->tensors[i];
        uint32_t rlen = get32(r);
        uint32_t nlen = get16(r + 4);
        t->ndim = r[6];
        t->src_dtype = r[7];
        t->codec = get16(r + 8);
        t->n_parts = r[10];
        t->rec_offset = at;
        if (rlen < 48 || rlen > avail || rlen % 8)
            return sq_err_set(err, SQ_ECORRUPT, "%s: index: tensor record %u: record_len (byte %llu) = %u is invalid (%llu bytes left)",
                              p, i, (unsigned long long)at, rlen, (unsigned long long)avail);
        if (r[11] || get32(r + 12))
            return sq_err_set(err, SQ_ECORRUPT, "%s: index: tensor record %u: reserved bytes at %llu are not zero", p, i,
                              (unsigned long long)(at + 11));
        if (nlen < 1 || nlen > SQ_MAX_NAME)
            return sq_err_set(err, SQ_ECORRUPT, "%s: index: tensor record %u: name_len (byte %llu) = %u, must be 1..1024", p,
                              i, (unsigned long long)(at + 4), nlen);
        if (t->ndim < 1 || t->ndim > SQ_MAX_NDIM)
            return sq_err_set(err, SQ_ECORRUPT, "%s: index: tensor record %u: ndim (byte %llu) = %u, must be 1..8", p, i,
                              (unsigned long long)(at + 6), t->ndim);
        if (t->n_parts < 1 || t->n_parts > SQ_MAX_PARTS)
            return sq_err_set(err, SQ_ECORRUPT, "%s: index: tensor record %u: n_parts (byte %llu) = %u, must be 1..16", p, i,
                              (unsigned long long)(at + 10), t->n_parts);
        uint64_t head = align_up(48 + 8ull * t->ndim + nlen, 8);
        if (head > rlen)
            return sq_err_set(err, SQ_ECORRUPT, "%s: index: tensor record %u at byte %llu: name and shape run past record_len %u", p,
                              i, (unsigned long long)at, rlen);
        const uint8_t *nm = r + 48 + 8 * t->ndim;
        if (!valid_name(nm, nlen))
            return sq_err_set(err, SQ_ECORRUPT, "%s: index: tensor record %u: name at byte %llu contains control or NUL bytes", p,
                              i, (unsigned long long)(at + 48 + 8 * t->ndim));
        t->name = malloc(nlen + 1);
        if (!t->name) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", p);
        f->n_alloc = i + 1;
        memcpy(t->name, nm, nlen);
        t->name[nlen] = 0;
        for (uint64_t k = 48 + 8ull * t->ndim + nlen; k < head; k++)
            if (r[k]) return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: padding after the name (byte %llu) is not zero", p,
                                        t->name, (unsigned long long)(at + k));
        if (!sq_dtype_size(t->src_dtype))
            return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: source dtype (byte %llu) = %u is not a known type", p, t->name,
                              (unsigned long long)(at + 7), t->src_dtype);
        for (int k = 0; k < SQ_NPARAMS; k++) t->params[k] = get32(r + 16 + 4 * k);
        uint64_t elems = 1;
        for (uint32_t k = 0; k < t->ndim; k++) {
            t->dims[k] = get64(r + 48 + 8 * k);
            if (!mul_ok(elems, t->dims[k], &elems))
                return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: shape (byte %llu) overflows 64 bits", p, t->name,
                                  (unsigned long long)(at + 48));
        }
        uint64_t off = head;
        for (uint32_t k = 0; k < t->n_parts; k++) {
            uint64_t used;
            sq_status st = parse_part(f, t, &t->parts[k], r + off, at + off, rlen - off, &used, err);
            if (st) return st;
            for (uint32_t j = 0; j < k; j++)
                if (!strcmp(t->parts[j].name, t->parts[k].name))
                    return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: part name %s appears twice", p, t->name,
                                      t->parts[k].name);
            off += used;
        }
        if (off != rlen)
            return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: record_len (byte %llu) = %u but its fields take %llu bytes", p,
                              t->name, (unsigned long long)at, rlen, (unsigned long long)off);
        f->n_tensors = i + 1;
        pos += rlen;
    }
    if (pos != size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: index: %llu bytes left over after %u tensor records (index_size at offset 112)",
                          p, (unsigned long long)(size - pos), h->n_tensors);
    return SQ_OK;
}

static sq_status parse_appendix(sq_file *f, sq_err *err) {
    const sq_header *h = &f->h;
    f->appx = calloc(h->n_appendix ? h->n_appendix : 1, sizeof *f->appx);
    if (!f->appx) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", f->path);
    for (uint32_t i = 0; i < h->n_appendix; i++) {
        uint64_t at = h->appendix_offset + 48ull * i;
        const uint8_t *e = f->map + at;
        sq_appendix *a = &f->appx[i];
        a->type = get32(e);
        a->flags = get32(e + 4);
        uint32_t comp = get32(e + 8);
        a->offset = get64(e + 16);
        a->stored_size = get64(e + 24);
        a->raw_size = get64(e + 32);
        a->checksum = get64(e + 40);
        if (comp > SQ_COMP_ZSTD)
            return sq_err_set(err, SQ_EUNSUPPORTED, "%s: appendix %u: compression (byte %llu) = %u is unknown", f->path, i,
                              (unsigned long long)(at + 8), comp);
        a->flags = (a->flags & 0xffu) | (comp << 8); /* keep compression with the flags */
        if (get32(e + 4) & ~SQ_APPX_F_REQUIRED)
            return sq_err_set(err, SQ_ECORRUPT, "%s: appendix %u: undefined flag bits 0x%x (byte %llu)", f->path, i,
                              get32(e + 4) & ~SQ_APPX_F_REQUIRED, (unsigned long long)(at + 4));
        if (get32(e + 12))
            return sq_err_set(err, SQ_ECORRUPT, "%s: appendix %u: reserved bytes at %llu are not zero", f->path, i,
                              (unsigned long long)(at + 12));
        if (comp == SQ_COMP_NONE && a->raw_size != a->stored_size)
            return sq_err_set(err, SQ_ECORRUPT, "%s: appendix %u: raw_size (byte %llu) != stored_size for uncompressed data",
                              f->path, i, (unsigned long long)(at + 32));
        if (a->raw_size > SQ_MAX_RAW)
            return sq_err_set(err, SQ_ENOMEM, "%s: appendix %u: raw_size (byte %llu) exceeds the 1 TiB limit", f->path, i,
                              (unsigned long long)(at + 32));
        char what[64];
        snprintf(what, sizeof what, "appendix %u", i);
        sq_status st = check_blob(f, what, at + 16, a->offset, a->stored_size, err);
        if (st) return st;
        int known = a->type >= SQ_APPX_SPARSITY && a->type <= SQ_APPX_FILE;
        if (!known && (get32(e + 4) & SQ_APPX_F_REQUIRED))
            return sq_err_set(err, SQ_EUNSUPPORTED, "%s: appendix %u has unknown type %u marked required (byte %llu)", f->path,
                              i, a->type, (unsigned long long)at);
        f->n_appx = i + 1;
    }
    return SQ_OK;
}

/* The data region holds the blobs and their alignment padding, nothing after the last blob. */
static sq_status check_data_end(const sq_file *f, sq_err *err) {
    const sq_header *h = &f->h;
    uint64_t end = f->blobs_end > h->data_offset ? f->blobs_end : h->data_offset;
    if (end != h->data_offset + h->data_size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: data_size (offset 192) = %llu ends the data region at byte %llu, but the last "
                          "part or appendix blob ends at byte %llu", f->path, (unsigned long long)h->data_size,
                          (unsigned long long)(h->data_offset + h->data_size), (unsigned long long)end);
    return SQ_OK;
}

static sq_file *open_common(const char *path, const void *data, size_t len, sq_err *err) {
    sq_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    sq_status st;
    if (data) {
        f->map = malloc(len ? len : 1);
        f->size = len;
        st = f->map ? SQ_OK : sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
        if (f->map) memcpy(f->map, data, len);
    } else {
        st = !strcmp(path, "-") ? load_stdin(f, err) : load_file(f, err);
    }
    if (!st) st = parse_header(f, err);
    if (!st) st = parse_index(f, err);
    if (!st) st = parse_appendix(f, err);
    if (!st) st = check_data_end(f, err);
    if (st) {
        sq_close(f);
        return NULL;
    }
    return f;
}

sq_file *sq_open(const char *path, sq_err *err) { return open_common(path, NULL, 0, err); }

sq_file *sq_open_mem(const char *name, const void *data, size_t len, sq_err *err) {
    static const uint8_t empty;
    return open_common(name, data ? data : &empty, len, err);
}

/* A compressed blob is exactly one zstd frame (magic 28 B5 2F FD) that
 * declares raw_size as its content size. zstd's own error is reported as
 * such, never as a size (its error codes are huge numbers). */
static sq_status check_zstd_frame(const sq_file *f, const char *what, uint64_t off, const uint8_t *src, uint64_t stored,
                                  uint64_t raw, sq_err *err) {
    static const uint8_t magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    if (stored < 4 || memcmp(src, magic, 4))
        return sq_err_set(err, SQ_ECORRUPT, "%s: %s: data at %llu is not a zstd frame (no zstd magic number)", f->path, what,
                          (unsigned long long)off);
    size_t fsz = ZSTD_findFrameCompressedSize(src, (size_t)stored);
    if (ZSTD_isError(fsz))
        return sq_err_set(err, SQ_ECORRUPT, "%s: %s: zstd frame at %llu is damaged: %s", f->path, what,
                          (unsigned long long)off, ZSTD_getErrorName(fsz));
    if (fsz != stored)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %s: %llu bytes follow the zstd frame at %llu (stored_size %llu holds one "
                          "frame of %zu bytes)", f->path, what, (unsigned long long)(stored - fsz), (unsigned long long)off,
                          (unsigned long long)stored, fsz);
    unsigned long long fcs = ZSTD_getFrameContentSize(src, (size_t)stored);
    if (fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs == ZSTD_CONTENTSIZE_ERROR)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %s: zstd frame at %llu does not declare its content size", f->path, what,
                          (unsigned long long)off);
    if (fcs != raw)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %s: zstd frame at %llu declares %llu bytes, index says %llu", f->path, what,
                          (unsigned long long)off, fcs, (unsigned long long)raw);
    return SQ_OK;
}

/* A TCA-TBE part (bf16, checked at open): every rule of spec §13.3 is
 * checked before a value is decoded. */
static sq_status read_tbe(const sq_file *f, const char *what, uint64_t off, const uint8_t *src, uint64_t stored, uint64_t raw,
                          const void **ptr, void **owned, sq_err *err) {
    uint16_t *out = malloc(raw ? (size_t)raw : 1);
    if (!out)
        return sq_err_set(err, SQ_ENOMEM, "%s: %s: cannot allocate %llu bytes to decode", f->path, what,
                          (unsigned long long)raw);
    sq_err e;
    if (sq_tbe_decode(src, stored, raw / 2, out, &e)) {
        free(out);
        return sq_err_set(err, e.status, "%s: %s: TCA-TBE data at %llu: %s", f->path, what, (unsigned long long)off, e.msg);
    }
    *ptr = out;
    *owned = out;
    return SQ_OK;
}

/* Decompresses, decodes or maps a blob; verifies the checksum first. */
static sq_status read_blob(const sq_file *f, const char *what, uint64_t off, uint64_t stored, uint64_t raw,
                           uint32_t comp, uint64_t sum, int skip_sum, const void **ptr, void **owned, sq_err *err) {
    const uint8_t *src = f->map + off;
    *ptr = NULL;
    *owned = NULL;
    if (!skip_sum) {
        uint64_t c = sq_xxh64(src, (size_t)stored, 0);
        if (c != sum)
            return sq_err_set(err, SQ_ECORRUPT, "%s: %s: checksum mismatch (data at %llu: stored %016llx, computed %016llx)",
                              f->path, what, (unsigned long long)off, (unsigned long long)sum, (unsigned long long)c);
    }
    if (comp == SQ_COMP_NONE) {
        *ptr = src;
        return SQ_OK;
    }
    if (comp == SQ_COMP_TCA_TBE) return read_tbe(f, what, off, src, stored, raw, ptr, owned, err);
    sq_status st = check_zstd_frame(f, what, off, src, stored, raw, err);
    if (st) return st;
    void *out = malloc(raw ? (size_t)raw : 1);
    if (!out)
        return sq_err_set(err, SQ_ENOMEM, "%s: %s: cannot allocate %llu bytes to decompress", f->path, what,
                          (unsigned long long)raw);
    size_t n = ZSTD_decompress(out, (size_t)raw, src, (size_t)stored);
    if (ZSTD_isError(n) || n != raw) {
        free(out);
        return sq_err_set(err, SQ_ECORRUPT, "%s: %s: zstd data at %llu does not decompress: %s", f->path, what,
                          (unsigned long long)off, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output");
    }
    *ptr = out;
    *owned = out;
    return SQ_OK;
}

sq_status sq_part_read(const sq_file *f, const sq_part *p, int skip_checksum, const void **ptr, void **owned,
                       sq_err *err) {
    /* name the tensor too: p is one of the parts of f's tensor records */
    const char *tname = "?";
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const sq_tensor *t = &f->tensors[i];
        if ((uintptr_t)p >= (uintptr_t)t->parts && (uintptr_t)p < (uintptr_t)(t->parts + t->n_parts)) tname = t->name;
    }
    char what[SQ_MAX_NAME + SQ_MAX_PART_NAME + 32];
    snprintf(what, sizeof what, "tensor %s part %s", tname, p->name);
    return read_blob(f, what, p->offset, p->stored_size, p->raw_size, p->compression, p->checksum, skip_checksum, ptr,
                     owned, err);
}

sq_status sq_appendix_read(const sq_file *f, const sq_appendix *a, const void **ptr, void **owned, sq_err *err) {
    char what[64];
    snprintf(what, sizeof what, "appendix %u (type %u)", (unsigned)(a - f->appx), a->type);
    return read_blob(f, what, a->offset, a->stored_size, a->raw_size, a->flags >> 8, a->checksum, 0, ptr, owned, err);
}

const char *sq_file_metadata(sq_file *f, sq_err *err) {
    if (f->meta) return f->meta;
    const sq_header *h = &f->h;
    const void *ptr;
    void *owned;
    if (read_blob(f, "metadata", h->meta_offset, h->meta_stored_size, h->meta_raw_size, h->meta_compression,
                  h->meta_checksum, 0, &ptr, &owned, err))
        return NULL;
    f->meta = malloc((size_t)h->meta_raw_size + 1);
    if (!f->meta) {
        free(owned);
        sq_err_set(err, SQ_ENOMEM, "%s: out of memory for metadata", f->path);
        return NULL;
    }
    memcpy(f->meta, ptr, (size_t)h->meta_raw_size);
    f->meta[h->meta_raw_size] = 0;
    free(owned);
    if (strlen(f->meta) != h->meta_raw_size) {
        free(f->meta);
        f->meta = NULL;
        sq_err_set(err, SQ_ECORRUPT, "%s: metadata at %llu contains a NUL byte", f->path, (unsigned long long)h->meta_offset);
        return NULL;
    }
    return f->meta;
}

sq_status sq_appendix_file(const sq_file *f, const sq_appendix *a, const char **name, size_t *name_len,
                           const uint8_t **data, uint64_t *size, void **owned, sq_err *err) {
    *owned = NULL;
    if (a->type != SQ_APPX_FILE) return sq_err_set(err, SQ_EUSAGE, "%s: appendix of type %u is not a file", f->path, a->type);
    const void *ptr;
    sq_status st = sq_appendix_read(f, a, &ptr, owned, err);
    if (st) return st;
    const uint8_t *b = ptr;
    size_t nl = a->raw_size >= 2 ? (size_t)(b[0] | b[1] << 8) : 0;
    const char *bad = NULL;
    if (a->raw_size < 2) bad = "is shorter than its 2-byte name length";
    else if (!nl || nl > SQ_MAX_NAME) bad = "has a name length outside 1..1024";
    else if (nl > a->raw_size - 2) bad = "has a name length larger than the block";
    else if (!valid_name(b + 2, nl) || memchr(b + 2, '/', nl) || (nl == 1 && b[2] == '.') ||
             (nl == 2 && b[2] == '.' && b[3] == '.'))
        bad = "has a name that is not a plain file name (control bytes, '/', '.' or '..')";
    if (bad) {
        free(*owned);
        *owned = NULL;
        return sq_err_set(err, SQ_ECORRUPT, "%s: appendix %u: the embedded file at byte %llu %s (name length %zu, block %llu "
                          "bytes)", f->path, (unsigned)(a - f->appx), (unsigned long long)a->offset, bad, nl,
                          (unsigned long long)a->raw_size);
    }
    *name = (const char *)b + 2;
    *name_len = nl;
    *data = b + 2 + nl;
    *size = a->raw_size - 2 - nl;
    return SQ_OK;
}

const char *sq_compression_name(uint32_t compression) {
    static const char *const n[] = {"none", "zstd", "tca-tbe"};
    return compression < sizeof n / sizeof n[0] ? n[compression] : "?";
}
