/* A GGUF (version 3) file writer: key/value metadata and tensors, written
 * atomically (temporary file beside the target, renamed on commit).
 *
 * Layout written (llama.cpp's gguf.cpp / gguf-py read it): "GGUF", u32
 * version 3, u64 tensor count, u64 key/value count; the key/value pairs
 * (string key = u64 length + bytes, u32 value type, value; arrays = u32
 * element type, u64 count, elements); the tensor infos (name, u32 n_dims,
 * u64 ne[n_dims] innermost first, u32 ggml type, u64 offset from the start
 * of the data); zero padding to the alignment (32); the tensor data, each
 * tensor padded to the alignment. All integers little-endian.
 *
 * Use: add key/values and plan every tensor (name, shape, type); begin
 * writes everything up to the data; then write each tensor's bytes in plan
 * order; commit. Memory: the metadata and one tensor at a time. */
#ifndef SQUISH_GGUF_WRITE_H
#define SQUISH_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "squish/error.h"

/* GGUF metadata value types. */
enum {
    SQ_GGUF_U8 = 0, SQ_GGUF_I8 = 1, SQ_GGUF_U16 = 2, SQ_GGUF_I16 = 3, SQ_GGUF_U32 = 4, SQ_GGUF_I32 = 5,
    SQ_GGUF_F32 = 6, SQ_GGUF_BOOL = 7, SQ_GGUF_STRING = 8, SQ_GGUF_ARRAY = 9, SQ_GGUF_U64 = 10,
    SQ_GGUF_I64 = 11, SQ_GGUF_F64 = 12
};
#define SQ_GGUF_ALIGNMENT 32

typedef struct sq_gguf_writer sq_gguf_writer;

sq_gguf_writer *sq_gguf_writer_new(void);
void sq_gguf_writer_free(sq_gguf_writer *w); /* removes an uncommitted output */

/* Key/values, in the order added. Each returns SQ_ENOMEM on failure. */
sq_status sq_gguf_kv_str(sq_gguf_writer *w, const char *key, const char *value, sq_err *err);
sq_status sq_gguf_kv_u32(sq_gguf_writer *w, const char *key, uint32_t value, sq_err *err);
sq_status sq_gguf_kv_f32(sq_gguf_writer *w, const char *key, float value, sq_err *err);
sq_status sq_gguf_kv_bool(sq_gguf_writer *w, const char *key, int value, sq_err *err);
/* Arrays: strings given with their lengths (not NUL-terminated), i32, f32. */
sq_status sq_gguf_kv_strs(sq_gguf_writer *w, const char *key, const char *const *s, const size_t *len, uint64_t n,
                          sq_err *err);
sq_status sq_gguf_kv_i32s(sq_gguf_writer *w, const char *key, const int32_t *v, uint64_t n, sq_err *err);
sq_status sq_gguf_kv_f32s(sq_gguf_writer *w, const char *key, const float *v, uint64_t n, sq_err *err);

/* A tensor of ne[0..ndim) elements (ne[0] innermost: a [rows, cols] matrix
 * is ne = {cols, rows}) in ggml type `type` taking nbytes. */
sq_status sq_gguf_plan_tensor(sq_gguf_writer *w, const char *name, uint32_t ndim, const uint64_t *ne, uint32_t type,
                              uint64_t nbytes, sq_err *err);
/* Opens the temporary output and writes header, metadata and tensor infos. */
sq_status sq_gguf_begin(sq_gguf_writer *w, const char *path, sq_err *err);
/* The next planned tensor's bytes (exactly its planned size). */
sq_status sq_gguf_write_tensor(sq_gguf_writer *w, const void *data, uint64_t nbytes, sq_err *err);
/* After the last tensor: fsync, rename into place. */
sq_status sq_gguf_commit(sq_gguf_writer *w, sq_err *err);
/* Bytes of the file once written (known after the plan). */
uint64_t sq_gguf_file_size(const sq_gguf_writer *w);

#endif
