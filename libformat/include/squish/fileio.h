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

/* Atomic output through a path (for libraries that open files by name):
 * create makes an empty "PATH.squish-tmp-<pid>-XXXXXX" beside PATH (and
 * removes such files left by dead processes); the caller writes t->tmp;
 * commit fsyncs it and renames it over PATH; abort removes it. A signal
 * (SIGINT/SIGTERM/SIGHUP/SIGPIPE) removes it too once sq_install_signal_cleanup
 * ran. */
typedef struct sq_tmpout {
    char *path, *tmp;
    int slot;
} sq_tmpout;
sq_status sq_tmpout_create(sq_tmpout *t, const char *path, sq_err *err);
sq_status sq_tmpout_commit(sq_tmpout *t, sq_err *err);
void sq_tmpout_abort(sq_tmpout *t);
/* Removes "<PATH>.squish-tmp-<pid>-*" files whose process is gone. */
void sq_remove_stale_temps(const char *path);

#ifdef __cplusplus
}
#endif
#endif
