/* Helpers shared by the squish command-line tools: exit codes, messages,
 * progress on stderr, number formatting. */
#ifndef SQUISH_CLI_H
#define SQUISH_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "progress.h" /* cli_progress_*: progress with ETA on stderr */
#include "squish/error.h"

/* Exit codes (documented in every tool's man page). */
enum {
    EXIT_OK = 0,
    EXIT_CHECK = 1,       /* a quality gate or verification failed */
    EXIT_USAGE = 2,
    EXIT_IO = 3,
    EXIT_CORRUPT = 4,
    EXIT_UNSUPPORTED = 5,
    EXIT_RESOURCE = 6,
    EXIT_INTERNAL = 7
};

extern const char *cli_prog;
extern int cli_quiet;

int cli_exit_code(sq_status s);
/* "prog: message" on stderr; returns the exit code for status. */
int cli_fail(const sq_err *err);
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* stderr unless -q */
int cli_stderr_tty(void);
/* -T N: 1..1024 threads, or 0 for all cores (sq_default_threads). */
int cli_parse_threads(const char *s, int *out);
int cli_parse_double(const char *s, double *out);
void cli_human_bytes(uint64_t n, char *out, size_t len);
/* "K/N" with 1 <= K <= N <= 4096 (the --shard option of the tools). */
int cli_parse_shard(const char *s, int *k, int *n);

#endif
