/* Tokenizers. Now: Hugging Face tokenizer.json byte-level BPE (GPT-2
 * pre-tokenizer regex, merges, added/special tokens). */
#ifndef SQUISH_TOKENIZER_H
#define SQUISH_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "squish/error.h"

typedef struct sq_tokenizer sq_tokenizer;

/* tokenizer.json (BPE), tokenizer.model (SentencePiece BPE), or a llama2.c
 * tokenizer.bin (needs the model's vocab size, 0 otherwise). */
sq_tokenizer *sq_tokenizer_load(const char *path, sq_err *err);
sq_tokenizer *sq_tokenizer_load_vocab(const char *path, uint32_t vocab, sq_err *err);
/* The same from memory; kind: 0 tokenizer.json, 1 tokenizer.model, 2 llama2.c tokenizer.bin. */
sq_tokenizer *sq_tokenizer_load_mem(const uint8_t *data, size_t len, int kind, uint32_t vocab, const char *name, sq_err *err);
/* The tokenizer embedded in a container (squish-quantize, squish-pack
 * bundle): the first of tokenizer.json, tokenizer.model, tokenizer.bin,
 * tok<N>.bin (llama2.c) among its embedded files.
 * label (label_cap bytes) receives "FILE (embedded NAME)" for messages.
 * NULL with err->status SQ_OK when the file embeds none of them. */
struct sq_file;
sq_tokenizer *sq_tokenizer_embedded(const struct sq_file *f, uint32_t vocab, char *label, size_t label_cap, sq_err *err);
void sq_tokenizer_free(sq_tokenizer *t);
uint32_t sq_tokenizer_vocab(const sq_tokenizer *t);
/* Encodes UTF-8 text (no BOS/EOS added). *ids is malloc'd. Invalid UTF-8 is an error. */
sq_status sq_tokenize(sq_tokenizer *t, const char *text, size_t len, int32_t **ids, uint64_t *n, sq_err *err);
/* Converts CRLF and lone CR line ends to LF in place (how Python reads a text
 * file, and so how the reference figures were tokenized); returns the new length. */
size_t sq_text_newlines(char *text, size_t len);
/* Appends the UTF-8 bytes of one token to out (cap bytes); returns the length. */
size_t sq_detokenize_one(const sq_tokenizer *t, int32_t id, char *out, size_t cap);

#endif
