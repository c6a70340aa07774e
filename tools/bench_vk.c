/* squish-bench --backend vulkan: GEMV bandwidth of every codec on the
 * device next to a copy shader's bandwidth measured in the same run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_synth.h"
#include "bench_vk.h"
#include "cli.h"
#include "encoders.h"
#include "vk_decode.h"

/* The CPU's GEMV of one scheme and each row's sum|w x|, once per scheme. */
typedef struct gemv_ref {
    float *y;
    double *mag;
} gemv_ref;

static int gemv_reference(const sq_tview *tv, const float *x, int threads, gemv_ref *ref) {
    const uint64_t rows = tv->rows, cols = tv->cols;
    float *dec = malloc(rows * cols * 4);
    ref->y = malloc(rows * 4);
    ref->mag = malloc(rows * sizeof(double));
    if (!dec || !ref->y || !ref->mag) {
        free(dec);
        return 0;
    }
    sq_gemv_mt(tv, x, ref->y, threads);
    sq_decode_mt(tv, dec, threads);
    for (uint64_t r = 0; r < rows; r++) {
        double mag = 0;
        for (uint64_t i = 0; i < cols; i++) mag += fabs((double)dec[r * cols + i] * x[i]);
        ref->mag[r] = mag;
    }
    free(dec);
    return 1;
}

/* Largest |y_gpu - y_cpu| / sum|w x| over the rows (the tests' tolerance is 1e-5). */
static double check_gemv(sq_vk *vk, sq_vk_tensor *t, const gemv_ref *ref, uint64_t rows, const float *x, sq_err *err,
                         int *failed) {
    float *yg = malloc(rows * 4);
    double worst = 0;
    *failed = 0;
    if (!yg) {
        *failed = sq_err_set(err, SQ_ENOMEM, "out of memory") != SQ_OK;
        return 0;
    }
    if (sq_vk_matmul(vk, t, x, 1, yg, err)) *failed = 1;
    for (uint64_t r = 0; !*failed && r < rows; r++) {
        double d = fabs((double)yg[r] - ref->y[r]), e = ref->mag[r] > 0 ? d / ref->mag[r] : d;
        if (e > worst) worst = e;
    }
    free(yg);
    return worst;
}

/* SQUISH_BENCH_VK_SETTINGS="NR=8 PREFETCH=2;TPR=32": after a scheme's line,
 * its check and timings again under each ';'-separated setting, whose
 * space-separated KEY=VALUE pairs set SQUISH_VULKAN_KEY for that line (named
 * SCHEME@KEY=VALUE,...); the variables are restored after each. One encode
 * and upload for many kernel settings. */
#define MAX_KNOBS 8
typedef struct knob_env {
    char name[64];
    char *old;
} knob_env;

/* Whether every word of list (words split at ' ' and ';') is KEY=VALUE: checked before any work. */
static int settings_valid(const char *list) {
    const char *c = list;
    while (*c) {
        while (*c == ' ' || *c == ';') c++;
        const char *w = c;
        while (*c && *c != ' ' && *c != ';') c++;
        if (c > w) {
            const char *eq = memchr(w, '=', (size_t)(c - w));
            if (!eq || eq == w) return 0;
        }
    }
    return 1;
}

static void knobs_restore(knob_env *kv, int n) {
    for (int i = n - 1; i >= 0; i--) {
        if (kv[i].old) setenv(kv[i].name, kv[i].old, 1);
        else unsetenv(kv[i].name);
        free(kv[i].old);
    }
}

/* Applies setting s (KEY=VALUE words); returns the number of variables set, -1 if malformed. */
static int knobs_apply(const char *s, knob_env *kv, char *label, size_t lsize) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    label[0] = 0;
    char *save = NULL;
    for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(w, '=');
        if (!eq || eq == w || n == MAX_KNOBS) {
            knobs_restore(kv, n);
            return -1;
        }
        *eq = 0;
        snprintf(kv[n].name, sizeof kv[n].name, "SQUISH_VULKAN_%s", w);
        const char *o = getenv(kv[n].name);
        kv[n].old = o ? strdup(o) : NULL;
        setenv(kv[n].name, eq + 1, 1);
        snprintf(label + strlen(label), lsize - strlen(label), "%s%s=%s", n ? "," : "@", w, eq + 1);
        n++;
    }
    return n;
}

/* Times the GEMV, the q8 GEMV and the read shader over the n uploaded copies
 * t[] of one scheme (wbytes stored bytes each, nw weights) and prints its line. */
static int time_scheme(sq_vk *vk, sq_vk_tensor *const *t, int n, const char *name, uint64_t wbytes, uint64_t nw,
                       double copy_gbs, double chk, double min_time) {
    sq_err err = {0};
    double sec = 0, q8sec = 0, rdsec = 0;
    if (sq_vk_bench_gemv(vk, t, n, 2, SQ_VK_BENCH_GEMV, &sec, &err)) return cli_fail(&err);
    int r2 = (int)(min_time / (sec * n)) + 1;
    if (r2 > 2000) r2 = 2000;
    if (sq_vk_bench_gemv(vk, t, n, r2, SQ_VK_BENCH_GEMV, &sec, &err)) return cli_fail(&err);
    int q8 = sq_vk_q8_supported(vk, t[0]);
    if (q8 && sq_vk_bench_gemv(vk, t, n, r2, SQ_VK_BENCH_Q8, &q8sec, &err)) return cli_fail(&err);
    if (sq_vk_bench_gemv(vk, t, n, r2, SQ_VK_BENCH_READ, &rdsec, &err)) return cli_fail(&err);
    double gbs = (double)wbytes / sec / 1e9;
    char q8s[32] = "-", q8r[16] = "-";
    if (q8) {
        snprintf(q8s, sizeof q8s, "%.1f", (double)wbytes / q8sec / 1e9);
        snprintf(q8r, sizeof q8r, "%.0f%%", 100.0 * (double)wbytes / q8sec / 1e9 / copy_gbs);
    }
    cli_progress_clear();
    printf("%-24s %7.3f %9.2f %6d %10.2f %10.1f %6.0f%% %9.1e %10s %7s %9.2f %6.0f%%  %s\n", name,
           8.0 * (double)wbytes / (double)nw, (double)wbytes / 1048576.0, n, sec * 1e6, gbs, 100.0 * gbs / copy_gbs, chk,
           q8s, q8r, rdsec * 1e6, 100.0 * rdsec / sec, sq_vk_limbs_used(vk, t[0]) ? "limbs" : "float");
    fflush(stdout);
    return EXIT_OK;
}

int bench_vulkan(cli_backend *be, const float *w, uint64_t rows, uint64_t cols, char *list, int threads, size_t ws_mib,
                 double min_time) {
    sq_err err = {0};
    const char *es = getenv("SQUISH_BENCH_VK_SETTINGS");
    if (es && !settings_valid(es)) {
        fprintf(stderr, "squish-bench: SQUISH_BENCH_VK_SETTINGS: \"%s\" is not KEY=VALUE words separated by spaces and ';'\n",
                es);
        return EXIT_USAGE;
    }
    if (cli_backend_open(be, &err)) return cli_fail(&err);
    sq_vk *vk = be->vk;
    const uint64_t ws = (uint64_t)ws_mib << 20;
    /* copy baseline: reps sized so the timed part lasts about min_time */
    double copy_gbs = 0;
    if (sq_vk_bench_copy(vk, ws, 3, &copy_gbs, &err)) return cli_fail(&err);
    int reps = (int)(min_time / (2.0 * (double)ws / (copy_gbs * 1e9))) + 1;
    if (reps > 1000) reps = 1000;
    if (sq_vk_bench_copy(vk, ws, reps, &copy_gbs, &err)) return cli_fail(&err);
    printf("# squish-bench %s on vulkan: %s\n", SQUISH_VERSION, sq_vk_describe(vk));
    if (sq_vk_subgroup(vk))
        printf("# sums: shared memory, then subgroup shuffles (subgroup of %u; SQUISH_VULKAN_SUBGROUP=0: shared memory only)\n",
               sq_vk_subgroup(vk));
    else
        printf("# sums: shared memory only (no subgroup shuffles here, or SQUISH_VULKAN_SUBGROUP=0)\n");
    printf("# matrix %llux%llu; copy shader over %zu MiB: %.1f GB/s (bytes read + written)\n", (unsigned long long)rows,
           (unsigned long long)cols, ws_mib, copy_gbs);
    printf("# GEMV: back-to-back GEMVs (a barrier between each) cycling over copies of the matrix that fill %zu MiB,\n"
           "# so weights come from device memory; GB/s counts every stored part once per GEMV; ratio = GB/s / copy GB/s;\n"
           "# check = max |y_vulkan - y_cpu| / sum|w*x| over the rows of one GEMV (tests require <= 1e-5);\n"
           "# Q8: the integer-activation GEMV (x rounded to int8 blocks of 32, packed integer dot products)%s;\n"
           "# READ_us: a shader that only reads the same buffers, dispatched the same way (the ceiling for a GEMV\n"
           "# of this size, launch and barrier costs included); OF_READ = READ_us / GEMV_us;\n"
           "# KERNEL: what the GEMV column ran, float (activations as f32) or limbs (activations split exactly into\n"
           "# four int8 limbs per value, packed integer dot products; see SQUISH_VULKAN_LIMBS);\n"
           "# aqlm and spqr run on synthetic parts of their layout (random codes, codebooks or statistics, 1%%\n"
           "# outliers): their encoders need calibration statistics and take minutes per matrix\n",
           ws_mib, sq_vk_has_integer_dot(vk) ? "" : " - not on this device");
    printf("%-24s %7s %9s %6s %10s %10s %7s %9s %10s %7s %9s %7s  %s\n", "SCHEME", "BPW", "MiB", "COPIES", "GEMV_us",
           "GEMV_GB/s", "RATIO", "CHECK", "Q8_GB/s", "RATIO", "READ_us", "OF_READ", "KERNEL");
    float *x = malloc(cols * sizeof(float));
    if (!x) return EXIT_RESOURCE;
    for (uint64_t i = 0; i < cols; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    char *save = NULL;
    int rc = EXIT_OK;
    uint64_t n_schemes = 1, k_scheme = 0;
    for (const char *c = list; *c; c++) n_schemes += *c == ',';
    fflush(stdout);
    cli_progress_start("benchmarking", n_schemes, "schemes");
    for (char *s = strtok_r(list, ",", &save); s && !rc; s = strtok_r(NULL, ",", &save)) {
        cli_progress_update(k_scheme++);
        const sq_codec *cd;
        uint32_t p[SQ_NPARAMS];
        if (sq_scheme_parse(s, &cd, p, &err)) { rc = cli_fail(&err); break; }
        sq_encoded e;
        /* aqlm, spqr: synthetic parts (bench_synth.h: their encoders take minutes); other
         * calibrated codecs (QuIP#) get XᵀX = I, as on the CPU */
        sq_status est;
        if (bench_synthetic_for(cd)) {
            est = bench_synthetic(cd, p, rows, cols, &e, &err);
        } else {
            double *xtx = sq_quant_needs_xtx(cd) ? calloc(cols * cols, sizeof(double)) : NULL;
            for (uint64_t i = 0; xtx && i < cols; i++) xtx[i * cols + i] = 1;
            sq_encode_ctx ex = {.codec = cd, .params = p, .w = w, .rows = rows, .cols = cols, .xtx = xtx, .seed = 1, .n_threads = threads};
            est = sq_quant_needs_xtx(cd) && !xtx ? sq_err_set(&err, SQ_ENOMEM, "out of memory for XᵀX") : sq_quant_encode(&ex, &e, &err);
            free(xtx);
        }
        if (est) { rc = cli_fail(&err); break; }
        sq_tview tv;
        sq_tview_from_encoded(&e, &tv);
        uint64_t wbytes = 0;
        for (int i = 0; i < e.nparts; i++)
            wbytes += e.bytes[i];
        int n = (int)((ws + wbytes - 1) / wbytes);
        if (n > 256) n = 256;
        if (n < 1) n = 1;
        sq_vk_tensor **t = calloc((size_t)n, sizeof *t);
        for (int i = 0; t && i < n && !rc; i++)
            if (sq_vk_upload(vk, &tv, &t[i], &err)) rc = cli_fail(&err);
        if (!t) rc = EXIT_RESOURCE;
        int bad = 0;
        gemv_ref ref = {0};
        if (!rc && !gemv_reference(&tv, x, threads, &ref)) rc = EXIT_RESOURCE;
        double chk = rc ? 0 : check_gemv(vk, t[0], &ref, rows, x, &err, &bad);
        if (!rc && bad) rc = cli_fail(&err);
        /* SQUISH_BENCH_VK_PASSES=N: the timings N times over the same uploads, a line each */
        const char *ep = getenv("SQUISH_BENCH_VK_PASSES");
        int passes = ep && atoi(ep) > 1 ? atoi(ep) : 1;
        char name[80];
        sq_scheme_format(cd, p, name, 64);
        for (int pass = 0; pass < passes && !rc; pass++) {
            if (pass) snprintf(name + strlen(name), 16, "#%d", pass + 1);
            rc = time_scheme(vk, t, n, name, wbytes, rows * cols, copy_gbs, chk, min_time);
            if (pass) *strchr(name, '#') = 0;
        }
        char *settings = es && *es ? strdup(es) : NULL, *ssave = NULL;
        for (char *set = settings ? strtok_r(settings, ";", &ssave) : NULL; set && !rc; set = strtok_r(NULL, ";", &ssave)) {
            knob_env kv[MAX_KNOBS];
            char label[160], sname[240];
            int nk = knobs_apply(set, kv, label, sizeof label);
            if (nk < 0) {
                fprintf(stderr, "squish-bench: SQUISH_BENCH_VK_SETTINGS: \"%s\" is not KEY=VALUE words\n", set);
                rc = EXIT_USAGE;
                break;
            }
            snprintf(sname, sizeof sname, "%s%s", name, label);
            double c = check_gemv(vk, t[0], &ref, rows, x, &err, &bad);
            rc = bad ? cli_fail(&err) : time_scheme(vk, t, n, sname, wbytes, rows * cols, copy_gbs, c, min_time);
            knobs_restore(kv, nk);
        }
        free(settings);
        free(ref.y);
        free(ref.mag);
        for (int i = 0; t && i < n; i++) sq_vk_tensor_free(vk, t[i]);
        free(t);
        sq_encoded_free(&e);
    }
    cli_progress_done();
    free(x);
    return rc;
}

void bench_vk_decode_profile(const sq_vk_decode *d, double host_ms) {
    const sq_vk_prof_row *r;
    uint32_t steps;
    const char *note;
    uint32_t n = sq_vk_decode_profile(d, &r, &steps, &note);
    if (!r) return;
    if (note || !steps) {
        printf("#   profile: %s\n", note ? note : "no steps timed");
        return;
    }
    double total = 0;
    for (uint32_t i = 0; i < n; i++) total += r[i].ms;
    printf("#   profile (SQUISH_VULKAN_PROFILE=1; GPU timestamps after each dispatch, over %u steps; device %.3f ms per\n"
           "#   token of the %.3f ms measured on the host, the timestamps' own cost included in both)\n",
           steps, total / steps, host_ms);
    printf("#   %-36s %9s %12s %8s %10s\n", "KIND", "PER_TOKEN", "MS_PER_TOKEN", "SHARE", "US_EACH");
    for (uint32_t i = 0; i < n; i++)
        printf("#   %-36s %9u %12.4f %7.1f%% %10.2f\n", r[i].kind, r[i].count, r[i].ms / steps,
               total > 0 ? 100.0 * r[i].ms / total : 0.0, r[i].count ? 1e3 * r[i].ms / steps / r[i].count : 0.0);
}
