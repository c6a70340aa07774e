/* A model's tokenizer as llama.cpp's GGUF vocabulary (tokenizer.ggml.*):
 *  - tokenizer.json, byte-level BPE with the GPT-2 pre-tokenizer: model
 *    "gpt2", pre "gpt-2", tokens, token_type, merges (as llama.cpp's
 *    convert_hf_to_gguf.py _set_vocab_gpt2 writes them);
 *  - SentencePiece tokenizer.model, or a llama2.c tokenizer.bin/tok<N>.bin
 *    (pieces with ' ' for U+2581): model "llama", tokens, scores, token_type
 *    (normal 1, unknown 2, control 3, user-defined 4, unused 5, byte 6).
 * Special ids from the model configuration (bos_token_id, eos_token_id,
 * unk_token_id, pad_token_id), else tokenizer_config.json's token strings,
 * else (SentencePiece) the trainer's ids; add_bos_token/add_eos_token from
 * tokenizer_config.json, else false for gpt2 and true/false for llama. */
#ifndef SQUISH_GGUF_VOCAB_H
#define SQUISH_GGUF_VOCAB_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf_write.h"
#include "squish/error.h"

typedef struct sq_gguf_vocab_src {
    const char *name;          /* file name, for messages */
    const uint8_t *data;       /* the tokenizer file */
    size_t size;
    int kind;                  /* SQ_TOK_* (squish/bundle.h) */
    json_object *config;       /* the model configuration (config.json), may be NULL */
    const uint8_t *tok_config; /* tokenizer_config.json, may be NULL */
    size_t tok_config_size;
    uint32_t n_vocab;          /* the model's vocabulary size (rows of the embedding) */
} sq_gguf_vocab_src;

/* Adds the tokenizer.ggml.* key/values. Errors name the file and what it
 * holds that GGUF's vocabularies cannot say (SQ_EUNSUPPORTED), or its damage
 * (SQ_ECORRUPT). *model receives "gpt2" or "llama". */
sq_status sq_gguf_add_vocab(sq_gguf_writer *w, const sq_gguf_vocab_src *src, const char **model, sq_err *err);

#endif
