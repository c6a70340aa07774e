/* make-testdata bigmodel: a synthetic SentencePiece tokenizer.model for the
 * big model's vocabulary (see big_tokenizer.c). */
#ifndef SQUISH_TESTDATA_BIG_TOKENIZER_H
#define SQUISH_TESTDATA_BIG_TOKENIZER_H

#include <stdint.h>

/* Writes a SentencePiece BPE model (tokenizer.model) of exactly vocab pieces
 * (vocab >= 354) to path. 0 on success, -1 on an I/O error (errno set) or a
 * vocab too small or too large (EINVAL); no file is left on failure. */
int write_big_tokenizer(const char *path, uint32_t vocab);

#endif
