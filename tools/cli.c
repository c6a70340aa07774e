#include "cli.h"
#include "squish/codec.h" /* sq_default_threads */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cli_prog = "squish";
int cli_quiet = 0;

int cli_exit_code(sq_status s) {
    switch (s) {
    case SQ_OK: return EXIT_OK;
    case SQ_ECHECK: return EXIT_CHECK;
    case SQ_EUSAGE: return EXIT_USAGE;
    case SQ_EIO: return EXIT_IO;
    case SQ_ECORRUPT: return EXIT_CORRUPT;
    case SQ_EUNSUPPORTED: return EXIT_UNSUPPORTED;
    case SQ_ENOMEM: return EXIT_RESOURCE;
    default: return EXIT_INTERNAL;
    }
}

int cli_fail(const sq_err *err) {
    cli_progress_done();
    fprintf(stderr, "%s: error: %s\n", cli_prog, err->msg[0] ? err->msg : sq_status_name(err->status));
    return cli_exit_code(err->status);
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", cli_prog);
    return EXIT_USAGE;
}

void cli_note(const char *fmt, ...) {
    if (cli_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

int cli_stderr_tty(void) { return isatty(STDERR_FILENO); }

int cli_parse_threads(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 0 || v > 1024) return -1;
    *out = v ? (int)v : sq_default_threads(); /* 0: all cores, like the default */
    return 0;
}

int cli_parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s) return -1;
    *out = v;
    return 0;
}

void cli_human_bytes(uint64_t n, char *out, size_t len) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) { v /= 1024; i++; }
    if (i == 0) snprintf(out, len, "%llu B", (unsigned long long)n);
    else snprintf(out, len, "%.1f %s", v, u[i]);
}

int cli_parse_shard(const char *s, int *k, int *n) {
    char tail;
    return sscanf(s, "%d/%d%c", k, n, &tail) == 2 && *n >= 1 && *n <= 4096 && *k >= 1 && *k <= *n ? 0 : -1;
}
