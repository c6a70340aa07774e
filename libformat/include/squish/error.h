/* Error reporting shared by every squish library call.
 * A call that fails fills an sq_err with a status and one line of text that
 * names the file, the field and the byte offset where that makes sense. */
#ifndef SQUISH_ERROR_H
#define SQUISH_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. The tools map them 1:1 onto exit codes (see squish-verify(1)). */
typedef enum sq_status {
    SQ_OK = 0,
    SQ_ECHECK = 1,       /* a requested quality gate failed (file itself is fine) */
    SQ_EUSAGE = 2,       /* bad arguments, bad scheme string */
    SQ_EIO = 3,          /* open/read/write/fsync/rename failed, disk full */
    SQ_ECORRUPT = 4,     /* malformed, truncated or checksum-failing input */
    SQ_EUNSUPPORTED = 5, /* newer major version, unknown required codec/feature */
    SQ_ENOMEM = 6,       /* allocation failed or a declared size exceeds a limit */
    SQ_EINTERNAL = 7     /* a bug: an invariant did not hold */
} sq_status;

typedef struct sq_err {
    sq_status status;
    char msg[512];
} sq_err;

/* Sets err (if non-NULL) and returns status. printf-style message. */
sq_status sq_err_set(sq_err *err, sq_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
sq_status sq_err_vset(sq_err *err, sq_status status, const char *fmt, va_list ap);
void sq_err_clear(sq_err *err);
const char *sq_status_name(sq_status s);

#ifdef __cplusplus
}
#endif
#endif
