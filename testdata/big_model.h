/* make-testdata bigmodel: a synthetic Llama of real-model shape, streamed to
 * sharded bf16 safetensors (see big_model.c). */
#ifndef SQUISH_TESTDATA_BIG_MODEL_H
#define SQUISH_TESTDATA_BIG_MODEL_H

/* shape: "1b" (TinyLlama-1.1B) or "7b" (Llama-2-7B). 0 on success, 1 on an
 * I/O error (reported on stderr), 2 for an unknown shape. */
int make_big_model(const char *dir, const char *shape);

#endif
