/* Calibration files: HDF5 with a 512-byte user block that carries a squish
 * header (magic, file size, SHA-256 of everything after the block). Readers
 * check the header before libhdf5 parses a byte, so a truncated or damaged
 * file is refused with a clear message instead of reaching the HDF5 parser.
 * Layout: spec/calib-hdf5.md. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calib.h"
#include "common/big_alloc.h"
#include "squish/fileio.h"
#include "squish/hash.h"

#define UB_SIZE 512
static const char UB_MAGIC[16] = "SQUISH-CALIB\0\0\0\0";

static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---------------- writing ---------------- */
typedef struct h5w {
    sq_tmpout out;
    hid_t file, layers, ocpl;
    int64_t cur_layer;
    hid_t cur_group;
} h5w;

static int attr_str(hid_t obj, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) ? strlen(v) : 1);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, t, strlen(v) ? v : "") >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return ok ? 0 : -1;
}

static int attr_u64(hid_t obj, const char *name, uint64_t v, hid_t ftype) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_UINT64, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

static int write_dset(hid_t g, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                      const void *data, hid_t dcpl) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

static sq_status h5w_fail(h5w *w, sq_err *err, const char *what) {
    sq_status s = sq_err_set(err, SQ_EIO, "%s: HDF5 could not %s (disk full or not writable?)", w->out.path, what);
    if (w->cur_group >= 0) H5Gclose(w->cur_group);
    if (w->layers >= 0) H5Gclose(w->layers);
    if (w->ocpl >= 0) H5Pclose(w->ocpl);
    if (w->file >= 0) H5Fclose(w->file);
    w->file = w->layers = w->ocpl = w->cur_group = -1;
    sq_tmpout_abort(&w->out);
    return s;
}

static sq_status h5w_open(h5w *w, const char *path, const sq_calib_info *in, sq_err *err) {
    memset(w, 0, sizeof *w);
    w->file = w->layers = w->ocpl = w->cur_group = -1;
    w->cur_layer = -1;
    h5_quiet();
    sq_status st = sq_tmpout_create(&w->out, path, err);
    if (st) return st;
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_userblock(fcpl, UB_SIZE);
    w->file = H5Fcreate(w->out.tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (w->file < 0) return h5w_fail(w, err, "create the file");
    /* no modification times in object headers: same statistics, same bytes */
    w->ocpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(w->ocpl, 0);
    hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
    int bad = root < 0 || attr_str(root, "format", SQ_CALIB_FORMAT) ||
              attr_u64(root, "format_version", SQ_CALIB_VERSION, H5T_STD_U32LE) ||
              attr_str(root, "model_sha256", in->model_sha256) || attr_str(root, "text_sha256", in->text_sha256) ||
              attr_u64(root, "n_layers", in->n_layers, H5T_STD_U32LE) ||
              attr_u64(root, "hidden_size", in->hidden, H5T_STD_U32LE) ||
              attr_u64(root, "attn_out_size", in->attn_out, H5T_STD_U32LE) ||
              attr_u64(root, "intermediate_size", in->inter, H5T_STD_U32LE) ||
              attr_u64(root, "samples", in->samples, H5T_STD_U64LE) ||
              attr_u64(root, "seqlen", in->seqlen, H5T_STD_U32LE) || attr_u64(root, "seed", in->seed, H5T_STD_U64LE) ||
              attr_str(root, "provenance", in->provenance ? in->provenance : "{}");
    if (root >= 0) H5Gclose(root);
    if (bad) return h5w_fail(w, err, "write the root attributes");
    w->layers = H5Gcreate2(w->file, "layers", H5P_DEFAULT, w->ocpl, H5P_DEFAULT);
    if (w->layers < 0) return h5w_fail(w, err, "create /layers");
    return SQ_OK;
}

static sq_status h5w_site_group(h5w *w, hid_t parent, const char *name, const sq_calib_site *s, sq_err *err);

/* Sites must come in order of layer, then site. */
static sq_status h5w_site(h5w *w, uint32_t layer, sq_site site, const sq_calib_site *s, sq_err *err) {
    if ((int64_t)layer != w->cur_layer) {
        if (w->cur_group >= 0) H5Gclose(w->cur_group);
        char name[16];
        snprintf(name, sizeof name, "%u", layer);
        w->cur_group = H5Gcreate2(w->layers, name, H5P_DEFAULT, w->ocpl, H5P_DEFAULT);
        if (w->cur_group < 0) return h5w_fail(w, err, "create a layer group");
        w->cur_layer = layer;
    }
    return h5w_site_group(w, w->cur_group, sq_site_name(site), s, err);
}

/* A site's group (tokens, xtx, abs_mean, abs_max) named name under parent. */
static sq_status h5w_site_group(h5w *w, hid_t parent, const char *name, const sq_calib_site *s, sq_err *err) {
    hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, w->ocpl, H5P_DEFAULT);
    if (g < 0) return h5w_fail(w, err, "create a site group");
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    hsize_t d2[2] = {s->n, s->n}, d1[1] = {s->n};
    int bad = attr_u64(g, "tokens", s->tokens, H5T_STD_U64LE) ||
              write_dset(g, "xtx", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2, s->xtx, dcpl) ||
              write_dset(g, "abs_mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1, s->abs_mean, dcpl) ||
              write_dset(g, "abs_max", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, d1, s->abs_max, dcpl);
    H5Pclose(dcpl);
    H5Gclose(g);
    if (bad) return h5w_fail(w, err, "write a dataset");
    return SQ_OK;
}

/* After the layers: /output/lm_head_in (s) and /vocab (v, mean_prob as means). */
static sq_status h5w_output(h5w *w, const sq_calib_site *s, const sq_calib_vocab *v, sq_err *err) {
    if (w->cur_group >= 0) H5Gclose(w->cur_group);
    w->cur_group = -1;
    w->cur_layer = -1;
    hid_t g = H5Gcreate2(w->file, "output", H5P_DEFAULT, w->ocpl, H5P_DEFAULT);
    if (g < 0) return h5w_fail(w, err, "create /output");
    sq_status st = h5w_site_group(w, g, "lm_head_in", s, err);
    H5Gclose(g);
    if (st) return st;
    g = H5Gcreate2(w->file, "vocab", H5P_DEFAULT, w->ocpl, H5P_DEFAULT);
    if (g < 0) return h5w_fail(w, err, "create /vocab");
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    hsize_t d1[1] = {v->n};
    int bad = attr_u64(g, "positions", v->positions, H5T_STD_U64LE) ||
              write_dset(g, "input_count", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, d1, v->count, dcpl) ||
              write_dset(g, "mean_prob", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1, v->mean_prob, dcpl);
    H5Pclose(dcpl);
    H5Gclose(g);
    return bad ? h5w_fail(w, err, "write /vocab") : SQ_OK;
}

static sq_status h5w_commit(h5w *w, sq_err *err) {
    if (w->cur_group >= 0) H5Gclose(w->cur_group);
    H5Gclose(w->layers);
    H5Pclose(w->ocpl);
    w->cur_group = w->layers = w->ocpl = -1;
    herr_t e = H5Fclose(w->file);
    w->file = -1;
    if (e < 0) return h5w_fail(w, err, "close the file");
    /* the squish header in the user block: size and checksum of the HDF5 part */
    FILE *fp = fopen(w->out.tmp, "r+b");
    if (!fp) return h5w_fail(w, err, "reopen the file");
    uint8_t ub[UB_SIZE] = {0};
    uint8_t *buf = malloc(1 << 20), digest[32] = {0};
    uint64_t size = 0;
    if (buf && fseek(fp, UB_SIZE, SEEK_SET) == 0) {
        sq_sha256 sh;
        sq_sha256_init(&sh);
        size_t n;
        while ((n = fread(buf, 1, 1 << 20, fp)) > 0) {
            sq_sha256_update(&sh, buf, n);
            size += n;
        }
        sq_sha256_final(&sh, digest);
    }
    free(buf);
    memcpy(ub, UB_MAGIC, 16);
    put_le(ub + 16, SQ_CALIB_VERSION, 4);
    put_le(ub + 24, size + UB_SIZE, 8);
    memcpy(ub + 32, digest, 32);
    snprintf((char *)ub + 64, UB_SIZE - 64, "squish calibration statistics; HDF5 data follows at byte 512\n");
    int bad = ferror(fp) || fseek(fp, 0, SEEK_SET) != 0 || fwrite(ub, 1, UB_SIZE, fp) != UB_SIZE;
    if (fclose(fp) != 0) bad = 1;
    if (bad) return h5w_fail(w, err, "write the header");
    return sq_tmpout_commit(&w->out, err);
}

sq_status sq_calib_write(const char *path, const sq_calib_acc *a, sq_err *err) {
    if (a->lower_stale)
        return sq_err_set(err, SQ_EINTERNAL, "%s: XᵀX sums are not symmetrized (call sq_calib_acc_symmetrize first)", path);
    h5w w;
    sq_status st = h5w_open(&w, path, &a->info, err);
    for (uint32_t l = a->layer0; !st && l < a->layer1; l++)
        for (int s = 0; !st && s < SQ_SITE_COUNT; s++) {
            const sq_calib_site *src = &a->sites[(l - a->layer0) * SQ_SITE_COUNT + s];
            sq_calib_site out = *src;
            /* the accumulator holds sums of |x|; the file holds means */
            out.abs_mean = malloc(src->n * sizeof(double));
            if (!out.abs_mean) {
                st = sq_err_set(err, SQ_ENOMEM, "out of memory");
                h5w_fail(&w, NULL, "");
                break;
            }
            for (uint32_t j = 0; j < src->n; j++) out.abs_mean[j] = src->tokens ? src->abs_mean[j] / (double)src->tokens : 0;
            st = h5w_site(&w, l, (sq_site)s, &out, err);
            free(out.abs_mean);
        }
    if (!st && a->has_output) {
        sq_calib_site out = a->output;
        sq_calib_vocab v = a->vocab;
        out.abs_mean = malloc(out.n * sizeof(double));
        v.mean_prob = malloc((size_t)v.n * sizeof(double));
        if (!out.abs_mean || !v.mean_prob) {
            st = sq_err_set(err, SQ_ENOMEM, "out of memory");
            h5w_fail(&w, NULL, "");
        } else {
            for (uint32_t j = 0; j < out.n; j++) out.abs_mean[j] = out.tokens ? a->output.abs_mean[j] / (double)out.tokens : 0;
            for (uint32_t j = 0; j < v.n; j++) v.mean_prob[j] = v.positions ? a->vocab.mean_prob[j] / (double)v.positions : 0;
            st = h5w_output(&w, &out, &v, err);
        }
        free(out.abs_mean);
        free(v.mean_prob);
    }
    return st ? st : h5w_commit(&w, err);
}

/* ---------------- reading ---------------- */
struct sq_calib_file {
    char *path;
    hid_t file;
    sq_calib_info info;
    uint64_t repaired_sites; /* distinct sites whose XᵀX was asymmetric by rounding only */
    uint8_t *repaired;       /* [layer * SQ_SITE_COUNT + site], allocated on the first repair */
    double repaired_max;     /* largest |a - b| / sqrt(d_i d_j) among them */
};

/* squish ≤ 0.1.0 summed diagonal tiles of XᵀX with sgemm, which some BLAS
 * kernels (OpenBLAS Haswell) do not keep symmetric: pairs then differ in the
 * last bits. Such pairs are replaced by their mean; a pair that differs by
 * more than float32 accumulation could explain (relative to the
 * Cauchy–Schwarz bound sqrt(d_i d_j)) means a damaged file. */
#define ASYM_ROUNDING 1e-4

/* slot: layer * SQ_SITE_COUNT + site, or n_layers * SQ_SITE_COUNT for the output layer's input */
static sq_status symmetrize(sq_calib_file *f, size_t slot, const char *gname, double *x, uint32_t n, sq_err *err) {
    uint64_t pairs = 0;
    double worst = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++) {
            double *a = &x[(size_t)i * n + j], *b = &x[(size_t)j * n + i];
            if (*a == *b) continue;
            const double bound = sqrt(x[(size_t)i * n + i] * x[(size_t)j * n + j]), d = fabs(*a - *b);
            if (!(d <= ASYM_ROUNDING * bound))
                return sq_err_set(err, SQ_ECORRUPT,
                                  "%s: %s/xtx is not symmetric at [%u][%u] (%.17g vs %.17g: more than rounding)", f->path,
                                  gname, i, j, *a, *b);
            *a = *b = 0.5 * *a + 0.5 * *b;
            pairs++;
            if (d / bound > worst) worst = d / bound;
        }
    if (pairs) {
        if (!f->repaired) f->repaired = calloc((size_t)(f->info.n_layers + 1) * SQ_SITE_COUNT, 1);
        uint8_t *seen = f->repaired ? &f->repaired[slot] : NULL;
        if (!seen || !*seen) f->repaired_sites++; /* counted once however often the site is read */
        if (seen) *seen = 1;
        if (worst > f->repaired_max) f->repaired_max = worst;
    }
    return SQ_OK;
}

uint64_t sq_calib_file_repairs(const sq_calib_file *f, double *max_rel) {
    if (max_rel) *max_rel = f->repaired_max;
    return f->repaired_sites;
}

/* Checks the user block header and the checksum before HDF5 sees the file. */
static sq_status check_header(const char *path, sq_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return sq_err_set(err, SQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t ub[UB_SIZE];
    struct stat stt;
    sq_status st = SQ_OK;
    if (fstat(fileno(fp), &stt) != 0 || !S_ISREG(stt.st_mode)) {
        st = sq_err_set(err, SQ_EIO, "%s: not a regular file", path);
    } else if (fread(ub, 1, UB_SIZE, fp) != UB_SIZE || memcmp(ub, UB_MAGIC, 16)) {
        st = sq_err_set(err, SQ_ECORRUPT, "%s: not a squish calibration file (no SQUISH-CALIB header in the first 512 bytes)", path);
    } else if (get_le(ub + 16, 4) != SQ_CALIB_VERSION) {
        st = sq_err_set(err, SQ_EUNSUPPORTED, "%s: calibration format version %llu is not supported (this reader: %d)", path,
                        (unsigned long long)get_le(ub + 16, 4), SQ_CALIB_VERSION);
    } else if (get_le(ub + 24, 8) != (uint64_t)stt.st_size) {
        st = sq_err_set(err, SQ_ECORRUPT, "%s: file is %lld bytes but its header says %llu (truncated or appended to)", path,
                        (long long)stt.st_size, (unsigned long long)get_le(ub + 24, 8));
    } else {
        uint8_t *buf = malloc(1 << 20), full[32];
        sq_sha256 sh;
        sq_sha256_init(&sh);
        size_t n;
        if (!buf) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
        while (buf && (n = fread(buf, 1, 1 << 20, fp)) > 0) sq_sha256_update(&sh, buf, n);
        sq_sha256_final(&sh, full);
        if (!st && ferror(fp)) st = sq_err_set(err, SQ_EIO, "%s: read error", path);
        if (!st && memcmp(full, ub + 32, 32))
            st = sq_err_set(err, SQ_ECORRUPT, "%s: checksum mismatch: the file is damaged", path);
        free(buf);
    }
    fclose(fp);
    return st;
}

static int read_attr_str(hid_t obj, const char *name, char **out) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
    int ok = t >= 0 && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t);
    size_t sz = ok ? H5Tget_size(t) : 0;
    ok = ok && sz > 0 && sz < (1u << 24);
    char *buf = ok ? calloc(sz + 1, 1) : NULL;
    ok = buf && H5Aread(a, t, buf) >= 0;
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    if (!ok) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

static int read_attr_u64(hid_t obj, const char *name, uint64_t *v) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
    int ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1 &&
             H5Aread(a, H5T_NATIVE_UINT64, v) >= 0;
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return ok ? 0 : -1;
}

static int copy_hex(const char *s, char out[65]) {
    if (!s || strlen(s) != 64) return -1;
    memcpy(out, s, 65);
    return 0;
}

sq_calib_file *sq_calib_open(const char *path, sq_err *err) {
    if (check_header(path, err)) return NULL;
    h5_quiet();
    sq_calib_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        sq_err_set(err, SQ_ENOMEM, "out of memory");
        return NULL;
    }
    f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f->file < 0) {
        sq_err_set(err, SQ_ECORRUPT, "%s: HDF5 cannot open the file", path);
        sq_calib_close(f);
        return NULL;
    }
    hid_t root = H5Gopen2(f->file, "/", H5P_DEFAULT);
    char *fmt = NULL, *msha = NULL, *tsha = NULL;
    uint64_t ver = 0, nl = 0, hid = 0, ao = 0, in = 0, sl = 0;
    sq_calib_info *I = &f->info;
    const char *bad = NULL;
    if (root < 0) bad = "no root group";
    else if (read_attr_str(root, "format", &fmt) || strcmp(fmt, SQ_CALIB_FORMAT)) bad = "attribute 'format' is not \"squish-calib\"";
    else if (read_attr_u64(root, "format_version", &ver) || ver != SQ_CALIB_VERSION) bad = "attribute 'format_version' is not 1";
    else if (read_attr_str(root, "model_sha256", &msha) || copy_hex(msha, I->model_sha256)) bad = "attribute 'model_sha256' is missing or malformed";
    else if (read_attr_str(root, "text_sha256", &tsha) || copy_hex(tsha, I->text_sha256)) bad = "attribute 'text_sha256' is missing or malformed";
    else if (read_attr_u64(root, "n_layers", &nl) || read_attr_u64(root, "hidden_size", &hid) ||
             read_attr_u64(root, "attn_out_size", &ao) || read_attr_u64(root, "intermediate_size", &in) ||
             read_attr_u64(root, "samples", &I->samples) || read_attr_u64(root, "seqlen", &sl) ||
             read_attr_u64(root, "seed", &I->seed) || read_attr_str(root, "provenance", &I->provenance))
        bad = "a root attribute (n_layers, hidden_size, attn_out_size, intermediate_size, samples, seqlen, seed, provenance) is missing";
    else if (!nl || nl > 100000 || !hid || hid > 65536 || !ao || ao > 65536 || !in || in > 65536 || sl > (1u << 30))
        bad = "a size attribute is out of range (widths above 65536 channels are refused: XᵀX would need over 32 GiB)";
    else if (H5Lexists(f->file, "/layers", H5P_DEFAULT) <= 0)
        bad = "group /layers is missing";
    free(fmt);
    free(msha);
    free(tsha);
    if (root >= 0) H5Gclose(root);
    if (bad) {
        sq_err_set(err, SQ_ECORRUPT, "%s: %s", path, bad);
        sq_calib_close(f);
        return NULL;
    }
    I->n_layers = (uint32_t)nl;
    I->hidden = (uint32_t)hid;
    I->attn_out = (uint32_t)ao;
    I->inter = (uint32_t)in;
    I->seqlen = (uint32_t)sl;
    return f;
}

void sq_calib_close(sq_calib_file *f) {
    if (!f) return;
    if (f->file > 0) H5Fclose(f->file);
    free(f->info.provenance);
    free(f->repaired);
    free(f->path);
    free(f);
}

const sq_calib_info *sq_calib_file_info(const sq_calib_file *f) { return &f->info; }

int sq_calib_has_layer(const sq_calib_file *f, uint32_t layer) {
    char name[32];
    snprintf(name, sizeof name, "/layers/%u", layer);
    return H5Lexists(f->file, name, H5P_DEFAULT) > 0;
}

static int read_dset(hid_t g, const char *name, hid_t mtype, int rank, const hsize_t *dims, void *out) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT), sp = d >= 0 ? H5Dget_space(d) : -1, t = d >= 0 ? H5Dget_type(d) : -1;
    hsize_t got[4] = {0};
    int ok = sp >= 0 && t >= 0 && H5Tget_class(t) == H5T_FLOAT && H5Sget_simple_extent_ndims(sp) == rank &&
             H5Sget_simple_extent_dims(sp, got, NULL) == rank;
    for (int i = 0; ok && i < rank; i++) ok = got[i] == dims[i];
    ok = ok && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return ok ? 0 : -1;
}

static sq_status read_site_at(sq_calib_file *f, const char *gname, uint32_t n, size_t slot, sq_calib_site *s, sq_err *err);

sq_status sq_calib_read_site(sq_calib_file *f, uint32_t layer, sq_site site, sq_calib_site *s, sq_err *err) {
    memset(s, 0, sizeof *s);
    const sq_calib_info *I = &f->info;
    if (layer >= I->n_layers)
        return sq_err_set(err, SQ_EUSAGE, "%s: layer %u is beyond the file's %u layers", f->path, layer, I->n_layers);
    if (!sq_calib_has_layer(f, layer))
        return sq_err_set(err, SQ_EUSAGE, "%s: has no statistics for layer %u (a partial file? merge the shards first)", f->path, layer);
    char gname[64];
    snprintf(gname, sizeof gname, "/layers/%u/%s", layer, sq_site_name(site));
    uint32_t n = site == SQ_SITE_ATTN_OUT ? I->attn_out : site == SQ_SITE_MLP_ACT ? I->inter : I->hidden;
    return read_site_at(f, gname, n, (size_t)layer * SQ_SITE_COUNT + site, s, err);
}

int sq_calib_has_output(const sq_calib_file *f) {
    return H5Lexists(f->file, "/output", H5P_DEFAULT) > 0 && H5Lexists(f->file, "/output/lm_head_in", H5P_DEFAULT) > 0 &&
           H5Lexists(f->file, "/vocab", H5P_DEFAULT) > 0;
}

sq_status sq_calib_read_output(sq_calib_file *f, sq_calib_site *s, sq_err *err) {
    memset(s, 0, sizeof *s);
    if (!sq_calib_has_output(f))
        return sq_err_set(err, SQ_EUSAGE, "%s: has no statistics of the output layer's input (made by an older squish-calibrate, "
                          "or a shard without the last layer)", f->path);
    return read_site_at(f, "/output/lm_head_in", f->info.hidden, (size_t)f->info.n_layers * SQ_SITE_COUNT, s, err);
}

sq_status sq_calib_read_vocab(sq_calib_file *f, sq_calib_vocab *v, sq_err *err) {
    memset(v, 0, sizeof *v);
    if (!sq_calib_has_output(f))
        return sq_err_set(err, SQ_EUSAGE, "%s: has no vocabulary statistics (made by an older squish-calibrate, or a shard without "
                          "the last layer)", f->path);
    hid_t g = H5Gopen2(f->file, "/vocab", H5P_DEFAULT);
    hid_t d = g >= 0 && H5Lexists(g, "mean_prob", H5P_DEFAULT) > 0 ? H5Dopen2(g, "mean_prob", H5P_DEFAULT) : -1;
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims[1] = {0};
    sq_status st = SQ_OK;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, dims, NULL) != 1 || !dims[0] ||
        dims[0] > (1u << 24))
        st = sq_err_set(err, SQ_ECORRUPT, "%s: /vocab/mean_prob is missing or not a vector of 1 .. 2^24 entries", f->path);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (!st) {
        v->n = (uint32_t)dims[0];
        v->count = malloc(v->n * sizeof *v->count);
        v->mean_prob = malloc(v->n * sizeof *v->mean_prob);
        hid_t dc = H5Lexists(g, "input_count", H5P_DEFAULT) > 0 ? H5Dopen2(g, "input_count", H5P_DEFAULT) : -1;
        hid_t sc = dc >= 0 ? H5Dget_space(dc) : -1, tc = dc >= 0 ? H5Dget_type(dc) : -1;
        hsize_t dn[1] = {0};
        if (!v->count || !v->mean_prob) st = sq_err_set(err, SQ_ENOMEM, "out of memory for /vocab");
        else if (read_attr_u64(g, "positions", &v->positions) || !v->positions ||
                 read_dset(g, "mean_prob", H5T_NATIVE_DOUBLE, 1, dims, v->mean_prob) || sc < 0 || tc < 0 ||
                 H5Tget_class(tc) != H5T_INTEGER || H5Sget_simple_extent_ndims(sc) != 1 ||
                 H5Sget_simple_extent_dims(sc, dn, NULL) != 1 || dn[0] != dims[0] ||
                 H5Dread(dc, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->count) < 0)
            st = sq_err_set(err, SQ_ECORRUPT, "%s: /vocab: missing or mis-shaped positions/input_count/mean_prob", f->path);
        if (tc >= 0) H5Tclose(tc);
        if (sc >= 0) H5Sclose(sc);
        if (dc >= 0) H5Dclose(dc);
        for (uint32_t i = 0; !st && i < v->n; i++)
            if (!isfinite(v->mean_prob[i]) || v->mean_prob[i] < 0 || v->mean_prob[i] > 1)
                st = sq_err_set(err, SQ_ECORRUPT, "%s: /vocab/mean_prob[%u] is not a probability", f->path, i);
    }
    if (g >= 0) H5Gclose(g);
    if (st) sq_calib_vocab_free(v);
    return st;
}

/* Reads the site group gname of n channels (slot: for the repair count). */
static sq_status read_site_at(sq_calib_file *f, const char *gname, uint32_t n, size_t slot, sq_calib_site *s, sq_err *err) {
    if (H5Lexists(f->file, gname, H5P_DEFAULT) <= 0)
        return sq_err_set(err, SQ_ECORRUPT, "%s: group %s is missing", f->path, gname);
    hid_t g = H5Gopen2(f->file, gname, H5P_DEFAULT);
    s->n = n;
    s->xtx = sq_big_alloc((size_t)n * n * sizeof(double));
    s->abs_mean = malloc(n * sizeof(double));
    s->abs_max = malloc(n * sizeof(float));
    hsize_t d2[2] = {n, n}, d1[1] = {n};
    sq_status st = SQ_OK;
    if (!s->xtx || !s->abs_mean || !s->abs_max) st = sq_err_set(err, SQ_ENOMEM, "out of memory for %s", gname);
    else if (g < 0 || read_attr_u64(g, "tokens", &s->tokens) || read_dset(g, "xtx", H5T_NATIVE_DOUBLE, 2, d2, s->xtx) ||
             read_dset(g, "abs_mean", H5T_NATIVE_DOUBLE, 1, d1, s->abs_mean) ||
             read_dset(g, "abs_max", H5T_NATIVE_FLOAT, 1, d1, s->abs_max))
        st = sq_err_set(err, SQ_ECORRUPT, "%s: %s: missing or mis-shaped tokens/xtx/abs_mean/abs_max (expected %u channels)",
                        f->path, gname, n);
    if (g >= 0) H5Gclose(g);
    for (uint64_t i = 0; !st && i < (uint64_t)n * n; i++)
        if (!isfinite(s->xtx[i]))
            st = sq_err_set(err, SQ_ECORRUPT, "%s: %s/xtx has a non-finite value at [%llu][%llu]", f->path, gname,
                            (unsigned long long)(i / n), (unsigned long long)(i % n));
    for (uint32_t i = 0; !st && i < n; i++) {
        if (!isfinite(s->abs_mean[i]) || !isfinite(s->abs_max[i]) || s->abs_mean[i] < 0 || s->abs_max[i] < 0)
            st = sq_err_set(err, SQ_ECORRUPT, "%s: %s: abs_mean/abs_max channel %u is negative or not finite", f->path, gname, i);
        else if (s->xtx[(size_t)i * n + i] < 0)
            st = sq_err_set(err, SQ_ECORRUPT, "%s: %s/xtx has a negative diagonal at %u", f->path, gname, i);
    }
    if (!st) st = symmetrize(f, slot, gname, s->xtx, n, err);
    if (!st && !s->tokens) st = sq_err_set(err, SQ_ECORRUPT, "%s: %s: zero tokens", f->path, gname);
    if (st) sq_calib_site_free(s);
    return st;
}

/* ---------------- merging ---------------- */
sq_status sq_calib_merge(const char *const *inputs, int n_inputs, const char *out, uint64_t *repaired, sq_err *err) {
    sq_calib_file **f = calloc((size_t)n_inputs, sizeof *f);
    if (!f) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_status st = SQ_OK;
    for (int i = 0; i < n_inputs && !st; i++) {
        if (!(f[i] = sq_calib_open(inputs[i], err))) st = err ? err->status : SQ_ECORRUPT;
        else if (i > 0) {
            const sq_calib_info *a = &f[0]->info, *b = &f[i]->info;
            if (strcmp(a->model_sha256, b->model_sha256) || a->n_layers != b->n_layers || a->hidden != b->hidden ||
                a->attn_out != b->attn_out || a->inter != b->inter)
                st = sq_err_set(err, SQ_EUSAGE, "%s and %s were made for different models (model_sha256 %.12s… vs %.12s…)",
                                inputs[0], inputs[i], a->model_sha256, b->model_sha256);
        }
    }
    sq_calib_info info = {0};
    int overlap = 0, same_run = 1;
    if (!st) {
        info = f[0]->info;
        info.provenance = NULL;
        for (uint32_t l = 0; l < info.n_layers; l++) {
            int c = 0;
            for (int i = 0; i < n_inputs; i++) c += sq_calib_has_layer(f[i], l);
            if (c > 1) overlap = 1;
        }
        for (int i = 1; i < n_inputs; i++) {
            const sq_calib_info *a = &f[0]->info, *b = &f[i]->info;
            if (strcmp(a->text_sha256, b->text_sha256) || a->samples != b->samples || a->seqlen != b->seqlen ||
                a->seed != b->seed || strcmp(a->provenance, b->provenance))
                same_run = 0;
        }
        if (!overlap && same_run) {
            /* shards of one run: the result is the unsharded run's file */
            info.provenance = strdup(f[0]->info.provenance);
        } else {
            /* different runs: their statistics add; the provenance lists them */
            sq_sha256 sh;
            uint8_t d[32];
            sq_sha256_init(&sh);
            size_t len = 32;
            info.samples = 0;
            for (int i = 0; i < n_inputs; i++) {
                sq_sha256_update(&sh, f[i]->info.text_sha256, 64);
                info.samples += f[i]->info.samples;
                len += strlen(f[i]->info.provenance) + 2;
                if (f[i]->info.seqlen != info.seqlen) info.seqlen = 0;
                if (f[i]->info.seed != info.seed) info.seed = 0;
            }
            sq_sha256_final(&sh, d);
            sq_hex32(d, info.text_sha256);
            if ((info.provenance = malloc(len))) {
                strcpy(info.provenance, "{\"merged\":[");
                for (int i = 0; i < n_inputs; i++) {
                    if (i) strcat(info.provenance, ",");
                    strcat(info.provenance, f[i]->info.provenance);
                }
                strcat(info.provenance, "]}");
            }
        }
        if (!info.provenance) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    h5w w;
    int opened = 0;
    if (!st) {
        st = h5w_open(&w, out, &info, err);
        opened = !st;
    }
    for (uint32_t l = 0; !st && l < info.n_layers; l++)
        for (int s = 0; !st && s < SQ_SITE_COUNT; s++) {
            sq_calib_site acc = {0};
            int have = 0;
            for (int i = 0; !st && i < n_inputs; i++) {
                if (!sq_calib_has_layer(f[i], l)) continue;
                sq_calib_site x;
                if ((st = sq_calib_read_site(f[i], l, (sq_site)s, &x, err))) break;
                if (!have) {
                    acc = x;
                    have = 1;
                    continue;
                }
                uint64_t nn = (uint64_t)x.n * x.n, tot = acc.tokens + x.tokens;
                for (uint64_t k = 0; k < nn; k++) acc.xtx[k] += x.xtx[k];
                for (uint32_t k = 0; k < x.n; k++) {
                    acc.abs_mean[k] = (acc.abs_mean[k] * (double)acc.tokens + x.abs_mean[k] * (double)x.tokens) / (double)tot;
                    if (x.abs_max[k] > acc.abs_max[k]) acc.abs_max[k] = x.abs_max[k];
                }
                acc.tokens = tot;
                sq_calib_site_free(&x);
            }
            if (!st && have) st = h5w_site(&w, l, (sq_site)s, &acc, err);
            sq_calib_site_free(&acc);
        }
    /* the output layer's statistics: summed over the inputs that hold them */
    sq_calib_site os = {0};
    sq_calib_vocab voc = {0};
    int have_out = 0;
    for (int i = 0; !st && i < n_inputs; i++) {
        if (!sq_calib_has_output(f[i])) continue;
        sq_calib_site x;
        sq_calib_vocab v;
        if ((st = sq_calib_read_output(f[i], &x, err))) break;
        if ((st = sq_calib_read_vocab(f[i], &v, err))) {
            sq_calib_site_free(&x);
            break;
        }
        if (!have_out) {
            os = x;
            voc = v;
            have_out = 1;
            continue;
        }
        if (v.n != voc.n) st = sq_err_set(err, SQ_EUSAGE, "%s: /vocab has %u entries, %s %u", inputs[i], v.n, inputs[0], voc.n);
        uint64_t tot = os.tokens + x.tokens, pos = voc.positions + v.positions;
        for (uint64_t k = 0; !st && k < (uint64_t)x.n * x.n; k++) os.xtx[k] += x.xtx[k];
        for (uint32_t k = 0; !st && k < x.n; k++) {
            os.abs_mean[k] = (os.abs_mean[k] * (double)os.tokens + x.abs_mean[k] * (double)x.tokens) / (double)tot;
            if (x.abs_max[k] > os.abs_max[k]) os.abs_max[k] = x.abs_max[k];
        }
        for (uint32_t k = 0; !st && k < v.n; k++) {
            voc.count[k] += v.count[k];
            voc.mean_prob[k] = (voc.mean_prob[k] * (double)voc.positions + v.mean_prob[k] * (double)v.positions) / (double)pos;
        }
        os.tokens = tot;
        voc.positions = pos;
        sq_calib_site_free(&x);
        sq_calib_vocab_free(&v);
    }
    if (!st && have_out) st = h5w_output(&w, &os, &voc, err);
    sq_calib_site_free(&os);
    sq_calib_vocab_free(&voc);
    if (!st) st = h5w_commit(&w, err);
    else if (opened && w.file >= 0) h5w_fail(&w, NULL, "");
    if (repaired) *repaired = 0;
    for (int i = 0; i < n_inputs; i++) {
        if (repaired && f[i]) *repaired += f[i]->repaired_sites;
        sq_calib_close(f[i]);
    }
    free(f);
    free(info.provenance);
    return st;
}
