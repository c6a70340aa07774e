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

#include "squish/fp.h"
#include "squish/hash.h"
#include "squish/model.h"

int sq_model_map_file(sq_model *m, const char *path, sq_err *err) {
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

sq_status sq_model_add_tensor(sq_model *m, const char *name, const char *src_name, uint32_t dtype, uint32_t ndim,
                              const uint64_t *dims, const uint8_t *data, uint64_t nbytes, int file, sq_err *err) {
    if (sq_model_find(m, name))
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s appears twice", m->files[file].path, name);
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

sq_status sq_model_tensor_f32(const sq_model *m, const sq_model_tensor *t, float *out, sq_err *err) {
    uint64_t n = sq_model_tensor_elems(t);
    (void)m;
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
    } else if (has_suffix(path, ".gguf")) {
        m->format = SQ_MODEL_GGUF;
        s = sq_model_open_gguf(m, path, err);
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
    for (uint32_t i = 0; i < m->n_files; i++) {
        char h[65];
        sq_status st = sq_sha256_file(m->files[i].path, h, err);
        if (st) return st;
        sq_sha256_update(&sh, h, 64);
    }
    uint8_t d[32];
    sq_sha256_final(&sh, d);
    sq_hex32(d, hex);
    return SQ_OK;
}
