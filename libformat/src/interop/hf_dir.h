/* Output directories built beside their target and renamed into place,
 * and the small files written into them (internal, GPTQ/AWQ interop). */
#ifndef SQUISH_HF_DIR_H
#define SQUISH_HF_DIR_H

#include <stdint.h>

#include "squish/error.h"

/* dir must not exist or be an empty directory. Returns the malloc'd path of
 * a new empty "<dir>.squish-tmp-<pid>-XXXXXX" directory, or NULL (err set). */
char *sq_hf_dir_begin(const char *dir, sq_err *err);
/* Renames tmp to dir (removing dir first when it is an empty directory). */
sq_status sq_hf_dir_commit(const char *tmp, const char *dir, sq_err *err);
/* Removes tmp and the files in it. */
void sq_hf_dir_abort(const char *tmp);
/* Writes size bytes to path (text: a final newline is added). */
sq_status sq_hf_write_file(const char *path, const void *data, uint64_t size, int text, sq_err *err);
/* A name to write into a directory: no '/', not "." or "..", not empty. */
int sq_hf_safe_name(const char *name);

#endif
