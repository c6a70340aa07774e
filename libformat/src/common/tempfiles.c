/* Registry of temporary output files, so that a signal handler can remove
 * them: on SIGINT/SIGTERM/SIGHUP/SIGPIPE no partial output is left behind. */
#include "common/tempfiles.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define MAX_TEMPS 64
#define TEMP_PATH_MAX 4096

/* Slots are claimed/released under a blocked-signal section; the handler
 * only reads them, and unlink() is async-signal-safe. */
static char temp_paths[MAX_TEMPS][TEMP_PATH_MAX];
static volatile sig_atomic_t temp_used[MAX_TEMPS];

static void block_signals(sigset_t *old) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGHUP);
    sigaddset(&s, SIGPIPE);
    sigprocmask(SIG_BLOCK, &s, old);
}

int sq_temp_register(const char *path) {
    if (strlen(path) >= TEMP_PATH_MAX) return -1;
    sigset_t old;
    block_signals(&old);
    int slot = -1;
    for (int i = 0; i < MAX_TEMPS; i++)
        if (!temp_used[i]) {
            memcpy(temp_paths[i], path, strlen(path) + 1);
            temp_used[i] = 1;
            slot = i;
            break;
        }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return slot;
}

void sq_temp_release(int slot) {
    if (slot < 0 || slot >= MAX_TEMPS) return;
    sigset_t old;
    block_signals(&old);
    temp_used[slot] = 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void on_signal(int sig) {
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temp_used[i]) unlink(temp_paths[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

void sq_install_signal_cleanup(void) {
    static int installed;
    if (installed) return;
    installed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* SIGPIPE: a reader of standard error (or of a FIFO output) went away;
     * the process ends by the signal as before, without its temporaries. */
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        /* SIGHUP or SIGPIPE ignored by the parent stays ignored: nohup, and
         * a write that fails with EPIPE (an I/O error) instead of a signal.
         * SIGINT is caught even when ignored (a background job of a script):
         * an interrupted run must still remove its temporary files. */
        if (sigs[i] != SIGINT && sigs[i] != SIGTERM && sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        sigaction(sigs[i], &sa, NULL);
    }
}
