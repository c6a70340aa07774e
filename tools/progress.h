/* Progress of long commands on standard error, with elapsed time and ETA.
 * On a terminal: one line redrawn in place (at most every 0.1 s). Otherwise
 * (a CI log): a plain line every 5 s, none for runs shorter than that.
 * -q (cli_quiet) silences it. SQUISH_PROGRESS_INTERVAL=SECONDS sets the
 * interval for both (0: every step). Output files are never affected. */
#ifndef SQUISH_PROGRESS_H
#define SQUISH_PROGRESS_H

#include <stdint.h>

/* Starts a task of total steps (0: not known yet); unit names the steps in
 * the line ("tensors", "windows") or is NULL to show only the percentage. */
void cli_progress_start(const char *what, uint64_t total, const char *unit);
/* done of total steps are complete. */
void cli_progress_update(uint64_t done);
/* A progress callback for library code (void (*)(void *, uint64_t, uint64_t)):
 * sets the total and updates; starts a task named by ctx (a string) if none
 * is running. */
void cli_progress_cb(void *ctx, uint64_t done, uint64_t total);
/* Erases the terminal line before other text goes to the terminal; the next
 * update redraws it. */
void cli_progress_clear(void);
/* Ends the task (erases the terminal line). */
void cli_progress_done(void);
/* Shorthand for a loop: starts the task when what changes, then updates. */
void cli_progress(const char *what, uint64_t done, uint64_t total);

#endif
