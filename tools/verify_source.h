/* squish-verify on a source model FILE instead of a .squizd: a GGUF that
 * llama.cpp quantized, say, read through the model readers (ggml blocks
 * decoded to f32), checked, compared and evaluated like a squish file. */
#ifndef SQUISH_VERIFY_SOURCE_H
#define SQUISH_VERIFY_SOURCE_H

#include <json-c/json.h>

#include "squish/model.h"

/* 1 when FILE names a source model rather than a .squizd: a name ending in
 * .gguf. Decided without reading the file, so a pipe given as FILE is left
 * whole for the .squizd reader. */
int verify_source_is_model(const char *path);
/* Opens path as a model and runs the structural check (sq_model_check);
 * NULL with err set on failure. */
sq_model *verify_source_open(const char *path, sq_err *err);
/* Compares every tensor of fm with the reference model at ref_path (the
 * table or JSON array "tensors" that a .squizd gets); returns an exit code. */
int verify_source_compare(const sq_model *fm, const char *ref_path, double min_cos, double max_rmse, double max_abs,
                          int json, json_object *out);
/* Bytes of the model's files, for the OK line. */
unsigned long long verify_source_bytes(const sq_model *fm);

#endif
