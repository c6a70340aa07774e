/* Format-independent part of the model readers: file mapping, the tensor
 * table, f32 conversion with the rotary row regrouping, provenance hashes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "squish/codec.h"
#include "squish/fileio.h"
#include "squish/fp.h"
#include "squish/hash.h"
#include "squish/llama_names.h"
#include "squish/model.h"
#include "readers/ggml_decode.h"

/* The archive member a path "<m->path>/<name>" names, or -1. */
static int vfs_find(const sq_model *m, const char *path) {
    size_t pl = strlen(m->path);
    if (!m->vfs || strncmp(path, m->path, pl) || path[pl] != '/') return -1;
    for (uint32_t i = 0; i < m->n_vfs; i++)
        if (!strcmp(m->vfs[i].name, path + pl + 1)) return (int)i;
    return -1;
}

int sq_model_file_exists(const sq_model *m, const char *path) {
    return m->vfs ? vfs_find(m, path) >= 0 : access(path, F_OK) == 0;
}

sq_status sq_model_read_file(const sq_model *m, const char *path, size_t max, char **out, size_t *len, sq_err *err) {
    if (!m->vfs) return sq_read_file(path, max, out, len, err);
    int i = vfs_find(m, path);
    if (i < 0) return sq_err_set(err, SQ_EIO, "%s: not in the archive", path);
    if (m->vfs[i].size > max) return sq_err_set(err, SQ_ENOMEM, "%s: larger than %zu bytes", path, max);
    *out = malloc((size_t)m->vfs[i].size + 1);
    if (!*out) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
    memcpy(*out, m->vfs[i].data, (size_t)m->vfs[i].size);
    (*out)[m->vfs[i].size] = 0;
    *len = (size_t)m->vfs[i].size;
    return SQ_OK;
}

void sq_model_file_sha256(const sq_model *m, uint32_t i, char hex[65]) {
    sq_sha256 sh;
    uint8_t d[32];
    sq_sha256_init(&sh);
    const uint8_t *p = m->files[i].map;
    for (uint64_t off = 0; off < m->files[i].size; off += 1 << 24) { /* in chunks, so pages can be dropped */
        uint64_t n = m->files[i].size - off < (1u << 24) ? m->files[i].size - off : (1u << 24);
        sq_sha256_update(&sh, p + off, (size_t)n);
        if (m->files[i].mapped) {
            long pg = sysconf(_SC_PAGESIZE);
            uint64_t a = off / (uint64_t)pg * (uint64_t)pg;
            madvise((void *)(p + a), (size_t)(off + n - a), MADV_DONTNEED);
        }
    }
    sq_sha256_final(&sh, d);
    sq_hex32(d, hex);
}

int sq_model_map_file(sq_model *m, const char *path, sq_err *err) {
    if (m->vfs) {
        int i = vfs_find(m, path);
        if (i < 0) {
            sq_err_set(err, SQ_EIO, "%s: not in the archive", path);
            return -1;
        }
        return sq_model_add_buffer(m, path, m->vfs[i].data, m->vfs[i].size, err);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sq_err_set(err, SQ_EIO, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        sq_err_set(err, SQ_EIO, "%s: not a regular file", path);
        return -1;
    }
    void *map = NULL;
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            sq_err_set(err, SQ_EIO, "%s: mmap failed: %s", path, strerror(errno));
            return -1;
        }
    }
    close(fd);
    sq_model_file *nf = realloc(m->files, (m->n_files + 1) * sizeof *nf);
    if (!nf) {
        if (map) munmap(map, (size_t)st.st_size);
        sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
        return -1;
    }
    m->files = nf;
    nf[m->n_files] = (sq_model_file){strdup(path), map, (uint64_t)st.st_size, 1};
    return (int)m->n_files++;
}

int sq_model_add_buffer(sq_model *m, const char *name, const uint8_t *data, uint64_t size, sq_err *err) {
    sq_model_file *nf = realloc(m->files, (m->n_files + 1) * sizeof *nf);
    if (!nf) {
        sq_err_set(err, SQ_ENOMEM, "%s: out of memory", name);
        return -1;
    }
    m->files = nf;
    nf[m->n_files] = (sq_model_file){strdup(name), data, size, 0};
    return (int)m->n_files++;
}

/* A tensor name met a second time: in one file, in two shards, or in a
 * shard given twice (the same bytes under two names). */
static sq_status duplicate_tensor(const sq_model *m, const sq_model_tensor *first, int file, sq_err *err) {
    const sq_model_file *a = &m->files[first->file], *b = &m->files[file];
    if (first->file == file) return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s appears twice", b->path, first->name);
    if (a->size == b->size && (a->map == b->map || !memcmp(a->map, b->map, (size_t)a->size)))
        return sq_err_set(err, SQ_ECORRUPT, "%s and %s have the same bytes: one shard given twice (tensor %s is in both)",
                          a->path, b->path, first->name);
    return sq_err_set(err, SQ_ECORRUPT, "tensor %s is in two shards, %s and %s; a model holds each tensor once", first->name,
                      a->path, b->path);
}

sq_status sq_model_add_tensor(sq_model *m, const char *name, const char *src_name, uint32_t dtype, uint32_t ndim,
                              const uint64_t *dims, const uint8_t *data, uint64_t nbytes, int file, sq_err *err) {
    const sq_model_tensor *dup = sq_model_find(m, name);
    if (dup) return duplicate_tensor(m, dup, file, err);
    if (ndim > SQ_MAX_NDIM) return sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s has %u dimensions (max 8)",
                                              m->files[file].path, name, ndim);
    sq_model_tensor *nt = realloc(m->tensors, (m->n_tensors + 1) * sizeof *nt);
    if (!nt) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    m->tensors = nt;
    sq_model_tensor *t = &nt[m->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->src_name = strdup(src_name);
    if (!t->name || !t->src_name) {
        free(t->name);
        free(t->src_name);
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->dims, dims, ndim * sizeof *dims);
    t->data = data;
    t->nbytes = nbytes;
    t->file = file;
    m->n_tensors++;
    return SQ_OK;
}

const sq_model_tensor *sq_model_find(const sq_model *m, const char *name) {
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

uint64_t sq_model_tensor_elems(const sq_model_tensor *t) {
    uint64_t n = 1;
    for (uint32_t i = 0; i < t->ndim; i++) n *= t->dims[i];
    return n;
}

static float load_elem(uint32_t dt, const uint8_t *p, uint64_t i) {
    if (dt == SQ_DT_F32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return dt == SQ_DT_F16 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

/* A .squizd source's tensor, decoded through its codec (part checksums checked). */
static sq_status decode_record(const sq_model *m, const sq_model_tensor *t, float *out, sq_err *err) {
    const sq_tensor *rec = sq_file_tensor(m->squizd, t->record);
    sq_tview v;
    void *owned[SQ_CODEC_MAX_PARTS];
    sq_status st = sq_tview_open(m->squizd, rec, 0, &v, owned, err);
    if (st) return st;
    sq_decode_rows(&v, 0, v.rows, out); /* rows x cols = the recorded shape (sq_tensor_matrix) */
    for (int i = 0; i < SQ_CODEC_MAX_PARTS; i++) free(owned[i]);
    return SQ_OK;
}

/* A GGUF tensor of ggml blocks: each row (the innermost dimension, a whole
 * number of blocks, checked by the reader) decoded from its source row. */
static sq_status decode_ggml(const sq_model *m, const sq_model_tensor *t, float *out, sq_err *err) {
    const sq_ggml_qtype *ty = sq_ggml_qtype_find(t->ggml_type);
    uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1];
    if (!ty) return sq_err_set(err, SQ_EINTERNAL, "tensor %s: ggml type %u has no decoder", t->name, t->ggml_type);
    if (n == 0) return SQ_OK;
    uint64_t rows = n / cols, nb = cols / ty->block_elems, hd = t->rope_heads ? rows / t->rope_heads : 0;
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t src = r;
        if (hd) { /* HF row r comes from interleaved row h*hd + 2j + half (as below) */
            uint64_t within = r % hd, half = within / (hd / 2);
            src = r / hd * hd + 2 * (within % (hd / 2)) + half;
        }
        float *y = out + r * cols;
        sq_ggml_qtype_decode(ty, t->data + src * nb * ty->block_bytes, nb, y);
        for (uint64_t c = 0; c < cols; c++)
            if (!isfinite(y[c]))
                return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: %s block %llu of row %llu decodes to %g (a scale is not finite)",
                                  m->files[t->file].path, t->src_name, ty->name, (unsigned long long)(c / ty->block_elems),
                                  (unsigned long long)src, (double)y[c]);
    }
    return SQ_OK;
}

sq_status sq_model_tensor_f32(const sq_model *m, const sq_model_tensor *t, float *out, sq_err *err) {
    uint64_t n = sq_model_tensor_elems(t);
    if (m->squizd) return decode_record(m, t, out, err);
    if (t->ggml_type) return decode_ggml(m, t, out, err);
    if (!t->rope_heads || n == 0) {
        for (uint64_t i = 0; i < n; i++) out[i] = load_elem(t->dtype, t->data, i);
        return SQ_OK;
    }
    /* Source rows of each head come as interleaved pairs (2j, 2j+1); HF
     * order puts all first halves, then all second halves:
     * new[h*hd + t*hd/2 + j] = old[h*hd + 2j + t]. */
    uint64_t rows = t->dims[0], cols = n / rows, hd = rows / t->rope_heads;
    if (rows % t->rope_heads || hd < 2 || hd % 2)
        return sq_err_set(err, SQ_ECORRUPT, "tensor %s: %llu rows do not split into %u heads of an even size", t->name,
                          (unsigned long long)rows, t->rope_heads);
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t h = r / hd, within = r % hd, half = within / (hd / 2), j = within % (hd / 2);
        uint64_t src = h * hd + 2 * j + half;
        for (uint64_t c = 0; c < cols; c++) out[r * cols + c] = load_elem(t->dtype, t->data, src * cols + c);
    }
    return SQ_OK;
}

void sq_model_release(const sq_model *m, const sq_model_tensor *t) {
    if (!m->files[t->file].mapped) return; /* memory buffers: dropping pages would zero them */
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data & ~(uintptr_t)(pg - 1);
    uintptr_t base = (uintptr_t)m->files[t->file].map;
    if (a < base) a = base;
    uintptr_t end = (uintptr_t)t->data + t->nbytes;
    if (end > a) madvise((void *)a, (size_t)(end - a), MADV_DONTNEED);
}

void sq_model_close(sq_model *m) {
    if (!m) return;
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        free(m->tensors[i].src_name);
    }
    for (uint32_t i = 0; i < m->n_files; i++) {
        if (m->files[i].map && m->files[i].mapped) munmap((void *)m->files[i].map, (size_t)m->files[i].size);
        free(m->files[i].path);
    }
    sq_vfiles_free(m->vfs, m->n_vfs);
    if (m->squizd_owned) sq_close(m->squizd);
    free(m->tensors);
    free(m->files);
    free(m->config_json);
    free(m->tokenizer_path);
    free(m->path);
    free(m);
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

sq_model *sq_model_new(const char *path, sq_err *err) {
    sq_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    return m;
}

sq_model *sq_model_open(const char *path, sq_err *err) {
    sq_model *m = sq_model_new(path, err);
    if (!m) return NULL;
    struct stat st;
    sq_status s;
    if (stat(path, &st) != 0) {
        s = sq_err_set(err, SQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        m->format = SQ_MODEL_HF;
        s = sq_model_open_hf(m, path, err);
    } else if (sq_is_archive_name(path)) {
        m->format = SQ_MODEL_HF;
        s = sq_model_open_archive(m, path, err);
    } else if (has_suffix(path, ".gguf")) {
        m->format = SQ_MODEL_GGUF;
        s = sq_model_open_gguf(m, path, err);
    } else if (sq_is_squizd(path)) {
        m->format = SQ_MODEL_SQUIZD;
        s = sq_model_open_squizd(m, path, err);
    } else if (has_suffix(path, ".safetensors")) {
        s = sq_err_set(err, SQ_EUSAGE, "%s: give the model directory (with config.json), not a single shard", path);
    } else {
        m->format = SQ_MODEL_LLAMA2C;
        s = sq_model_open_llama2c(m, path, err);
    }
    if (s) {
        sq_model_close(m);
        return NULL;
    }
    return m;
}

sq_status sq_sha256_file(const char *path, char hex[65], sq_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sq_err_set(err, SQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    sq_sha256 s;
    sq_sha256_init(&s);
    static __thread uint8_t buf[1 << 16];
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0) {
            if (errno == EINTR) continue;
            close(fd);
            return sq_err_set(err, SQ_EIO, "%s: read failed: %s", path, strerror(errno));
        }
        if (!k) break;
        sq_sha256_update(&s, buf, (size_t)k);
    }
    close(fd);
    uint8_t d[32];
    sq_sha256_final(&s, d);
    sq_hex32(d, hex);
    return SQ_OK;
}

sq_status sq_model_identity(const sq_model *m, char hex[65], sq_err *err) {
    sq_sha256 sh;
    sq_sha256_init(&sh);
    (void)err;
    for (uint32_t i = 0; i < m->n_files; i++) {
        char h[65];
        sq_model_file_sha256(m, i, h);
        sq_sha256_update(&sh, h, 64);
    }
    uint8_t d[32];
    sq_sha256_final(&sh, d);
    sq_hex32(d, hex);
    return SQ_OK;
}

/* Natural order: digits compare as numbers, so layers 2 < 10. */
static int natcmp(const char *a, const char *b) {
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            unsigned long x = strtoul(a, (char **)&a, 10), y = strtoul(b, (char **)&b, 10);
            if (x != y) return x < y ? -1 : 1;
        } else {
            if (*a != *b) return (unsigned char)*a - (unsigned char)*b;
            a++;
            b++;
        }
    }
    return (unsigned char)*a - (unsigned char)*b;
}

/* Model order: embeddings, layers by index, other tensors, final norm, output layer. */
static int name_rank(const char *n) {
    if (sq_llama_is_embedding(n)) return 0;
    if (!strncmp(n, SQ_LLAMA_LAYERS_PREFIX, strlen(SQ_LLAMA_LAYERS_PREFIX))) return 1;
    sq_llama_role r = sq_llama_parse(n, NULL, NULL);
    return r == SQ_LLAMA_FINAL_NORM ? 3 : r == SQ_LLAMA_LM_HEAD ? 4 : 2;
}

int sq_tensor_name_cmp(const char *a, const char *b) {
    int ra = name_rank(a), rb = name_rank(b);
    return ra != rb ? ra - rb : natcmp(a, b);
}

void sq_shard_layers(uint32_t k, uint32_t n, uint32_t n_layers, uint32_t *l0, uint32_t *l1) {
    *l0 = (uint32_t)((uint64_t)(k - 1) * n_layers / n);
    *l1 = (uint32_t)((uint64_t)k * n_layers / n);
}

typedef struct named_idx {
    const char *name;
    uint32_t i;
} named_idx;
static int cmp_named(const void *a, const void *b) {
    return sq_tensor_name_cmp(((const named_idx *)a)->name, ((const named_idx *)b)->name);
}

uint32_t *sq_model_order(const sq_model *m) {
    named_idx *t = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *t);
    uint32_t *order = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *order);
    if (t && order) {
        for (uint32_t i = 0; i < m->n_tensors; i++) t[i] = (named_idx){m->tensors[i].name, i};
        qsort(t, m->n_tensors, sizeof *t, cmp_named);
        for (uint32_t i = 0; i < m->n_tensors; i++) order[i] = t[i].i;
    } else {
        free(order);
        order = NULL;
    }
    free(t);
    return order;
}
