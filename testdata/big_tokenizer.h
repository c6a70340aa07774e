/* make-testdata bigmodel: a synthetic llama2.c tokenizer.bin for the big
 * model's vocabulary (see big_tokenizer.c). */
#ifndef SQUISH_TESTDATA_BIG_TOKENIZER_H
#define SQUISH_TESTDATA_BIG_TOKENIZER_H

#include <stdint.h>

/* Writes a llama2.c tokenizer.bin of exactly vocab tokens (vocab >= 354) to
 * path. 0 on success, -1 on an I/O error (errno set) or a vocab too small. */
int write_big_tokenizer(const char *path, uint32_t vocab);

#endif
