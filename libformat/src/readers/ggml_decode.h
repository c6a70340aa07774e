/* ggml's quantized block types, as GGUF files store them: one decoder per
 * type (a block of block_elems values from block_bytes bytes to f32) and a
 * table by ggml type id (ggml.h enum ggml_type, a fact of the format).
 * Written from the published block layouts (docs/gguf-import.md), not from
 * ggml's code. Every decoded value is the exact value of its formula rounded
 * once to f32 (ties to even): the products involved are exact in f32 and at
 * most one subtraction rounds, so operation order and FMA do not matter. */
#ifndef SQUISH_GGML_DECODE_H
#define SQUISH_GGML_DECODE_H

#include <stdint.h>

typedef void (*sq_ggml_qtype_fn)(const uint8_t *block, float *out);

typedef struct sq_ggml_qtype {
    uint32_t id;          /* ggml type id */
    const char *name;     /* ggml's name: "Q4_K" */
    uint32_t block_elems; /* values per block (32 or 256) */
    uint32_t block_bytes; /* bytes per block */
    sq_ggml_qtype_fn decode;
} sq_ggml_qtype;

/* The block type with ggml id `id`, or NULL when squish does not decode it
 * (F32/F16/BF16 are plain dtypes, not blocks). */
const sq_ggml_qtype *sq_ggml_qtype_find(uint32_t id);
/* ggml's name for any type id ("unknown" past the table), for messages. */
const char *sq_ggml_qtype_name(uint32_t id);
/* Decodes n_blocks consecutive blocks from src into out (n_blocks * block_elems floats). */
void sq_ggml_qtype_decode(const sq_ggml_qtype *t, const uint8_t *src, uint64_t n_blocks, float *out);

#endif
