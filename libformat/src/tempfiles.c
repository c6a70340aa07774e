/* Registry of temporary output files, so that a signal handler can remove
 * them: on SIGINT/SIGTERM/SIGHUP no partial output is left behind. */
#include "tempfiles.h"

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
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}
