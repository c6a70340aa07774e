/* Reading whole (small) files with a size limit. */
#ifndef SQUISH_FILEIO_H
#define SQUISH_FILEIO_H

#include <stddef.h>

#include "squish/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads path into a malloc'd, NUL-terminated buffer. Files larger than
 * max_bytes are refused (SQ_ENOMEM) instead of read. */
sq_status sq_read_file(const char *path, size_t max_bytes, char **out, size_t *len, sq_err *err);

#ifdef __cplusplus
}
#endif
#endif
