#include "squish/error.h"

#include <stdio.h>
#include <string.h>

sq_status sq_err_vset(sq_err *err, sq_status status, const char *fmt, va_list ap) {
    if (err) {
        err->status = status;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return status;
}

sq_status sq_err_set(sq_err *err, sq_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sq_err_vset(err, status, fmt, ap);
    va_end(ap);
    return status;
}

void sq_err_clear(sq_err *err) {
    if (err) {
        err->status = SQ_OK;
        err->msg[0] = '\0';
    }
}

const char *sq_status_name(sq_status s) {
    switch (s) {
    case SQ_OK: return "ok";
    case SQ_ECHECK: return "check failed";
    case SQ_EUSAGE: return "usage error";
    case SQ_EIO: return "I/O error";
    case SQ_ECORRUPT: return "corrupt file";
    case SQ_EUNSUPPORTED: return "unsupported";
    case SQ_ENOMEM: return "out of memory or over a limit";
    case SQ_EINTERNAL: return "internal error";
    }
    return "unknown status";
}
