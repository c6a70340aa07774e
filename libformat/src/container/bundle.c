/* Bundled model files (squish/bundle.h): which files a source model
 * contributes, and their round trip through appendix blocks of type 4. */
#include "squish/bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/fileio.h"

/* The side files of a Hugging Face model directory that a runtime or a
 * converter reads: configuration, generation defaults, tokenizer and the
 * special-token settings that say which ids are BOS/EOS. */
static const char *const hf_names[] = {"config.json",     "generation_config.json", "tokenizer.json",
                                       "tokenizer.model", "tokenizer_config.json",  "special_tokens_map.json"};

int sq_bundle_tokenizer_rank(const char *name, size_t nl, int *kind) {
    static const struct {
        const char *name;
        int kind;
    } fixed[] = {{"tokenizer.json", SQ_TOK_JSON}, {"tokenizer.model", SQ_TOK_SPM}, {"tokenizer.bin", SQ_TOK_LLAMA2C}};
    for (int i = 0; i < 3; i++)
        if (nl == strlen(fixed[i].name) && !memcmp(name, fixed[i].name, nl)) {
            if (kind) *kind = fixed[i].kind;
            return i;
        }
    /* llama2.c names its tokenizers after the vocabulary size: tok512.bin */
    if (nl > 7 && !memcmp(name, "tok", 3) && !memcmp(name + nl - 4, ".bin", 4)) {
        for (size_t i = 3; i < nl - 4; i++)
            if (name[i] < '0' || name[i] > '9') return -1;
        if (kind) *kind = SQ_TOK_LLAMA2C;
        return 3;
    }
    return -1;
}

const struct sq_vfile *sq_bundle_tokenizer(const sq_bundle *b, int *kind) {
    const struct sq_vfile *best = NULL;
    int best_rank = 99;
    for (uint32_t i = 0; i < b->n; i++) {
        int k, r = sq_bundle_tokenizer_rank(b->files[i].name, strlen(b->files[i].name), &k);
        if (r >= 0 && r < best_rank) {
            best = &b->files[i];
            best_rank = r;
            if (kind) *kind = k;
        }
    }
    return best;
}

sq_status sq_bundle_add(sq_bundle *b, const char *name, const void *data, uint64_t size, sq_err *err) {
    size_t nl = strlen(name);
    if (!nl || nl > SQ_MAX_NAME || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return sq_err_set(err, SQ_EUSAGE, "'%s' cannot be the name of an embedded file (1..1024 bytes, no '/')", name);
    for (size_t i = 0; i < nl; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return sq_err_set(err, SQ_EUSAGE, "the name of an embedded file has a control byte");
    if (size > SQ_BUNDLE_MAX_BYTES) return sq_err_set(err, SQ_ENOMEM, "%s: %llu bytes is too large to embed", name,
                                                      (unsigned long long)size);
    uint8_t *copy = malloc(size ? (size_t)size : 1);
    if (!copy) return sq_err_set(err, SQ_ENOMEM, "out of memory for %s", name);
    if (size) memcpy(copy, data, (size_t)size);
    for (uint32_t i = 0; i < b->n; i++)
        if (!strcmp(b->files[i].name, name)) {
            free(b->files[i].data);
            b->files[i].data = copy;
            b->files[i].size = size;
            return SQ_OK;
        }
    if (b->n == SQ_BUNDLE_MAX_FILES) {
        free(copy);
        return sq_err_set(err, SQ_ENOMEM, "at most %d embedded files", SQ_BUNDLE_MAX_FILES);
    }
    struct sq_vfile *nf = realloc(b->files, (b->n + 1) * sizeof *nf);
    char *ncopy = strdup(name);
    if (nf) b->files = nf;
    if (!nf || !ncopy) {
        free(copy);
        free(ncopy);
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    b->files[b->n++] = (struct sq_vfile){ncopy, copy, size};
    return SQ_OK;
}

static int cmp_name(const void *x, const void *y) {
    return strcmp(((const struct sq_vfile *)x)->name, ((const struct sq_vfile *)y)->name);
}

void sq_bundle_sort(sq_bundle *b) {
    if (b->n > 1) qsort(b->files, b->n, sizeof *b->files, cmp_name);
}

const struct sq_vfile *sq_bundle_find(const sq_bundle *b, const char *name) {
    for (uint32_t i = 0; i < b->n; i++)
        if (!strcmp(b->files[i].name, name)) return &b->files[i];
    return NULL;
}

int sq_bundle_equal(const sq_bundle *a, const sq_bundle *b) {
    if (a->n != b->n) return 0;
    for (uint32_t i = 0; i < a->n; i++) {
        const struct sq_vfile *o = sq_bundle_find(b, a->files[i].name);
        if (!o || o->size != a->files[i].size || (o->size && memcmp(o->data, a->files[i].data, (size_t)o->size))) return 0;
    }
    return 1;
}

void sq_bundle_free(sq_bundle *b) {
    sq_vfiles_free(b->files, b->n);
    b->files = NULL;
    b->n = 0;
}

/* Reads "<dir>/<name>" of a model (directory or archive) into the bundle, when it exists. */
static sq_status add_model_file(const sq_model *m, const char *dir, const char *name, sq_bundle *b, sq_err *err) {
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    if (!path) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sprintf(path, "%s/%s", dir, name);
    sq_status st = SQ_OK;
    if (sq_model_file_exists(m, path)) {
        char *data;
        size_t len;
        st = sq_model_read_file(m, path, (size_t)SQ_BUNDLE_MAX_BYTES, &data, &len, err);
        if (!st) {
            st = sq_bundle_add(b, name, data, len, err);
            free(data);
        }
    }
    free(path);
    return st;
}

sq_status sq_bundle_from_model(const sq_model *m, sq_bundle *b, sq_err *err) {
    sq_status st = SQ_OK;
    switch (m->format) {
    case SQ_MODEL_HF:
        for (size_t i = 0; !st && i < sizeof hf_names / sizeof hf_names[0]; i++) st = add_model_file(m, m->path, hf_names[i], b, err);
        break;
    case SQ_MODEL_LLAMA2C:
        if (m->tokenizer_path) {
            const char *slash = strrchr(m->tokenizer_path, '/');
            char *data;
            size_t len;
            st = sq_read_file(m->tokenizer_path, (size_t)SQ_BUNDLE_MAX_BYTES, &data, &len, err);
            if (!st) {
                st = sq_bundle_add(b, slash ? slash + 1 : m->tokenizer_path, data, len, err);
                free(data);
            }
        }
        break;
    case SQ_MODEL_SQUIZD:
        if (m->squizd) st = sq_bundle_from_file(m->squizd, b, err);
        break;
    case SQ_MODEL_GGUF: break;
    }
    if (st) sq_bundle_free(b);
    else sq_bundle_sort(b);
    return st;
}

sq_status sq_bundle_from_file(const sq_file *f, sq_bundle *b, sq_err *err) {
    sq_status st = SQ_OK;
    for (uint32_t i = 0; !st && i < sq_file_nappendix(f); i++) {
        const sq_appendix *a = sq_file_appendix(f, i);
        if (a->type != SQ_APPX_FILE) continue;
        const char *name;
        size_t nl;
        const uint8_t *data;
        uint64_t size;
        void *owned;
        if ((st = sq_appendix_file(f, a, &name, &nl, &data, &size, &owned, err))) break;
        char *n0 = strndup(name, nl);
        if (!n0) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
        else if (sq_bundle_find(b, n0))
            st = sq_err_set(err, SQ_ECORRUPT, "%s: two embedded files are named %s", sq_file_path(f), n0);
        else st = sq_bundle_add(b, n0, data, size, err);
        free(n0);
        free(owned);
    }
    if (st) sq_bundle_free(b);
    return st;
}

sq_status sq_bundle_write(sq_writer *w, const sq_bundle *b, uint32_t compression, sq_err *err) {
    for (uint32_t i = 0; i < b->n; i++) {
        const struct sq_vfile *e = &b->files[i];
        size_t nl = strlen(e->name);
        uint8_t *blk = malloc(2 + nl + (size_t)e->size);
        if (!blk) return sq_err_set(err, SQ_ENOMEM, "out of memory for embedded file %s", e->name);
        blk[0] = (uint8_t)nl;
        blk[1] = (uint8_t)(nl >> 8);
        memcpy(blk + 2, e->name, nl);
        if (e->size) memcpy(blk + 2 + nl, e->data, (size_t)e->size);
        sq_status st = sq_writer_add_appendix(w, SQ_APPX_FILE, 0, blk, 2 + nl + e->size, compression, err);
        free(blk);
        if (st) return st;
    }
    return SQ_OK;
}
