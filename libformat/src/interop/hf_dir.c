/* Output directories for the GPTQ/AWQ export (see hf_dir.h). */
#include "interop/hf_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d))) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

char *sq_hf_dir_begin(const char *dir, sq_err *err) {
    struct stat st;
    if (!*dir) {
        sq_err_set(err, SQ_EUSAGE, "the output directory name is empty");
        return NULL;
    }
    if (stat(dir, &st) == 0 && (!S_ISDIR(st.st_mode) || !dir_is_empty(dir))) {
        sq_err_set(err, SQ_EUSAGE, "%s exists and is not an empty directory; give a new directory", dir);
        return NULL;
    }
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--; /* "out/" names the same directory as "out" */
    char *tmp = malloc(n + 48);
    if (!tmp) {
        sq_err_set(err, SQ_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(tmp, n + 48, "%.*s.squish-tmp-%ld-XXXXXX", (int)n, dir, (long)getpid());
    if (!mkdtemp(tmp)) {
        sq_err_set(err, SQ_EIO, "%s: cannot create a directory beside it: %s", dir, strerror(errno));
        free(tmp);
        return NULL;
    }
    mode_t mask = umask(0); /* mkdtemp makes it 0700: give it a new directory's usual mode */
    umask(mask);
    chmod(tmp, 0777 & ~mask);
    return tmp;
}

sq_status sq_hf_dir_commit(const char *tmp, const char *dir, sq_err *err) {
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && dir_is_empty(dir)) rmdir(dir);
    if (rename(tmp, dir) != 0) {
        sq_status s = sq_err_set(err, SQ_EIO, "%s: cannot rename %s into place: %s", dir, tmp, strerror(errno));
        sq_hf_dir_abort(tmp);
        return s;
    }
    return SQ_OK;
}

void sq_hf_dir_abort(const char *tmp) {
    DIR *d = opendir(tmp);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t n = strlen(tmp) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (p) {
            snprintf(p, n, "%s/%s", tmp, e->d_name);
            unlink(p);
            free(p);
        }
    }
    if (d) closedir(d);
    rmdir(tmp);
}

sq_status sq_hf_write_file(const char *path, const void *data, uint64_t size, int text, sq_err *err) {
    FILE *f = fopen(path, "wbe");
    if (!f) return sq_err_set(err, SQ_EIO, "%s: cannot create: %s", path, strerror(errno));
    int ok = (!size || fwrite(data, 1, (size_t)size, f) == size) && (!text || fputc('\n', f) != EOF);
    ok = !fflush(f) && !fsync(fileno(f)) && ok;
    if (fclose(f)) ok = 0;
    return ok ? SQ_OK : sq_err_set(err, SQ_EIO, "%s: write failed: %s", path, strerror(errno));
}

int sq_hf_safe_name(const char *name) { return *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, ".."); }
