/* SentencePiece BPE tokenizer models (internal to the tokenizer). */
#ifndef SQUISH_SPM_H
#define SQUISH_SPM_H

#include <stddef.h>
#include <stdint.h>

#include "squish/error.h"

typedef struct sq_spm sq_spm;
sq_spm *sq_spm_load(const uint8_t *data, size_t size, const char *path, sq_err *err);
/* llama2.c tokenizer.bin: i32 max_token_length, then per token f32 score,
 * i32 length, bytes (spaces written as ' ', not U+2581); vocab from the model. */
sq_spm *sq_spm_load_llama2c(const uint8_t *data, size_t size, uint32_t vocab, const char *path, sq_err *err);
void sq_spm_free(sq_spm *m);
uint32_t sq_spm_vocab(const sq_spm *m);
sq_status sq_spm_encode(const sq_spm *m, const char *text, size_t len, int32_t **ids, uint64_t *n, sq_err *err);
const char *sq_spm_piece(const sq_spm *m, int32_t id, size_t *len);
/* 1 and *byte set when the piece is exactly "<0xHH>" (two hex digits). */
int sq_spm_byte_piece(const char *p, size_t len, unsigned *byte);

#endif
