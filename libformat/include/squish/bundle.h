/* Bundled model files: the configuration and tokenizer files a runtime needs
 * besides the tensors, stored in the container as embedded files (appendix
 * blocks of type 4, spec/squizd.md §12), so that one .squizd evaluates,
 * generates and exports on its own, away from the model directory. */
#ifndef SQUISH_BUNDLE_H
#define SQUISH_BUNDLE_H

#include <stdint.h>

#include "squish/container.h"
#include "squish/error.h"
#include "squish/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A set of named files (struct sq_vfile of squish/model.h), sorted by name
 * (strcmp) once complete: the same set always gives the same bytes. */
typedef struct sq_bundle {
    struct sq_vfile *files;
    uint32_t n;
} sq_bundle;

#define SQ_BUNDLE_MAX_FILES 256
#define SQ_BUNDLE_MAX_BYTES ((uint64_t)1 << 30) /* per file */

/* Tokenizer kinds (sq_tokenizer_load_mem's): tokenizer.json, SentencePiece
 * tokenizer.model, llama2.c tokenizer.bin / tok<N>.bin. */
enum { SQ_TOK_JSON = 0, SQ_TOK_SPM = 1, SQ_TOK_LLAMA2C = 2 };

/* The files squish-quantize embeds from a source model: for a Hugging Face
 * directory (or archive) those of config.json, generation_config.json,
 * tokenizer.json, tokenizer.model, tokenizer_config.json and
 * special_tokens_map.json that exist; for a llama2.c checkpoint the
 * tokenizer found beside it (tok<vocab>.bin or tokenizer.bin) under its own
 * name; for a .squizd its embedded files; for GGUF none (its vocabulary is
 * metadata, not a file). */
sq_status sq_bundle_from_model(const sq_model *m, sq_bundle *b, sq_err *err);
/* Every embedded file of a container, copied. */
sq_status sq_bundle_from_file(const sq_file *f, sq_bundle *b, sq_err *err);
/* Adds a copy of data under name (replacing a file of that name). */
sq_status sq_bundle_add(sq_bundle *b, const char *name, const void *data, uint64_t size, sq_err *err);
void sq_bundle_sort(sq_bundle *b);
const struct sq_vfile *sq_bundle_find(const sq_bundle *b, const char *name);
/* 1 when both hold the same names with the same bytes. */
int sq_bundle_equal(const sq_bundle *a, const sq_bundle *b);
/* Appends every file as an appendix block of type 4, in the bundle's order;
 * compression SQ_COMP_NONE or SQ_COMP_ZSTD (at the writer's level). */
sq_status sq_bundle_write(sq_writer *w, const sq_bundle *b, uint32_t compression, sq_err *err);
void sq_bundle_free(sq_bundle *b);

/* Whether a file name is a tokenizer and which: returns its preference
 * (0 tokenizer.json, 1 tokenizer.model, 2 tokenizer.bin, 3 tok<digits>.bin;
 * lower is preferred) and sets *kind (SQ_TOK_*), or -1 for other names. */
int sq_bundle_tokenizer_rank(const char *name, size_t name_len, int *kind);
/* The preferred tokenizer of a bundle, or NULL. */
const struct sq_vfile *sq_bundle_tokenizer(const sq_bundle *b, int *kind);

#ifdef __cplusplus
}
#endif
#endif
