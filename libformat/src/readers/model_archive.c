/* Models packed as tar/zip archives (any compression libarchive reads:
 * gzip, zstd, xz, bzip2), read into memory through libarchive without
 * unpacking to disk, then opened as a Hugging Face directory. Member names
 * are checked: no absolute paths, no "..", no duplicates; a single common
 * top-level directory is stripped. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#include "squish/model.h"

#define MAX_MEMBERS 4096
#define MAX_TOTAL ((uint64_t)1 << 40)

int sq_is_archive_name(const char *p) {
    static const char *const ext[] = {".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".tar.xz", ".txz", ".tar.bz2", ".zip"};
    size_t n = strlen(p);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && !strcmp(p + n - e, ext[i])) return 1;
    }
    return 0;
}

static int safe_member(const char *name) {
    if (!*name || name[0] == '/') return 0;
    for (const char *p = name; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p)) {
        if (!strncmp(p, "..", 2) && (p[2] == '/' || !p[2])) return 0;
        if (!strchr(p, '/')) break;
    }
    return 1;
}

void sq_vfiles_free(struct sq_vfile *f, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        free(f[i].name);
        free(f[i].data);
    }
    free(f);
}

sq_status sq_archive_read(const char *path, struct sq_vfile **files, uint32_t *n_files, sq_err *err) {
    struct sq_vfile *vfs = NULL;
    uint32_t n_vfs = 0;
    *files = NULL;
    *n_files = 0;
    struct archive *a = archive_read_new();
    if (!a) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_zip(a);
    sq_status st = SQ_OK;
    uint64_t total = 0;
    if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK) {
        st = sq_err_set(err, SQ_ECORRUPT, "%s: not a readable tar/zip archive: %s", path, archive_error_string(a));
        archive_read_free(a);
        return st;
    }
    struct archive_entry *e;
    int r;
    while (!st && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        const char *name = archive_entry_pathname(e);
        while (name && name[0] == '.' && name[1] == '/') name += 2;
        if (!name || !safe_member(name)) {
            st = sq_err_set(err, SQ_ECORRUPT, "%s: member name '%s' is absolute or leaves the archive", path, name ? name : "");
            break;
        }
        if (n_vfs == MAX_MEMBERS) {
            st = sq_err_set(err, SQ_ENOMEM, "%s: more than %d files", path, MAX_MEMBERS);
            break;
        }
        for (uint32_t i = 0; i < n_vfs; i++)
            if (!strcmp(vfs[i].name, name)) st = sq_err_set(err, SQ_ECORRUPT, "%s: member %s appears twice", path, name);
        if (st) break;
        uint64_t cap = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : (1u << 20), len = 0;
        if (total + cap > MAX_TOTAL) {
            st = sq_err_set(err, SQ_ENOMEM, "%s: members exceed 1 TiB", path);
            break;
        }
        uint8_t *buf = malloc((size_t)cap + 1);
        ssize_t k;
        while (buf && (k = archive_read_data(a, buf + len, (size_t)(cap - len))) > 0) {
            len += (uint64_t)k;
            if (len == cap && !archive_entry_size_is_set(e)) { /* unknown size: grow */
                uint8_t *nb = total + 2 * cap > MAX_TOTAL ? NULL : realloc(buf, (size_t)(2 * cap) + 1);
                if (!nb) { free(buf); buf = NULL; break; }
                buf = nb;
                cap *= 2;
            }
        }
        if (!buf) {
            st = sq_err_set(err, SQ_ENOMEM, "%s: out of memory reading %s", path, name);
            break;
        }
        if (k < 0 || (archive_entry_size_is_set(e) && len != cap)) {
            free(buf);
            st = sq_err_set(err, SQ_ECORRUPT, "%s: member %s is truncated or damaged: %s", path, name,
                            k < 0 ? archive_error_string(a) : "short read");
            break;
        }
        struct sq_vfile *nv = realloc(vfs, (n_vfs + 1) * sizeof *nv);
        char *nm = strdup(name);
        if (!nv || !nm) {
            free(buf);
            free(nm);
            if (nv) vfs = nv;
            st = sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
            break;
        }
        vfs = nv;
        vfs[n_vfs++] = (struct sq_vfile){nm, buf, len};
        total += len;
    }
    if (!st && r != ARCHIVE_EOF)
        st = sq_err_set(err, SQ_ECORRUPT, "%s: archive is damaged: %s", path, archive_error_string(a));
    archive_read_free(a);
    if (!st && !n_vfs) st = sq_err_set(err, SQ_ECORRUPT, "%s: the archive holds no files", path);
    if (st) {
        sq_vfiles_free(vfs, n_vfs);
        return st;
    }
    /* strip one common top-level directory ("model/config.json" -> "config.json") */
    const char *slash = strchr(vfs[0].name, '/');
    if (slash) {
        size_t pl = (size_t)(slash - vfs[0].name) + 1;
        int common = 1;
        for (uint32_t i = 0; i < n_vfs && common; i++) common = !strncmp(vfs[i].name, vfs[0].name, pl);
        for (uint32_t i = 0; common && i < n_vfs; i++) memmove(vfs[i].name, vfs[i].name + pl, strlen(vfs[i].name + pl) + 1);
    }
    *files = vfs;
    *n_files = n_vfs;
    return SQ_OK;
}

sq_status sq_model_open_vfs(sq_model *m, const char *path, struct sq_vfile *files, uint32_t n_files, sq_err *err) {
    m->vfs = files;
    m->n_vfs = n_files;
    m->format = SQ_MODEL_HF;
    return sq_model_open_hf(m, path, err);
}

sq_status sq_model_open_archive(sq_model *m, const char *path, sq_err *err) {
    struct sq_vfile *files;
    uint32_t n;
    sq_status st = sq_archive_read(path, &files, &n, err);
    return st ? st : sq_model_open_vfs(m, path, files, n, err);
}
