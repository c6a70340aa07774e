#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static struct {
    int active, tty, shown, redraw;
    const char *what, *unit;
    uint64_t total;
    double start, last, interval;
} P;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* h:mm:ss, or m:ss under an hour */
static void hms(double s, char *out, size_t len) {
    unsigned long t = s > 0 ? (unsigned long)(s + 0.5) : 0;
    if (t >= 3600) snprintf(out, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, len, "%lu:%02lu", t / 60, t % 60);
}

void cli_progress_start(const char *what, uint64_t total, const char *unit) {
    P.active = 1;
    P.shown = P.redraw = 0;
    P.what = what;
    P.unit = unit;
    P.total = total;
    P.tty = cli_stderr_tty();
    P.start = P.last = now();
    P.interval = P.tty ? 0.1 : 5.0;
    const char *e = getenv("SQUISH_PROGRESS_INTERVAL");
    char *end;
    double v = e && *e ? strtod(e, &end) : -1;
    if (e && *e && !*end && v >= 0) P.interval = v;
}

void cli_progress_update(uint64_t done) {
    if (!P.active || cli_quiet || !P.total) return;
    double t = now();
    if (t - P.last < P.interval && !P.redraw && done < P.total) return;
    if (done > P.total) done = P.total;
    if (!P.tty && done == P.total && !P.shown) return; /* a short run: no line at all */
    P.last = t;
    P.redraw = 0;
    double el = t - P.start, frac = (double)done / (double)P.total;
    char elapsed[32], eta[32] = "?", count[64] = "";
    hms(el, elapsed, sizeof elapsed);
    if (done) hms(el / frac - el, eta, sizeof eta);
    if (P.unit)
        snprintf(count, sizeof count, P.tty ? " %llu/%llu %s" : " (%llu/%llu %s)", (unsigned long long)done,
                 (unsigned long long)P.total, P.unit);
    int pct = (int)(frac * 100);
    if (P.tty) {
        char bar[21];
        int fill = (int)(frac * 20);
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        fprintf(stderr, "\r%s [%s] %3d%%%s, %s elapsed, ETA %s\033[K", P.what, bar, pct, count, elapsed, eta);
    } else {
        fprintf(stderr, "%s: %s: %d%%%s, %s elapsed, ETA %s\n", cli_prog, P.what, pct, count, elapsed, eta);
    }
    fflush(stderr);
    P.shown = 1;
}

void cli_progress_cb(void *ctx, uint64_t done, uint64_t total) {
    if (!P.active) cli_progress_start(ctx ? (const char *)ctx : "working", total, NULL);
    P.total = total;
    cli_progress_update(done);
}

void cli_progress_clear(void) {
    if (P.active && P.tty && P.shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        P.redraw = 1;
    }
}

void cli_progress_done(void) {
    cli_progress_clear();
    P.active = 0;
}

void cli_progress(const char *what, uint64_t done, uint64_t total) {
    if (!P.active || P.what != what || P.total != total) cli_progress_start(what, total, NULL);
    cli_progress_update(done);
}
