/* The .squizd container, version 1: reader and writer.
 * Byte layout: spec/squizd.md. Everything on disk is little-endian. */
#ifndef SQUISH_CONTAINER_H
#define SQUISH_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

#include "squish/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_MAGIC "SQZD"
#define SQ_VERSION_MAJOR 1
#define SQ_VERSION_MINOR 0
#define SQ_HEADER_SIZE 256
#define SQ_MIN_ALIGN 64
#define SQ_MAX_ALIGN (1u << 20)

/* Limits a reader enforces before allocating anything. */
#define SQ_MAX_NAME 1024       /* tensor name bytes */
#define SQ_MAX_PART_NAME 32    /* part name bytes */
#define SQ_MAX_NDIM 8
#define SQ_MAX_PARTS 16
#define SQ_NPARAMS 8

/* Technique flags (header offset 16, u64): one bit per technique present. */
enum {
    SQ_FLAG_INT8 = 1u << 0,
    SQ_FLAG_INT4 = 1u << 1,
    SQ_FLAG_INT3 = 1u << 2,
    SQ_FLAG_INT2 = 1u << 3,
    SQ_FLAG_NF4 = 1u << 4,
    SQ_FLAG_FP8 = 1u << 5,
    SQ_FLAG_FP6 = 1u << 6,
    SQ_FLAG_FP4 = 1u << 7,
    SQ_FLAG_MXFP8 = 1u << 8,
    SQ_FLAG_MXFP6 = 1u << 9,
    SQ_FLAG_MXFP4 = 1u << 10,
    SQ_FLAG_SPARSE = 1u << 11,
    SQ_FLAG_GPTQ = 1u << 12,
    SQ_FLAG_AWQ = 1u << 13,
    SQ_FLAG_AQLM = 1u << 14,
    SQ_FLAG_QUIPSHARP = 1u << 15,
    SQ_FLAG_SPQR = 1u << 16,
    SQ_FLAG_EAGLE_DRAFT = 1u << 17,
    SQ_FLAG_TCA_TBE = 1u << 18, /* a part is TCA-TBE-coded (or an appendix block of type 3 is present) */
    SQ_FLAG_ZSTD = 1u << 19,
    SQ_FLAG_FLOAT = 1u << 20, /* unquantized f32/f16/bf16 tensors present */
    SQ_FLAG_MIXED = 1u << 21, /* per-block mixed precision (mix) */
};
#define SQ_FLAG_KNOWN_MASK ((1ull << 22) - 1)

/* Architecture enum (header offset 28, u32). */
typedef enum sq_arch {
    SQ_ARCH_UNKNOWN = 0,
    SQ_ARCH_LLAMA = 1,
    SQ_ARCH_MISTRAL = 2,
    SQ_ARCH_QWEN2 = 3,
    SQ_ARCH_GEMMA = 4,
    SQ_ARCH_DEEPSEEK = 5,
    SQ_ARCH_PHI = 6,
    SQ_ARCH_MIXTRAL = 7,
    SQ_ARCH_QWEN3 = 8,
    SQ_ARCH_COUNT
} sq_arch;
const char *sq_arch_name(uint32_t arch);
uint32_t sq_arch_from_name(const char *name); /* accepts HF model_type; 0 if unknown */

/* Element types of parts (and source dtypes of tensors). */
typedef enum sq_dtype {
    SQ_DT_INVALID = 0,
    SQ_DT_F32 = 1, SQ_DT_F16 = 2, SQ_DT_BF16 = 3, SQ_DT_F64 = 4,
    SQ_DT_I8 = 5, SQ_DT_U8 = 6, SQ_DT_I16 = 7, SQ_DT_U16 = 8,
    SQ_DT_I32 = 9, SQ_DT_U32 = 10, SQ_DT_I64 = 11, SQ_DT_U64 = 12,
    SQ_DT_COUNT
} sq_dtype;
size_t sq_dtype_size(uint32_t dt); /* 0 for invalid */
const char *sq_dtype_name(uint32_t dt);

/* Part compression: zstd for any part, metadata or appendix blob; TCA-TBE
 * (squish/tca_tbe.h, spec/squizd.md §13) for bf16 parts only. */
enum { SQ_COMP_NONE = 0, SQ_COMP_ZSTD = 1, SQ_COMP_TCA_TBE = 2 };
const char *sq_compression_name(uint32_t compression); /* "none", "zstd", "tca-tbe", "?" */

/* Incompatible-feature bits (header offset 24): none are defined in v1.0;
 * a reader refuses any set bit it does not know. */
#define SQ_INCOMPAT_KNOWN_MASK 0u

/* Appendix block types and flags. */
enum {
    SQ_APPX_SPARSITY = 1,    /* sparsity metadata (JSON or binary, see spec) */
    SQ_APPX_EAGLE_DRAFT = 2, /* speculative-decoding draft head */
    SQ_APPX_TCA_TBE = 3,
    SQ_APPX_FILE = 4,        /* an embedded file: u16 name_len, name, bytes */
};
#define SQ_APPX_F_REQUIRED 1u /* a reader that does not know the type must refuse the file */

typedef struct sq_header {
    uint16_t major, minor;
    uint32_t header_size, alignment;
    uint64_t flags;
    uint32_t incompat;
    uint32_t arch;
    uint32_t n_layers, hidden_size, n_heads, n_kv_heads, vocab_size, intermediate_size;
    float avg_bpw, sparsity;
    uint8_t calib_hash[32];
    uint32_t n_tensors, n_appendix;
    uint64_t index_offset, index_size, index_checksum;
    uint64_t meta_offset, meta_stored_size, meta_raw_size, meta_checksum;
    uint32_t meta_compression;
    uint64_t appendix_offset, appendix_size, appendix_checksum;
    uint64_t data_offset, data_size;
    uint64_t file_size;
    uint64_t header_checksum;
} sq_header;

/* Model facts the writer copies into the header. */
typedef struct sq_model_info {
    uint32_t arch, n_layers, hidden_size, n_heads, n_kv_heads, vocab_size, intermediate_size;
    float sparsity;
    uint8_t calib_hash[32];
} sq_model_info;

typedef struct sq_part {
    char name[SQ_MAX_PART_NAME + 1];
    uint32_t dtype, ndim, compression;
    uint64_t dims[4];
    uint64_t offset, stored_size, raw_size, checksum;
    uint64_t rec_offset; /* where its record sits in the file (for messages) */
} sq_part;

typedef struct sq_tensor {
    char *name;            /* NUL-terminated copy */
    uint32_t ndim, src_dtype, codec;
    uint32_t params[SQ_NPARAMS];
    uint64_t dims[SQ_MAX_NDIM];
    uint32_t n_parts;
    sq_part parts[SQ_MAX_PARTS];
    uint64_t rec_offset;
} sq_tensor;

typedef struct sq_appendix {
    uint32_t type, flags;
    uint64_t offset, stored_size, raw_size, checksum; /* offset of the data bytes */
} sq_appendix;

/* ---------------- reader ---------------- */
typedef struct sq_file sq_file;

/* Opens and validates header, index and section bounds, and checks the header
 * and index checksums. Part checksums are checked on sq_part_read or by
 * sq_verify. path "-" reads standard input into memory. */
sq_file *sq_open(const char *path, sq_err *err);
/* Same, over a copy of a buffer; name is used in messages. */
sq_file *sq_open_mem(const char *name, const void *data, size_t len, sq_err *err);
void sq_close(sq_file *f);

const char *sq_file_path(const sq_file *f);
const sq_header *sq_file_header(const sq_file *f);
const uint8_t *sq_file_bytes(const sq_file *f, uint64_t *size);
uint32_t sq_file_ntensors(const sq_file *f);
const sq_tensor *sq_file_tensor(const sq_file *f, uint32_t i);
const sq_tensor *sq_file_find(const sq_file *f, const char *name);
const sq_part *sq_tensor_part(const sq_tensor *t, const char *name);
uint32_t sq_file_nappendix(const sq_file *f);
const sq_appendix *sq_file_appendix(const sq_file *f, uint32_t i);

/* Metadata JSON (decompressed, NUL-terminated; owned by f). */
const char *sq_file_metadata(sq_file *f, sq_err *err);

/* Part bytes after decompression (zstd) or decoding (TCA-TBE). For an
 * uncompressed part *ptr points into the mapping (zero copy) and *owned is
 * NULL; otherwise *owned must be freed. The checksum is verified unless
 * skip_checksum. */
sq_status sq_part_read(const sq_file *f, const sq_part *p, int skip_checksum,
                       const void **ptr, void **owned, sq_err *err);
/* Appendix block bytes, same rules. */
sq_status sq_appendix_read(const sq_file *f, const sq_appendix *a,
                           const void **ptr, void **owned, sq_err *err);
/* An embedded file (appendix type 4: u16 name_len, name, bytes): name and
 * data point into the block (read as by sq_appendix_read; free *owned).
 * A malformed block is SQ_ECORRUPT. */
sq_status sq_appendix_file(const sq_file *f, const sq_appendix *a, const char **name, size_t *name_len,
                           const uint8_t **data, uint64_t *size, void **owned, sq_err *err);

/* Full integrity check: every checksum, bounds, overlaps, alignment, codec
 * part layout. Returns the first failure; problems are also counted and
 * reported one per line through report() if it is non-NULL. */
typedef void (*sq_report_fn)(void *ctx, sq_status st, const char *msg);
sq_status sq_verify(sq_file *f, sq_report_fn report, void *ctx, sq_err *err);

/* ---------------- writer ---------------- */
typedef struct sq_writer sq_writer;

typedef struct sq_writer_opts {
    uint32_t alignment;   /* 0 = 64 */
    int zstd_level;       /* compression level for parts written with SQ_COMP_ZSTD */
    int compress_meta;    /* zstd the metadata section */
} sq_writer_opts;

/* Creates a temporary file beside path. "-" (stdout) and other streams: an
 * unlinked spool file in $TMPDIR as large as the output (the header needs
 * the final sizes), copied out on commit. Nothing appears at path until
 * sq_writer_commit succeeds. */
sq_writer *sq_writer_open(const char *path, const sq_writer_opts *opts, sq_err *err);
void sq_writer_set_model(sq_writer *w, const sq_model_info *info);
sq_status sq_writer_set_metadata(sq_writer *w, const char *json, sq_err *err);
/* ORs technique flags the codecs cannot know (SQ_FLAG_GPTQ, SQ_FLAG_AWQ) into the header. */
void sq_writer_add_flags(sq_writer *w, uint64_t flags);
sq_status sq_writer_begin_tensor(sq_writer *w, const char *name, uint32_t ndim, const uint64_t *dims,
                                 uint32_t src_dtype, uint32_t codec, const uint32_t params[SQ_NPARAMS],
                                 sq_err *err);
/* Writes one part of the current tensor now (streamed to disk). */
sq_status sq_writer_add_part(sq_writer *w, const char *name, uint32_t dtype, uint32_t ndim,
                             const uint64_t *dims, const void *data, uint64_t size, uint32_t compression,
                             sq_err *err);
/* Writes a part whose stored bytes are given as they are (already
 * compressed when compression is zstd): used to copy parts between files
 * without recompressing. The checksum is computed over the stored bytes. */
sq_status sq_writer_add_part_stored(sq_writer *w, const char *name, uint32_t dtype, uint32_t ndim, const uint64_t *dims,
                                    const void *stored_data, uint64_t stored_size, uint64_t raw_size,
                                    uint32_t compression, sq_err *err);
sq_status sq_writer_end_tensor(sq_writer *w, sq_err *err);
sq_status sq_writer_add_appendix(sq_writer *w, uint32_t type, uint32_t flags, const void *data, uint64_t size,
                                 uint32_t compression, sq_err *err);
/* Writes index, metadata, appendix and header; fsyncs; renames into place.
 * Frees w whatever the outcome. */
sq_status sq_writer_commit(sq_writer *w, sq_err *err);
/* Removes the temporary file and frees w. */
void sq_writer_abort(sq_writer *w);

/* Installs SIGINT/SIGTERM/SIGHUP/SIGPIPE handlers that unlink every open
 * writer's temporary file and then re-raise the signal (SIGHUP and SIGPIPE
 * only when not ignored at startup: nohup, EPIPE). Idempotent. */
void sq_install_signal_cleanup(void);

/* Encodes/decodes the 256-byte header (exposed for tests and tools). */
void sq_header_encode(const sq_header *h, uint8_t out[SQ_HEADER_SIZE]);

#ifdef __cplusplus
}
#endif
#endif
