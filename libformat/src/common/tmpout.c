/* Atomic output files for writers that need a path (HDF5): a temporary
 * file beside the target, registered for signal cleanup, renamed over the
 * target on commit. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "squish/fileio.h"
#include "common/tempfiles.h"

/* Removes "<base>.squish-tmp-<pid>-*" files beside path whose writer process
 * is gone (killed with SIGKILL, or the machine lost power). Files of a live
 * process are left alone. */
void sq_remove_stale_temps(const char *path) {
    char *dcopy = strdup(path), *bcopy = strdup(path);
    if (!dcopy || !bcopy) goto out;
    const char *dir = dirname(dcopy), *base = basename(bcopy);
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, base, blen) || strncmp(e->d_name + blen, ".squish-tmp-", 12)) continue;
        long pid = strtol(e->d_name + blen + 12, NULL, 10);
        if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char *full = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (full) {
            sprintf(full, "%s/%s", dir, e->d_name);
            unlink(full);
            free(full);
        }
    }
    if (d) closedir(d);
out:
    free(dcopy);
    free(bcopy);
}

sq_status sq_tmpout_create(sq_tmpout *t, const char *path, sq_err *err) {
    memset(t, 0, sizeof *t);
    t->slot = -1;
    struct stat st;
    if (!strcmp(path, "-") || (stat(path, &st) == 0 && !S_ISREG(st.st_mode)))
        return sq_err_set(err, SQ_EUSAGE, "%s: this output must be a regular file path", path);
    sq_remove_stale_temps(path);
    t->path = strdup(path);
    t->tmp = malloc(strlen(path) + 48);
    if (!t->path || !t->tmp) {
        sq_tmpout_abort(t);
        return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
    }
    sprintf(t->tmp, "%s.squish-tmp-%ld-XXXXXX", path, (long)getpid());
    int fd = mkostemp(t->tmp, O_CLOEXEC);
    if (fd < 0) {
        sq_status s = sq_err_set(err, SQ_EIO, "%s: cannot create temporary file %s: %s", path, t->tmp, strerror(errno));
        free(t->tmp);
        t->tmp = NULL;
        sq_tmpout_abort(t);
        return s;
    }
    fchmod(fd, 0644);
    close(fd);
    t->slot = sq_temp_register(t->tmp);
    return SQ_OK;
}

sq_status sq_tmpout_commit(sq_tmpout *t, sq_err *err) {
    int fd = open(t->tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        sq_status s = sq_err_set(err, SQ_EIO, "%s: cannot sync %s: %s", t->path, t->tmp, strerror(errno));
        if (fd >= 0) close(fd);
        sq_tmpout_abort(t);
        return s;
    }
    close(fd);
    if (rename(t->tmp, t->path) != 0) {
        sq_status s = sq_err_set(err, SQ_EIO, "%s: cannot rename %s into place: %s", t->path, t->tmp, strerror(errno));
        sq_tmpout_abort(t);
        return s;
    }
    char *dcopy = strdup(t->path);
    if (dcopy) {
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dcopy);
    }
    sq_temp_release(t->slot);
    free(t->tmp);
    free(t->path);
    memset(t, 0, sizeof *t);
    t->slot = -1;
    return SQ_OK;
}

void sq_tmpout_abort(sq_tmpout *t) {
    if (t->tmp) unlink(t->tmp);
    sq_temp_release(t->slot);
    free(t->tmp);
    free(t->path);
    memset(t, 0, sizeof *t);
    t->slot = -1;
}
