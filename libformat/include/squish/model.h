/* Source-model readers: Hugging Face directories (safetensors, sharded or
 * not), llama2.c checkpoints, GGUF files (F32/F16/BF16 tensors and ggml's
 * quantized blocks, decoded to f32) and
 * .squizd files (each tensor decoded through its codec).
 * Files are mmapped; tensors are converted to f32 one at a time.
 * Tensor names are mapped to one canonical naming: the Hugging Face Llama
 * names ("model.layers.0.self_attn.q_proj.weight", squish/llama_names.h),
 * with q/k rows in the Hugging Face rotary order whatever the source. */
#ifndef SQUISH_MODEL_H
#define SQUISH_MODEL_H

#include <stdint.h>

#include "squish/container.h"
#include "squish/error.h"
#include "squish/hash.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sq_model_format { SQ_MODEL_HF = 1, SQ_MODEL_LLAMA2C = 2, SQ_MODEL_GGUF = 3, SQ_MODEL_SQUIZD = 4 } sq_model_format;

typedef struct sq_model_tensor {
    char *name;        /* canonical name */
    char *src_name;    /* name in the source file */
    uint32_t dtype;    /* SQ_DT_F32, SQ_DT_F16 or SQ_DT_BF16 (of the data, or of its decode: ggml_type) */
    uint32_t ndim;
    uint64_t dims[SQ_MAX_NDIM];
    const uint8_t *data; /* in the mapped source file (NULL for .squizd sources) */
    uint64_t nbytes;
    uint32_t record;   /* .squizd sources: the tensor's index in m->squizd */
    int file;          /* index into the model's file list */
    /* llama2.c/GGUF q/k: rows are regrouped per head into HF rotary order */
    uint32_t rope_heads;
    /* GGUF quantized tensors: the ggml block type (e.g. 12 = Q4_K) that
     * data holds; dtype is then SQ_DT_F32, what it decodes to. 0 otherwise. */
    uint32_t ggml_type;
} sq_model_tensor;

typedef struct sq_model_file {
    char *path;
    const uint8_t *map;
    uint64_t size;
    int mapped; /* 0: a caller's buffer (sq_model_add_buffer), not unmapped on close */
} sq_model_file;

typedef struct sq_model {
    sq_model_format format;
    char *path;
    sq_model_info info;
    uint32_t head_dim, max_seq;
    float rope_theta, norm_eps;
    int tied_embeddings;
    char *config_json;   /* config.json text (synthesized for llama2.c/GGUF) */
    sq_model_tensor *tensors;
    uint32_t n_tensors;
    sq_model_file *files;
    uint32_t n_files;
    char *tokenizer_path; /* tokenizer file found beside the model, or NULL */
    /* files of a model read from an archive (in memory; names relative to the model directory) */
    struct sq_vfile { char *name; uint8_t *data; uint64_t size; } *vfs;
    uint32_t n_vfs;
    sq_file *squizd;    /* a .squizd source, or NULL */
    int squizd_owned;   /* closed with the model */
    int partial;        /* a .squizd with only some of the model's tensors (squish-quantize --shard) */
} sq_model;

sq_model *sq_model_open(const char *path, sq_err *err);
void sq_model_close(sq_model *m);
const sq_model_tensor *sq_model_find(const sq_model *m, const char *name);
uint64_t sq_model_tensor_elems(const sq_model_tensor *t);
/* Converts a tensor to f32 (canonical row order) into out (elems floats). */
sq_status sq_model_tensor_f32(const sq_model *m, const sq_model_tensor *t, float *out, sq_err *err);
/* Tells the kernel the tensor's source pages may be dropped (bounded RSS). */
void sq_model_release(const sq_model *m, const sq_model_tensor *t);
/* SHA-256 of a whole file (hex, 65 bytes). */
sq_status sq_sha256_file(const char *path, char hex[65], sq_err *err);
/* Identity of a model: SHA-256 over the hex SHA-256s of its weight files,
 * in the order the model lists them. Calibration files and reference-logit
 * caches are bound to it. */
sq_status sq_model_identity(const sq_model *m, char hex[65], sq_err *err);
/* The order squish writes tensors in: embeddings, blocks by layer index
 * (digits compare as numbers), other tensors, final norm, output layer. */
int sq_tensor_name_cmp(const char *a, const char *b);
/* Indices of m's tensors in that order (malloc'd; NULL when out of memory). */
uint32_t *sq_model_order(const sq_model *m);
/* The layers [*l0, *l1) of shard k of n (1 <= k <= n): floor((k-1)L/n) to floor(kL/n). */
void sq_shard_layers(uint32_t k, uint32_t n, uint32_t n_layers, uint32_t *l0, uint32_t *l1);

/* Parsers over one registered file, exposed for tests and fuzz targets
 * (sq_model_open calls them). fi is an index into m->files. */
sq_model *sq_model_new(const char *path, sq_err *err);
int sq_model_add_buffer(sq_model *m, const char *name, const uint8_t *data, uint64_t size, sq_err *err);
sq_status sq_model_parse_safetensors(sq_model *m, int fi, sq_err *err);
sq_status sq_model_parse_config(sq_model *m, const char *name, const char *text, size_t len, sq_err *err);
sq_status sq_model_parse_llama2c(sq_model *m, int fi, sq_err *err);
sq_status sq_model_parse_gguf(sq_model *m, int fi, sq_err *err);

/* Internal constructors (one per format). */
sq_status sq_model_open_hf(sq_model *m, const char *dir, sq_err *err);
sq_status sq_model_open_llama2c(sq_model *m, const char *path, sq_err *err);
sq_status sq_model_open_gguf(sq_model *m, const char *path, sq_err *err);
/* A .squizd file as a model: the configuration from its metadata's "config"
 * member, the tensors decoded to f32 by sq_model_tensor_f32. The second
 * form wraps an open file the caller keeps (m only borrows it). */
sq_status sq_model_open_squizd(sq_model *m, const char *path, sq_err *err);
sq_status sq_model_from_squizd(sq_model *m, sq_file *f, sq_err *err);
int sq_is_squizd(const char *path); /* by name (.squizd) or magic */

/* The structural check (model_check.c): every tensor the Llama runtime
 * loads is present with the shape the configuration implies (hidden_size,
 * num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim,
 * intermediate_size, vocab_size); lm_head and biases are optional; no
 * block lies beyond num_hidden_layers; no two tensors share source bytes.
 * A failure is SQ_ECORRUPT naming the tensor and both shapes. A partial
 * model (m->partial) is only checked for the tensors it has. */
sq_status sq_model_check(const sq_model *m, sq_err *err);
/* The same check on a .squizd against the "config" in its metadata (how the
 * runtime configures itself); a file without "config" holds tensors, not a
 * model, and passes. */
sq_status sq_file_check_model(sq_file *f, sq_err *err);

/* The model's content hash (spec/squizd.md, provenance.model_content_sha256):
 * SHA-256 over the configuration text and, in squish's tensor order, each
 * tensor's name, dtype, shape and source bytes. Streamed: feed every tensor
 * once, in sq_model_order, while it is read anyway. */
typedef struct sq_model_hash { sq_sha256 sh; } sq_model_hash;
void sq_model_hash_init(sq_model_hash *h, const sq_model *m);
void sq_model_hash_tensor(sq_model_hash *h, const sq_model *m, const sq_model_tensor *t);
void sq_model_hash_final(sq_model_hash *h, char hex[65]);
/* All at once (a full read of the tensors). */
sq_status sq_model_content_sha256(const sq_model *m, char hex[65], sq_err *err);
/* Maps a file read-only into m->files; returns its index or -1. */
int sq_model_map_file(sq_model *m, const char *path, sq_err *err);
/* File access that also works for models read from archives (m->vfs):
 * paths are "<m->path>/<name>" there. */
int sq_model_file_exists(const sq_model *m, const char *path);
sq_status sq_model_read_file(const sq_model *m, const char *path, size_t max, char **out, size_t *len, sq_err *err);
/* SHA-256 (hex) of the bytes of one of m->files. */
void sq_model_file_sha256(const sq_model *m, uint32_t i, char hex[65]);
/* Reads every regular member of a tar/zip archive (any libarchive filter:
 * gzip, zstd, xz...) into memory (no unpacking to disk). Names that are
 * absolute or leave the archive are refused; one common top-level folder
 * is stripped. Free with sq_vfiles_free. */
sq_status sq_archive_read(const char *path, struct sq_vfile **files, uint32_t *n_files, sq_err *err);
void sq_vfiles_free(struct sq_vfile *files, uint32_t n);
/* Opens the Hugging Face model directory held in files (taking ownership). */
sq_status sq_model_open_vfs(sq_model *m, const char *path, struct sq_vfile *files, uint32_t n_files, sq_err *err);
/* sq_archive_read + sq_model_open_vfs. */
sq_status sq_model_open_archive(sq_model *m, const char *path, sq_err *err);
int sq_is_archive_name(const char *path);
sq_status sq_model_add_tensor(sq_model *m, const char *name, const char *src_name, uint32_t dtype, uint32_t ndim,
                              const uint64_t *dims, const uint8_t *data, uint64_t nbytes, int file, sq_err *err);

#ifdef __cplusplus
}
#endif
#endif
