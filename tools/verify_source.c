/* squish-verify's path for a source model as FILE (verify_source.h). */
#include "verify_source.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "readers/ggml_decode.h"
#include "stats.h"

int verify_source_is_model(const char *path) {
    size_t n = strlen(path);
    return n > 5 && !strcmp(path + n - 5, ".gguf");
}

sq_model *verify_source_open(const char *path, sq_err *err) {
    sq_model *m = sq_model_open(path, err);
    if (m && sq_model_check(m, err)) {
        sq_model_close(m);
        return NULL;
    }
    return m;
}

unsigned long long verify_source_bytes(const sq_model *fm) {
    unsigned long long n = 0;
    for (uint32_t i = 0; i < fm->n_files; i++) n += fm->files[i].size;
    return n;
}

/* What a source tensor holds: "gguf:Q4_K" for ggml blocks, else its dtype. */
static void describe(const sq_model_tensor *t, char *out, size_t n) {
    if (t->ggml_type) snprintf(out, n, "gguf:%s", sq_ggml_qtype_name(t->ggml_type));
    else snprintf(out, n, "%s", sq_dtype_name(t->dtype));
}

int verify_source_compare(const sq_model *fm, const char *ref_path, double min_cos, double max_rmse, double max_abs,
                          int json, json_object *out) {
    sq_err err = {0};
    sq_model *m = sq_model_open(ref_path, &err);
    if (!m) return cli_fail(&err);
    int rc = EXIT_OK;
    json_object *arr = json_object_new_array();
    if (!json && !cli_quiet)
        printf("%-48s %-22s %12s %12s %10s %9s %s\n", "NAME", "SCHEME", "RMSE", "MAX_ABS", "COSINE", "SNR_DB", "GATE");
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if (!sq_model_find(fm, m->tensors[i].name)) {
            fprintf(stderr, "%s: reference tensor %s is missing from %s\n", cli_prog, m->tensors[i].name, fm->path);
            rc = EXIT_CHECK;
        }
    for (uint32_t i = 0; i < fm->n_tensors && rc != EXIT_CORRUPT && rc != EXIT_RESOURCE; i++) {
        const sq_model_tensor *t = &fm->tensors[i], *mt = sq_model_find(m, t->name);
        if (!mt) {
            fprintf(stderr, "%s: tensor %s is not in the reference model %s\n", cli_prog, t->name, ref_path);
            rc = EXIT_CHECK;
            continue;
        }
        int same = mt->ndim == t->ndim;
        for (uint32_t d = 0; same && d < t->ndim; d++) same = mt->dims[d] == t->dims[d];
        if (!same) {
            fprintf(stderr, "%s: tensor %s: shape differs from the reference\n", cli_prog, t->name);
            rc = EXIT_CHECK;
            continue;
        }
        uint64_t n = sq_model_tensor_elems(t);
        float *ref = malloc((size_t)(n ? n : 1) * sizeof(float)), *dec = malloc((size_t)(n ? n : 1) * sizeof(float));
        sq_errstats st = {0};
        int bad = 0;
        if (!ref || !dec) {
            fprintf(stderr, "%s: out of memory for tensor %s\n", cli_prog, t->name);
            rc = EXIT_RESOURCE;
            bad = 1;
        } else if (sq_model_tensor_f32(m, mt, ref, &err) || sq_model_tensor_f32(fm, t, dec, &err)) {
            rc = cli_fail(&err);
            bad = 1;
        } else {
            sq_errstats_add(&st, ref, dec, n);
        }
        free(ref);
        free(dec);
        sq_model_release(m, mt);
        sq_model_release(fm, t);
        if (bad) break;
        double rmse = sq_errstats_rmse(&st), cosv = sq_errstats_cosine(&st), snr = sq_errstats_snr_db(&st);
        int fail = cosv < min_cos || rmse > max_rmse || st.max_abs > max_abs || isnan(rmse);
        if (fail) rc = EXIT_CHECK;
        char scheme[64];
        describe(t, scheme, sizeof scheme);
        if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "name", json_object_new_string(t->name));
            json_object_object_add(o, "scheme", json_object_new_string(scheme));
            json_object_object_add(o, "rmse", json_object_new_double(rmse));
            json_object_object_add(o, "max_abs", json_object_new_double(st.max_abs));
            json_object_object_add(o, "cosine", json_object_new_double(cosv));
            json_object_object_add(o, "snr_db", isinf(snr) ? NULL : json_object_new_double(snr));
            json_object_object_add(o, "exact", json_object_new_boolean(st.sum_sq_err == 0));
            json_object_object_add(o, "pass", json_object_new_boolean(!fail));
            json_object_array_add(arr, o);
        } else if (!cli_quiet || fail) {
            fprintf(cli_quiet ? stderr : stdout, "%-48s %-22s %12.4e %12.4e %10.6f %9.2f %s\n", t->name, scheme, rmse, st.max_abs,
                    cosv, isinf(snr) ? 999.99 : snr, fail ? "FAIL" : "ok");
        }
    }
    json_object_object_add(out, "tensors", arr);
    sq_model_close(m);
    return rc;
}
