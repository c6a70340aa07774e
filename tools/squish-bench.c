/* squish-bench: codec throughput next to the machine's streaming-read
 * bandwidth measured in the same run. Figures, not pass/fail. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "squish/codec.h"
#include "squish/fp.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *o) {
    fprintf(o,
            "Usage: squish-bench [OPTIONS]\n"
            "Measure encode, decode and GEMV throughput of every codec on a synthetic matrix, next to\n"
            "a plain streaming-read bandwidth measured in the same run.\n\n"
            "  -R, --rows N        matrix rows (default 8192)\n"
            "  -C, --cols N        matrix columns (default 8192)\n"
            "  -c, --codecs LIST   comma-separated schemes (default: every codec's default scheme)\n"
            "  -T, --threads N     threads for encode/decode (GEMV runs on 1 thread; default: all cores)\n"
            "      --min-time S    seconds per GEMV measurement (default 0.5)\n"
            "  -h, --help          this help\n\n"
            "GEMV GB/s counts the bytes of every stored part read once per call; 'ratio' divides it by\n"
            "the single-thread streaming-read bandwidth. SQUISH_ISA=portable|avx2|avx512 picks the path.\n");
}

/* Single-thread read bandwidth: sum a buffer much larger than the caches. */
static double read_bandwidth(size_t bytes, double min_time) {
    size_t n = bytes / sizeof(float);
    float *b = aligned_alloc(64, n * sizeof(float));
    if (!b) return 0;
    for (size_t i = 0; i < n; i++) b[i] = (float)(i & 255);
    volatile float sink = 0;
    double best = 0, t_end = now() + min_time * 2;
    do {
        double t0 = now();
        float s[16] = {0};
        for (size_t i = 0; i + 16 <= n; i += 16)
            for (int k = 0; k < 16; k++) s[k] += b[i + k];
        double t = now() - t0;
        for (int k = 0; k < 16; k++) sink += s[k];
        double gbs = (double)(n * sizeof(float)) / t / 1e9;
        if (gbs > best) best = gbs;
    } while (now() < t_end);
    (void)sink;
    free(b);
    return best;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv) {
    cli_prog = "squish-bench";
    static const struct option lo[] = {{"rows", required_argument, 0, 'R'},    {"cols", required_argument, 0, 'C'},
                                       {"codecs", required_argument, 0, 'c'},  {"threads", required_argument, 0, 'T'},
                                       {"min-time", required_argument, 0, 1},  {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    uint64_t rows = 8192, cols = 8192;
    int threads = sq_default_threads(), c;
    double min_time = 0.5, v;
    char *codecs = NULL;
    while ((c = getopt_long(argc, argv, "R:C:c:T:h", lo, NULL)) != -1) {
        switch (c) {
        case 'R': if (cli_parse_double(optarg, &v) || v < 1) return cli_usage_error("bad --rows"); rows = (uint64_t)v; break;
        case 'C': if (cli_parse_double(optarg, &v) || v < 1) return cli_usage_error("bad --cols"); cols = (uint64_t)v; break;
        case 'c': codecs = optarg; break;
        case 'T': if (cli_parse_threads(optarg, &threads)) return cli_usage_error("bad --threads"); break;
        case 1: if (cli_parse_double(optarg, &min_time) || min_time <= 0) return cli_usage_error("bad --min-time"); break;
        case 'h': usage(stdout); return 0;
        default: return cli_usage_error("invalid option");
        }
    }
    uint64_t n = rows * cols;
    float *w = malloc(n * sizeof(float)), *dec = malloc(n * sizeof(float));
    float *x = malloc(cols * sizeof(float)), *y = malloc(rows * sizeof(float));
    if (!w || !dec || !x || !y) {
        fprintf(stderr, "squish-bench: out of memory for a %llux%llu matrix\n", (unsigned long long)rows, (unsigned long long)cols);
        return EXIT_RESOURCE;
    }
    /* Gaussian weights with a few heavy-tailed outliers, rounded to bf16 like real checkpoints */
    for (uint64_t i = 0; i < n; i++) {
        double g = sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()) * 0.02;
        if (urand() < 1e-3) g *= 10;
        w[i] = sq_bf16_to_f32(sq_f32_to_bf16((float)g));
    }
    for (uint64_t i = 0; i < cols; i++) x[i] = (float)(urand() - 0.5);
    double bw = read_bandwidth((size_t)1 << 30, min_time);
    printf("# squish-bench %s: matrix %llux%llu, isa %s, %d threads for encode/decode, GEMV on 1 thread\n", SQUISH_VERSION,
           (unsigned long long)rows, (unsigned long long)cols, sq_isa_name(sq_isa_active()), threads);
    printf("# streaming read bandwidth (1 thread, 1 GiB buffer): %.2f GB/s\n", bw);
    printf("%-24s %7s %12s %12s %12s %12s %7s\n", "SCHEME", "BPW", "ENC_MB/s", "DEC_GB/s", "GEMV_GB/s", "GEMV_Gw/s", "RATIO");
    char list[4096];
    if (codecs) snprintf(list, sizeof list, "%s", codecs);
    else {
        size_t k = 0;
        list[0] = 0;
        for (const sq_codec *const *l = sq_codec_list(); *l; l++) k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", k ? "," : "", (*l)->name);
    }
    char *save = NULL;
    for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        const sq_codec *cd;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        if (sq_scheme_parse(s, &cd, p, &err)) { fprintf(stderr, "squish-bench: %s\n", err.msg); return EXIT_USAGE; }
        sq_encoded e;
        double t0 = now();
        if (sq_encode(cd, p, w, rows, cols, threads, &e, &err)) { fprintf(stderr, "squish-bench: %s\n", err.msg); return EXIT_RESOURCE; }
        double t_enc = now() - t0;
        sq_tview tv;
        sq_tview_from_encoded(&e, &tv);
        t0 = now();
        sq_decode_mt(&tv, dec, threads);
        double t_dec = now() - t0;
        uint64_t wbytes = 0;
        for (int i = 0; i < e.nparts; i++)
            if (!e.spec[i].scratch) wbytes += e.bytes[i];
        int reps = 0;
        double t_end, t_g;
        sq_gemv(&tv, x, y, 0, rows); /* warm-up */
        t0 = now();
        do {
            sq_gemv(&tv, x, y, 0, rows);
            reps++;
            t_end = now();
        } while (t_end - t0 < min_time);
        t_g = (t_end - t0) / reps;
        double gemv_gbs = (double)wbytes / t_g / 1e9;
        char name[64];
        sq_scheme_format(cd, p, name, sizeof name);
        printf("%-24s %7.3f %12.1f %12.2f %12.2f %12.2f %6.0f%%\n", name, 8.0 * (double)wbytes / (double)n,
               (double)n * 2 / t_enc / 1e6, (double)n * 4 / t_dec / 1e9, gemv_gbs, (double)n / t_g / 1e9,
               100.0 * gemv_gbs / bw);
        fflush(stdout);
        sq_encoded_free(&e);
    }
    free(w);
    free(dec);
    free(x);
    free(y);
    return 0;
}
