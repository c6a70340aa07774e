/* squish-bench: codec throughput next to the machine's streaming-read
 * bandwidth measured in the same run. Figures, not pass/fail. */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_rd.h"
#include "bench_tbe.h"
#include "bench_trials.h"
#include "bench_vk.h"
#include "cli.h"
#include "encoders.h"
#include "gptq.h"
#include "squish/codec.h"
#include "squish/fp.h"
#include "runtime.h"
#include "vk_decode.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *o) {
    fprintf(o,
            "Usage: squish-bench [OPTIONS]\n"
            "       squish-bench --trials N -m FILE... [OPTIONS]\n"
            "       squish-bench --rd MODEL --eval-ids FILE [--target-bpw LIST --calib FILE.h5] [--codecs LIST] [OPTIONS]\n"
            "Measure encode, decode and GEMV throughput of every codec on a synthetic matrix, next to\n"
            "a plain streaming-read bandwidth measured in the same run.\n\n"
            "  -R, --rows N        matrix rows (default 8192)\n"
            "  -C, --cols N        matrix columns (default 8192)\n"
            "  -c, --codecs LIST   comma-separated schemes (default: every codec's default scheme); with --rd,\n"
            "                      each one a file quantized with that scheme (squish-quantize --scheme)\n"
            "  -T, --threads N     threads for encode/decode and the all-threads GEMV columns (1: none of\n"
            "                      those; default or 0: all cores)\n"
            "      --min-time S    seconds of GEMV timing per scheme (default 0.5)\n"
            "      --flush-mib N   cache-flush/bandwidth buffer in MiB (default 1024; make it > LLC)\n"
            "  -m, --model FILE    also time the reference runtime on a .squizd file (repeatable):\n"
            "                      prefill tokens/s over one window, decode tokens/s with the KV cache\n"
            "      --ctx N         prefill window and decode length for --model (default 256); with --rd the\n"
            "                      evaluation window (default 512)\n"
            "      --no-exact      --model: time the default path only (EXACT_* print as -; a 7B model's exact\n"
            "                      pass takes minutes)\n"
            "      --tca-tbe MODEL also TCA-TBE (lossless bf16 part compression) on MODEL's bf16 tensors, by\n"
            "                      class: size against bf16 and zstd -19, decode GB/s against zstd's, the\n"
            "                      coded GEMV against the bf16 GEMV (1 thread, cold caches); the codec table\n"
            "                      then runs only with --codecs (bf16 in it adds a bf16+tca-tbe row)\n"
            "      --gptq N        instead: time GPTQ (int4:g128:asym) on one N x N layer with a random\n"
            "                      SPD Hessian, next to the sgemm GFLOP/s of the same run; then again\n"
            "                      with squish-quantize's default coordinate descent (--gptq-cd)\n"
            "      --backend B     cpu (default) or vulkan: the codec table then times the Vulkan GEMV\n"
            "                      next to a copy shader's bandwidth and a read-only shader over the\n"
            "                      same bytes (READ_us), and --model runs on the device\n"
            "      --device SEL    Vulkan device: an index or part of a name (see --list-devices)\n"
            "      --list-devices  print the Vulkan devices and exit\n"
            "      --gpu-mib N     device working set for the Vulkan GEMV and copy (default 1024;\n"
            "                      make it several times the GPU's last-level cache)\n"
            "      --trials N      instead: a statistical benchmark of whole models, N samples per --model file\n"
            "                      (.squizd on squish's runtime, .gguf on llama.cpp's llama-bench), interleaved:\n"
            "                      P50/P95/P99 of time to first token and decode tokens/s, peak RSS, file size\n"
            "      --rounds K      --trials: run the trials in K rounds over all files (default N: one trial per\n"
            "                      run; llama-bench gets a round's share as -r)\n"
            "      --n-prompt N    --trials: prompt tokens for the time to first token (default 512)\n"
            "      --n-gen N       --trials: tokens decoded (default 128)\n"
            "      --llama-bench P --trials: llama-bench, or a llama.cpp folder with it or with bin-avx512/ and\n"
            "                      bin-avx2/ (chosen by CPU flags); default $SQUISH_LLAMA_BENCH, then PATH\n"
            "      --json FILE     --trials: every sample and the percentiles as JSON ('-' = stdout, no table);\n"
            "                      --rd: every point and the run's settings\n"
            "      --rd MODEL      instead: a rate-distortion sweep of MODEL (a source model): quantize it for each\n"
            "                      --target-bpw and each --codecs scheme, measure the mean KL-divergence to the\n"
            "                      --reference on the exact path (as squish-verify --eval-ids), print a table and\n"
            "                      write --tsv, --json and an SVG plot (--svg) of KLD (log) against bpw\n"
            "      --target-bpw LIST  --rd: comma-separated targets for squish-quantize --target-bpw (the candidates\n"
            "                      are encoded once, by the first target; the others reuse its table)\n"
            "      --over all|matrices  --rd: the set bpw is counted over (and allocated; default matrices)\n"
            "      --candidates LIST  --rd: the allocator's candidates (default: squish-quantize's ladder)\n"
            "      --calib FILE.h5 --rd: calibration statistics (needed by --target-bpw, GPTQ and quip)\n"
            "      --method M      --rd: rtn or gptq (default: gptq with --calib, else rtn); --act-order\n"
            "      --eval-ids FILE --rd: the evaluation text as token ids (whitespace-separated)\n"
            "      --reference M   --rd: the model KL-divergence is measured against (default: MODEL)\n"
            "      --ref-logits F  --rd: cache of the reference's log-probabilities (read when it matches, else\n"
            "                      written; default: one in the work folder, removed with it)\n"
            "      --windows N     --rd: evaluate at most N windows (default: all)\n"
            "      --llama-cpp     --rd: score only the second half of each window, as llama.cpp does\n"
            "      --points FILE   --rd: reference points (JSON: llama.cpp's or ik_llama.cpp's figures, or an\n"
            "                      earlier --rd --json) drawn on the same axes; repeatable, up to 8\n"
            "      --plot-bpw LO:HI  --rd: the plot's bpw axis (default: fitted to the points)\n"
            "      --tsv FILE      --rd: the table as tab-separated values ('-' = stdout, no table)\n"
            "      --svg FILE      --rd: the plot\n"
            "      --keep DIR      --rd: quantize into DIR and keep the files (default: a temporary folder, removed)\n"
            "  -q, --quiet         no progress on stderr\n"
            "  -h, --help          this help\n"
            "  -V, --version       print the version\n\n"
            "GEMV GB/s counts the bytes of every stored part read once per call, timed from cold caches;\n"
            "Q8 is the integer-activation kernel (activations rounded to int8 blocks of 32, as llama.cpp);\n"
            "'ratio' divides it by a single-thread streaming read of as many bytes from cold caches, timed in\n"
            "the same repetitions (best of each; READ_GB/s); the _MT columns run the same kernels on -T threads\n"
            "(rows split as the runtime splits them) against a -T thread read (READ_MT); RT names the kernel\n"
            "the runtime's decode uses (f32 or q8).\n"
            "SQUISH_ISA=portable|avx2|avx512 caps the kernel path.\n\n"
            "Exit status: 0 ok, 2 usage (a bad option or scheme), 3 I/O error (a --model file cannot be read; an\n"
            "--rd input or output), 4 corrupt --model file, 5 unsupported (a --model file's version or codec; Vulkan unavailable),\n"
            "6 out of memory, 7 internal error.\n");
}

/* Streaming read with explicit SIMD so the loop is bound by memory, not by
 * the adder chain: 8 independent 256-bit accumulators. */
#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"))) static float sum_avx2(const float *b, size_t n) {
    __m256 a[8];
    for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
    for (size_t i = 0; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++) a[k] = _mm256_add_ps(a[k], _mm256_load_ps(b + i + 8 * k));
    for (int k = 1; k < 8; k++) a[0] = _mm256_add_ps(a[0], a[k]);
    float o[8];
    _mm256_storeu_ps(o, a[0]);
    return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}
#endif
static float sum_plain(const float *b, size_t n) {
    float s[16] = {0};
    for (size_t i = 0; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) s[k] += b[i + k];
    float t = 0;
    for (int k = 0; k < 16; k++) t += s[k];
    return t;
}
static float stream_sum(const float *b, size_t n) {
#if defined(__x86_64__)
    if (sq_isa_supported(SQ_ISA_AVX2)) return sum_avx2(b, n);
#endif
    return sum_plain(b, n);
}

static volatile float sink;
/* Reading this buffer evicts the last-level cache (it is larger than any LLC
 * seen here), so the next GEMV reads its weights from DRAM. */
static float *flush_buf;
static size_t flush_n;
static void flush_cache(void) { sink += stream_sum(flush_buf, flush_n); }

/* Single-thread DRAM read bandwidth: best of several passes over the buffer. */
static double read_bandwidth(double min_time) {
    double best = 0, t_end = now() + min_time * 2;
    do {
        double t0 = now();
        sink += stream_sum(flush_buf, flush_n);
        double gbs = (double)(flush_n * sizeof(float)) / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    } while (now() < t_end);
    return best;
}

/* The same read on n threads (sq_parallel_for's contiguous parts, as the
 * runtime splits a GEMV's rows): the bound of an all-threads GEMV. */
typedef struct mt_read {
    size_t per;
    float part[256];
} mt_read;
static void mt_read_part(void *p, uint64_t i0, uint64_t i1) {
    mt_read *m = p;
    for (uint64_t i = i0; i < i1; i++) m->part[i] = stream_sum(flush_buf + i * m->per, m->per);
}
static double read_bandwidth_mt(double min_time, int threads) {
    mt_read m;
    const int parts = threads < 256 ? threads : 256;
    m.per = flush_n / (size_t)parts / 64 * 64;
    double best = 0, t_end = now() + min_time * 2;
    do {
        double t0 = now();
        sq_parallel_for(threads, (uint64_t)parts, mt_read_part, &m);
        double gbs = (double)(m.per * (size_t)parts * sizeof(float)) / (now() - t0) / 1e9;
        for (int i = 0; i < parts; i++) sink += m.part[i];
        if (gbs > best) best = gbs;
    } while (now() < t_end);
    return best;
}

/* One GEMV (exact f32 or integer-activation kernel) timed from cold caches,
 * its rows split over `threads` as the runtime splits them; best time of
 * at least three calls and min_time seconds. */
typedef struct gemv_job {
    const sq_tview *tv;
    const float *x;
    const sq_act_q8 *xa; /* NULL: the exact GEMV (sq_gemv_mt, transforms included) */
    sq_gemv_q8_fn q8;
    float *y;
    int threads;
} gemv_job;
static void gemv_q8_rows(void *p, uint64_t r0, uint64_t r1) {
    gemv_job *j = p;
    j->q8(j->tv, j->xa, j->y, r0, r1);
}
static void gemv_job_run(gemv_job *j) {
    if (j->xa) sq_parallel_for(j->threads, j->tv->rows, gemv_q8_rows, j);
    else sq_gemv_mt(j->tv, j->x, j->y, j->threads);
}
/* The bound of a GEMV that reads `bytes` from DRAM: the time to read as many
 * bytes of the flush buffer from cold caches (its first part, which the
 * flush that precedes it has evicted), on the same threads, rows split the
 * same way. Timed right next to the GEMV, so that a machine whose load
 * changes (or that preempts long runs) moves both alike. */
static double time_read(uint64_t bytes, int threads) {
    mt_read m;
    const int parts = threads < 256 ? threads : 256;
    size_t n = (size_t)(bytes / sizeof(float)) < flush_n / 2 ? (size_t)(bytes / sizeof(float)) : flush_n / 2;
    m.per = (n / (size_t)parts + 63) / 64 * 64;
    double t0 = now();
    if (parts > 1) sq_parallel_for(threads, (uint64_t)parts, mt_read_part, &m);
    else m.part[0] = stream_sum(flush_buf, m.per);
    double dt = now() - t0;
    for (int i = 0; i < parts; i++) sink += m.part[i];
    return dt * ((double)bytes / (double)(m.per * (size_t)parts * sizeof(float)));
}

/* Each repetition: flush the caches, read as many bytes as the GEMV's from
 * cold memory (time_read), flush, then the GEMV; *bw gets the best read
 * GB/s over the repetitions, the return value the best GEMV time. */
static double time_gemv(gemv_job *j, int threads, uint64_t bytes, double min_time, double *bw) {
    double best = 1e30, best_read = 1e30, spent = 0;
    int reps = 0;
    j->threads = threads;
    gemv_job_run(j); /* warm the code and the pool */
    while (spent < min_time || reps < 3) {
        flush_cache();
        best_read = fmin(best_read, time_read(bytes, threads));
        flush_cache();
        double t1 = now();
        gemv_job_run(j);
        double dt = now() - t1;
        if (dt < best) best = dt;
        spent += dt;
        reps++;
    }
    *bw = (double)bytes / best_read / 1e9;
    return best;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* GPTQ on one n x n layer with a random SPD Hessian H = AᵀA/n + 0.01 I,
 * timed next to the sgemm rate measured in the same run (the GEMM that
 * builds H). GPTQ's floating-point work: the inverse Cholesky factor
 * (potrf + potri + potrf, 4n³/3 in float64), the lazy block updates
 * (rows·n² in float32) and the in-block rank-1 updates (rows·n·B). */
static int bench_gptq(uint64_t n, int threads) {
    float *A = malloc(n * n * sizeof(float)), *C = malloc(n * n * sizeof(float)), *w = malloc(n * n * sizeof(float));
    double *H = malloc(n * n * sizeof(double));
    if (!A || !C || !w || !H) {
        fprintf(stderr, "squish-bench: out of memory for GPTQ on %llu x %llu\n", (unsigned long long)n, (unsigned long long)n);
        return EXIT_RESOURCE;
    }
    for (uint64_t i = 0; i < n * n; i++) {
        A[i] = (float)(urand() * 2 - 1);
        w[i] = (float)((urand() * 2 - 1) * 0.02);
    }
    openblas_set_num_threads(threads);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, A, (int)n, A, (int)n, 0.0f, C, (int)n);
        double t = now() - t0;
        if (t < best) best = t;
    }
    double sgemm_gflops = 2.0 * (double)n * n * n / best / 1e9;
    for (uint64_t i = 0; i < n * n; i++) H[i] = C[i] / (double)n + (i / n == i % n ? 0.01 : 0);
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    sq_scheme_parse("int4:g128:asym", &c, p, &err);
    sq_gptq_opts o = {.damp = 0.01, .act_order = 0, .static_groups = 0, .block = 128, .n_threads = threads, .refine = -1};
    sq_gptq_info info;
    sq_encoded e;
    double t0 = now();
    sq_status st = sq_gptq_quantize("bench", c, p, w, n, n, H, &o, &e, &info, &err);
    double secs = now() - t0;
    if (st) {
        fprintf(stderr, "squish-bench: GPTQ failed: %s\n", err.msg);
        return cli_exit_code(st);
    }
    sq_encoded_free(&e);
    /* the same inverse-Hessian factor alone: how the time splits between the
     * float64 factor (fixed summation order, for machine-independent bits)
     * and the float32 column sweep with its lazy updates */
    float *U = malloc(n * n * sizeof(float));
    double hinv_secs = 0;
    if (U) {
        sq_gptq_info hi = {0};
        t0 = now();
        if (sq_gptq_hinv(H, n, NULL, 0.01, U, threads, &hi, &err) == SQ_OK) hinv_secs = now() - t0;
        free(U);
    }
    /* the same with squish-quantize's default coordinate descent after the sweep (--gptq-cd) */
    o.refine = 0;
    t0 = now();
    st = sq_gptq_quantize("bench", c, p, w, n, n, H, &o, &e, &info, &err);
    const double cd_secs = now() - t0;
    if (st) {
        fprintf(stderr, "squish-bench: GPTQ with the descent failed: %s\n", err.msg);
        return cli_exit_code(st);
    }
    sq_encoded_free(&e);
    double nn = (double)n, flops = 4.0 / 3.0 * nn * nn * nn + nn * nn * nn + nn * nn * 128.0;
    printf("GPTQ int4:g128:asym on one %llux%llu layer, random SPD Hessian, %d threads\n", (unsigned long long)n,
           (unsigned long long)n, threads);
    printf("  sgemm %llu^3 (same run, %d threads): %.1f GFLOP/s\n", (unsigned long long)n, threads, sgemm_gflops);
    printf("  GPTQ: %.2f s; %.1f GFLOP -> %.2f s at the sgemm rate; GPTQ runs at %.0f%% of sgemm speed\n", secs,
           flops / 1e9, flops / 1e9 / sgemm_gflops, 100.0 * flops / 1e9 / sgemm_gflops / secs);
    if (hinv_secs > 0) /* Cholesky n^3/3 plus triangular inverse n^3/3 multiply-adds */
        printf("  of which the float64 inverse-Hessian factor: %.2f s (%.1f GFLOP/s); column sweep: %.2f s (%.1f GFLOP/s)\n",
               hinv_secs, 2.0 / 3.0 * nn * nn * nn / hinv_secs / 1e9, secs - hinv_secs,
               secs > hinv_secs ? (nn * nn * nn + nn * nn * 128.0) / (secs - hinv_secs) / 1e9 : 0.0);
    /* each sweep's start: the gradient E (H + lam I), rows x n^2 multiply-adds */
    printf("  with squish-quantize's default coordinate descent (--gptq-cd %d): %.2f s, the descent %.2f s "
           "(its gradient n^3 multiply-adds: %.1f GFLOP/s)\n",
           SQ_GPTQ_REFINE, cd_secs, cd_secs - secs, cd_secs > secs ? 2.0 * nn * nn * nn / (cd_secs - secs) / 1e9 : 0.0);
    free(A); free(C); free(w); free(H);
    return 0;
}

/* Decode steps on a device-resident cache until SQUISH_BENCH_VK_WARM seconds
 * (default 0.5) have passed: GPU clocks drop within ~1.5 s of idling and
 * come back only under load (issue 22), which the timing would otherwise
 * include. */
static sq_status bench_warm_decode(const sq_rt_model *m, sq_rt_cache *kv, const int32_t *ids, uint32_t steps, float *lg,
                                   int threads, sq_err *err) {
    const char *e = getenv("SQUISH_BENCH_VK_WARM");
    const double warm = e && *e ? atof(e) : 0.5, t0 = now();
    while (now() - t0 < warm) {
        if (kv->pos >= steps) kv->pos = 0;
        sq_status st = sq_rt_step(m, kv, ids[kv->pos], lg, threads, err);
        if (st) return st;
    }
    return SQ_OK;
}

/* Prefill and decode speed of the reference runtime on .squizd files. */
static int bench_models(const char *const *models, int n_models, uint32_t rt_ctx, int threads, cli_backend *be, int no_exact) {
    if (n_models) {
        char where[512];
        cli_backend_describe(be, threads, where, sizeof where);
        printf("\n# reference runtime (%s): prefill = one window of %u tokens from an empty cache, logits of its last\n"
               "# position only (as llama-bench's pp test and a prompt before decoding); decode = %u\n"
               "# tokens one at a time with the KV cache, on the runtime's default path (each codec's fastest kernel:\n"
               "# int8-block activations where the codec has them and they pay, batched over the window in prefill);\n"
               "# EXACT_* = the same on the exact f32-activation path (what squish-verify --eval runs). Token ids are a\n"
               "# fixed pseudo-random sequence.\n",
               where, rt_ctx, rt_ctx / 4);
        printf("%-40s %-22s %8s %14s %14s %14s %14s\n", "FILE", "SCHEME", "BPW", "PREFILL_TOK/s", "DECODE_TOK/s",
               "EXACT_PREFILL", "EXACT_DECODE");
        fflush(stdout);
    }
    cli_progress_start("timing models", (uint64_t)n_models, "models");
    for (int k = 0; k < n_models; k++) {
        cli_progress_update((uint64_t)k);
        sq_err err = {0};
        sq_file *f = sq_open(models[k], &err);
        sq_rt_model m;
        if (!f || sq_rt_load_file(f, &m, &err) || cli_backend_attach(be, &m, &err)) {
            fprintf(stderr, "squish-bench: %s\n", err.msg);
            sq_close(f);
            return cli_exit_code(err.status);
        }
        uint32_t T = rt_ctx, steps = rt_ctx / 4;
        if (m.cfg.max_seq && T > m.cfg.max_seq) T = m.cfg.max_seq;
        int32_t *ids = malloc(T * sizeof *ids);
        float *lg = malloc((size_t)T * m.cfg.vocab * sizeof(float));
        sq_rt_cache kv;
        if (!ids || !lg || sq_rt_cache_init(&m, steps, &kv, &err)) return EXIT_RESOURCE;
        for (uint32_t i = 0; i < T; i++) ids[i] = (int32_t)((i * 2654435761u + 17u) % m.cfg.vocab);
        double pre[2] = {0, 0}, decs[2] = {0, 0}; /* [0] default path, [1] exact (0: not timed) */
        const int fast_default = m.fast_kernels;
        for (int pass = 0; pass < (no_exact ? 1 : 2); pass++) {
            m.fast_kernels = pass ? 0 : fast_default;
            double t0 = now();
            if (sq_rt_forward_last(&m, ids, T, lg, threads, &err)) { fprintf(stderr, "squish-bench: %s\n", err.msg); return EXIT_INTERNAL; }
            pre[pass] = (double)T / (now() - t0);
            kv.pos = 0;
            if (kv.gpu) { /* the device may have idled through the host's prefill: warm it up (bench_warm_decode) */
                if (bench_warm_decode(&m, &kv, ids, steps, lg, threads, &err)) { fprintf(stderr, "squish-bench: %s\n", err.msg); return EXIT_INTERNAL; }
                kv.pos = 0;
            }
            if (kv.gpu) sq_vk_decode_profile_reset(kv.gpu); /* the profile: this pass's timed steps */
            t0 = now();
            for (uint32_t i = 0; i < steps; i++)
                if (sq_rt_step(&m, &kv, ids[i], lg, threads, &err)) { fprintf(stderr, "squish-bench: %s\n", err.msg); return EXIT_INTERNAL; }
            decs[pass] = (double)steps / (now() - t0);
        }
        /* scheme: the file's quantization.scheme metadata, if any */
        char scheme[64] = "?";
        const char *meta = sq_file_metadata(f, &err), *q = meta ? strstr(meta, "\"scheme\"") : NULL;
        if (q && (q = strchr(q + 8, '"'))) {
            const char *e = strchr(q + 1, '"');
            if (e && e - q - 1 < (long)sizeof scheme) { memcpy(scheme, q + 1, (size_t)(e - q - 1)); scheme[e - q - 1] = 0; }
        }
        cli_progress_clear();
        if (no_exact)
            printf("%-40s %-22s %8.3f %14.1f %14.1f %14s %14s\n", models[k], scheme, (double)sq_file_header(f)->avg_bpw, pre[0],
                   decs[0], "-", "-");
        else
            printf("%-40s %-22s %8.3f %14.1f %14.1f %14.1f %14.1f\n", models[k], scheme, (double)sq_file_header(f)->avg_bpw,
                   pre[0], decs[0], pre[1], decs[1]);
        if (be->vulkan && kv.gpu) {
            printf("#   decode step on the device: %u dispatches, one submission per token\n", sq_vk_decode_dispatches(kv.gpu));
            bench_vk_decode_profile(kv.gpu, 1e3 / decs[no_exact ? 0 : 1]);
        } else if (be->vulkan)
            printf("#   decode step on the host, its products on the device (SQUISH_VULKAN_DECODE=0, or a layer the device step lacks)\n");
        fflush(stdout);
        free(ids);
        free(lg);
        sq_rt_cache_free(&kv);
        sq_rt_free(&m);
        sq_close(f);
    }
    cli_progress_done();
    return 0;
}

/* --target-bpw's comma-separated list. */
static int parse_targets(const char *s, bench_rd_opts *rd) {
    char buf[1024], *save = NULL;
    if (strlen(s) >= sizeof buf) return -1;
    snprintf(buf, sizeof buf, "%s", s);
    rd->n_targets = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        double x;
        if (rd->n_targets == BENCH_RD_MAX_RUNS || cli_parse_double(t, &x) || !(x > 0) || x > 32) return -1;
        rd->targets[rd->n_targets++] = x;
    }
    return rd->n_targets ? 0 : -1;
}

/* Integer option value in lo..hi. */
static int parse_count(const char *s, double lo, double hi, uint64_t *out) {
    double v;
    if (cli_parse_double(s, &v) || v < lo || v > hi || v != floor(v)) return -1;
    *out = (uint64_t)v;
    return 0;
}

int main(int argc, char **argv) {
    cli_prog = "squish-bench";
    static const struct option lo[] = {{"rows", required_argument, 0, 'R'},    {"cols", required_argument, 0, 'C'},
                                       {"codecs", required_argument, 0, 'c'},  {"threads", required_argument, 0, 'T'},
                                       {"min-time", required_argument, 0, 1},  {"flush-mib", required_argument, 0, 2},
                                       {"model", required_argument, 0, 'm'},   {"ctx", required_argument, 0, 3},
                                       {"help", no_argument, 0, 'h'},         {"gptq", required_argument, 0, 4},
                                       {"backend", required_argument, 0, 5},  {"device", required_argument, 0, 6},
                                       {"list-devices", no_argument, 0, 7},   {"gpu-mib", required_argument, 0, 8},
                                       {"quiet", no_argument, 0, 'q'},        {"version", no_argument, 0, 'V'},
                                       {"trials", required_argument, 0, 9},   {"rounds", required_argument, 0, 10},
                                       {"n-prompt", required_argument, 0, 11}, {"n-gen", required_argument, 0, 12},
                                       {"llama-bench", required_argument, 0, 13}, {"json", required_argument, 0, 14},
                                       {"tca-tbe", required_argument, 0, 40},
                                       {"rd", required_argument, 0, 50},      {"target-bpw", required_argument, 0, 51},
                                       {"over", required_argument, 0, 52},    {"candidates", required_argument, 0, 53},
                                       {"calib", required_argument, 0, 54},   {"method", required_argument, 0, 55},
                                       {"act-order", no_argument, 0, 56},     {"eval-ids", required_argument, 0, 57},
                                       {"reference", required_argument, 0, 58}, {"ref-logits", required_argument, 0, 59},
                                       {"windows", required_argument, 0, 60}, {"llama-cpp", no_argument, 0, 61},
                                       {"points", required_argument, 0, 62},  {"plot-bpw", required_argument, 0, 63},
                                       {"tsv", required_argument, 0, 64},     {"svg", required_argument, 0, 65},
                                       {"keep", required_argument, 0, 66},    {"no-exact", no_argument, 0, 80},
                                       {0, 0, 0, 0}};
    uint64_t rows = 8192, cols = 8192, u;
    int threads = sq_default_threads(), c;
    double min_time = 0.5;
    size_t flush_mib = 1024;
    char *codecs = NULL;
    const char *models[32];
    int n_models = 0;
    uint32_t rt_ctx = 256;
    uint64_t gptq_n = 0;
    cli_backend be = {0, NULL, NULL};
    size_t gpu_mib = 1024;
    bench_trials_opts tr = {models, 0, 0, 0, 512, 128, 0, NULL, NULL};
    int trial_opts = 0; /* options that only --trials takes */
    const char *tbe_model = NULL;
    bench_rd_opts rd;
    memset(&rd, 0, sizeof rd);
    int rd_opts = 0, ctx_given = 0; /* options that only --rd takes */
    int no_exact = 0;
    /* every option is checked here, before anything runs */
    while ((c = getopt_long(argc, argv, "R:C:c:T:m:qhV", lo, NULL)) != -1) {
        switch (c) {
        case 'R': if (parse_count(optarg, 1, 1 << 20, &rows)) return cli_usage_error("--rows needs an integer in 1..1048576"); break;
        case 'C': if (parse_count(optarg, 1, 1 << 20, &cols)) return cli_usage_error("--cols needs an integer in 1..1048576"); break;
        case 'c': codecs = optarg; break;
        case 'T': if (cli_parse_threads(optarg, &threads)) return cli_usage_error("--threads needs 0..1024 (0: all cores)"); break;
        case 1:
            if (cli_parse_double(optarg, &min_time) || !(min_time > 0) || min_time > 3600) return cli_usage_error("--min-time needs seconds in (0, 3600]");
            break;
        case 2: if (parse_count(optarg, 1, 1 << 20, &u)) return cli_usage_error("--flush-mib needs an integer in 1..1048576"); flush_mib = (size_t)u; break;
        case 'm': if (n_models == 32) return cli_usage_error("at most 32 --model files"); models[n_models++] = optarg; break;
        case 3: if (parse_count(optarg, 8, 8192, &u)) return cli_usage_error("--ctx needs an integer in 8..8192"); rt_ctx = (uint32_t)u; ctx_given = 1; break;
        case 4: if (parse_count(optarg, 128, 65536, &gptq_n)) return cli_usage_error("--gptq needs an integer N in 128..65536"); break;
        case 5: if (cli_parse_backend(optarg, &be)) return cli_usage_error("--backend needs cpu or vulkan"); break;
        case 6: be.device = optarg; break;
        case 7: return cli_list_devices();
        case 8: if (parse_count(optarg, 1, 65536, &u)) return cli_usage_error("--gpu-mib needs an integer in 1..65536"); gpu_mib = (size_t)u; break;
        case 9: if (parse_count(optarg, 1, 100000, &u)) return cli_usage_error("--trials needs an integer in 1..100000"); tr.trials = (uint32_t)u; break;
        case 10: if (parse_count(optarg, 1, 100000, &u)) return cli_usage_error("--rounds needs an integer in 1..100000"); tr.rounds = (uint32_t)u; trial_opts = 1; break;
        case 11: if (parse_count(optarg, 1, 1 << 20, &u)) return cli_usage_error("--n-prompt needs an integer in 1..1048576"); tr.n_prompt = (uint32_t)u; trial_opts = 1; break;
        case 12: if (parse_count(optarg, 1, 1 << 20, &u)) return cli_usage_error("--n-gen needs an integer in 1..1048576"); tr.n_gen = (uint32_t)u; trial_opts = 1; break;
        case 13: tr.llama_bench = optarg; trial_opts = 1; break;
        case 14: tr.json = rd.json = optarg; break;
        case 50: rd.model = optarg; break;
        case 51:
            if (parse_targets(optarg, &rd)) return cli_usage_error("--target-bpw needs comma-separated numbers in (0, 32], at most %d", BENCH_RD_MAX_RUNS);
            rd_opts = 1;
            break;
        case 52:
            if (strcmp(optarg, "all") && strcmp(optarg, "matrices")) return cli_usage_error("--over needs all or matrices");
            rd.over_all = !strcmp(optarg, "all"), rd_opts = 1;
            break;
        case 53: rd.candidates = optarg, rd_opts = 1; break;
        case 54: rd.calib = optarg, rd_opts = 1; break;
        case 55:
            if (!strcmp(optarg, "rtn")) rd.method = SQ_METHOD_RTN;
            else if (!strcmp(optarg, "gptq")) rd.method = SQ_METHOD_GPTQ;
            else return cli_usage_error("--method needs rtn or gptq");
            rd.method_given = 1, rd_opts = 1;
            break;
        case 56: rd.act_order = 1, rd_opts = 1; break;
        case 57: rd.ids = optarg, rd_opts = 1; break;
        case 58: rd.reference = optarg, rd_opts = 1; break;
        case 59: rd.ref_logits = optarg, rd_opts = 1; break;
        case 60: if (parse_count(optarg, 1, 1e9, &u)) return cli_usage_error("--windows needs a positive integer"); rd.windows = (uint32_t)u, rd_opts = 1; break;
        case 61: rd.second_half = 1, rd_opts = 1; break;
        case 62:
            if (rd.n_points == BENCH_RD_MAX_POINTS) return cli_usage_error("at most %d --points files", BENCH_RD_MAX_POINTS);
            rd.points[rd.n_points++] = optarg, rd_opts = 1;
            break;
        case 63: {
            char *colon = strchr(optarg, ':');
            if (!colon) return cli_usage_error("--plot-bpw needs LO:HI");
            *colon = 0;
            int bad = cli_parse_double(optarg, &rd.x_lo) || cli_parse_double(colon + 1, &rd.x_hi);
            *colon = ':';
            if (bad || !(rd.x_lo >= 0) || !(rd.x_hi > rd.x_lo) || rd.x_hi > 64) return cli_usage_error("--plot-bpw needs LO:HI with 0 <= LO < HI <= 64, got '%s'", optarg);
            rd_opts = 1;
            break;
        }
        case 64: rd.tsv = optarg, rd_opts = 1; break;
        case 65: rd.svg = optarg, rd_opts = 1; break;
        case 66: rd.keep = optarg, rd_opts = 1; break;
        case 80: no_exact = 1; break;
        case 'q': cli_quiet = 1; break;
        case 40: tbe_model = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("squish-bench %s\n", SQUISH_VERSION); return EXIT_OK;
        default: return cli_usage_error("invalid option");
        }
    }
    if (optind != argc) return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (be.device && !be.vulkan) return cli_usage_error("--device needs --backend vulkan");
    if (gptq_n && (codecs || n_models || be.vulkan)) return cli_usage_error("--gptq runs alone (no --codecs, --model or --backend)");
    if (tbe_model && (gptq_n || be.vulkan)) return cli_usage_error("--tca-tbe runs on the CPU backend, without --gptq");
    if (rows * cols > ((uint64_t)1 << 32)) return cli_usage_error("--rows x --cols is above 2^32 weights");
    if (rd_opts && !rd.model) return cli_usage_error("--target-bpw, --over, --candidates, --calib, --method, --act-order, --eval-ids, "
                                                     "--reference, --ref-logits, --windows, --llama-cpp, --points, --plot-bpw, --tsv, "
                                                     "--svg and --keep go with --rd");
    if (rd.model) { /* the rate-distortion sweep runs alone */
        if (tr.trials || trial_opts || gptq_n || be.vulkan || tbe_model || n_models)
            return cli_usage_error("--rd runs alone (with --codecs for explicit schemes; no --trials, --gptq, --backend, --tca-tbe or --model)");
        if (!rd.n_targets && !codecs) return cli_usage_error("--rd needs --target-bpw LIST or --codecs LIST (or both)");
        if (!rd.ids) return cli_usage_error("--rd needs --eval-ids FILE (the text KL-divergence is measured on)");
        if (rd.n_targets && !rd.calib) return cli_usage_error("--target-bpw needs --calib FILE.h5 (each candidate's loss is measured with the layers' X^T X)");
        if (rd.candidates && !rd.n_targets) return cli_usage_error("--candidates applies to --target-bpw");
        if (rd.method_given && rd.method == SQ_METHOD_GPTQ && !rd.calib) return cli_usage_error("--method gptq needs --calib FILE.h5");
        if (rd.act_order && rd.method_given && rd.method != SQ_METHOD_GPTQ) return cli_usage_error("--act-order applies to --method gptq");
        if (rd.json && rd.tsv && !strcmp(rd.json, "-") && !strcmp(rd.tsv, "-")) return cli_usage_error("--json - and --tsv - cannot share standard output");
        if (rd.svg && !strcmp(rd.svg, "-")) return cli_usage_error("--svg needs a file name");
        rd.schemes = codecs;
        rd.ctx = ctx_given ? rt_ctx : 512;
        rd.threads = threads;
        return bench_rd(&rd);
    }
    if (rd.json && !tr.trials) return cli_usage_error("--json goes with --trials or --rd");
    if (trial_opts && !tr.trials) return cli_usage_error("--rounds, --n-prompt, --n-gen and --llama-bench go with --trials");
    if (tr.trials) { /* the statistical benchmark of whole models runs alone */
        if (!n_models) return cli_usage_error("--trials needs at least one --model FILE (.squizd or .gguf)");
        if (codecs || gptq_n || be.vulkan || tbe_model)
            return cli_usage_error("--trials runs alone (no --codecs, --gptq, --backend or --tca-tbe)");
        if (!tr.rounds) tr.rounds = tr.trials;
        if (tr.rounds > tr.trials) return cli_usage_error("--rounds %u is more than --trials %u", tr.rounds, tr.trials);
        tr.n_files = n_models;
        tr.threads = threads;
        return bench_trials(&tr);
    }
    for (int k = 0; k < n_models; k++)
        if (bench_is_gguf(models[k])) return cli_usage_error("%s: GGUF files are timed with --trials (through llama-bench)", models[k]);
    char list[4096];
    if (codecs) {
        if (strlen(codecs) >= sizeof list) return cli_usage_error("--codecs list too long");
        snprintf(list, sizeof list, "%s", codecs);
    } else if (tbe_model) { /* the model's table only: no codec table unless -c asks for one */
        list[0] = 0;
    } else {
        size_t k = 0;
        list[0] = 0;
        for (const sq_codec *const *l = sq_codec_list(); *l; l++) k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", k ? "," : "", (*l)->name);
    }
    uint64_t n_schemes = 0;
    {
        char check[4096], *save = NULL;
        memcpy(check, list, sizeof check);
        for (char *sc = strtok_r(check, ",", &save); sc; sc = strtok_r(NULL, ",", &save), n_schemes++) {
            const sq_codec *cd;
            uint32_t p[SQ_NPARAMS];
            sq_err err;
            if (sq_scheme_parse(sc, &cd, p, &err)) return cli_usage_error("--codecs: %s", err.msg);
        }
        if (!n_schemes && !(tbe_model && !codecs)) return cli_usage_error("--codecs needs at least one scheme");
    }
    for (int k = 0; k < n_models; k++) { /* a missing or damaged --model file fails now, not after the codec table */
        sq_err err = {0};
        sq_file *f = sq_open(models[k], &err);
        if (!f) return cli_fail(&err);
        sq_close(f);
    }
    if (tbe_model) { /* a missing or unreadable --tca-tbe model fails now too */
        sq_err err = {0};
        sq_model *m = sq_model_open(tbe_model, &err);
        if (!m) return cli_fail(&err);
        sq_model_close(m);
    }
    if (gptq_n) return bench_gptq(gptq_n, threads);
    if (!n_schemes) rows = cols = 1; /* --tca-tbe alone: no codec table, no synthetic matrix */
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
    if (be.vulkan) {
        int vrc = bench_vulkan(&be, w, rows, cols, list, threads, gpu_mib, min_time);
        free(w); free(dec); free(x); free(y);
        if (!vrc) vrc = bench_models(models, n_models, rt_ctx, threads, &be, no_exact);
        cli_backend_close(&be);
        return vrc;
    }
    memset(dec, 0, n * sizeof(float)); /* fault the pages in now, not inside the first decode timing */
    flush_n = ((size_t)flush_mib << 20) / sizeof(float);
    flush_buf = aligned_alloc(64, flush_n * sizeof(float));
    if (!flush_buf) return EXIT_RESOURCE;
    for (size_t i = 0; i < flush_n; i++) flush_buf[i] = (float)(i & 255);
    double bw = read_bandwidth(min_time), bw_mt = threads > 1 ? read_bandwidth_mt(min_time, threads) : bw;
    printf("# squish-bench %s: matrix %llux%llu, isa %s, %d threads for encode/decode and the _MT GEMV columns\n", SQUISH_VERSION,
           (unsigned long long)rows, (unsigned long long)cols, sq_isa_name(sq_isa_active()), threads);
    printf("# streaming read bandwidth (1 thread, %zu MiB buffer, SIMD loads): %.2f GB/s\n", flush_mib, bw);
    if (threads > 1) printf("# streaming read bandwidth (%d threads, same buffer): %.2f GB/s\n", threads, bw_mt);
    printf("# every GEMV timing starts with cold caches (the %zu MiB buffer is read first)\n", flush_mib);
    if (n_schemes)
        printf("%-24s %7s %10s %10s %11s %7s %11s %7s %11s %7s %11s %7s %4s %9s %9s\n", "SCHEME", "BPW", "ENC_MB/s", "DEC_GB/s", "GEMV_GB/s",
               "RATIO", "Q8_GB/s", "RATIO", "GEMV_MT", "RATIO", "Q8_MT", "RATIO", "RT", "READ_GB/s", "READ_MT");
    char *save = NULL;
    fflush(stdout);
    cli_progress_start("benchmarking", n_schemes, "schemes");
    uint64_t k_scheme = 0;
    for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        cli_progress_update(k_scheme++);
        const sq_codec *cd;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        if (sq_scheme_parse(s, &cd, p, &err)) { fprintf(stderr, "squish-bench: %s\n", err.msg); return EXIT_USAGE; }
        sq_encoded e;
        /* calibrated codecs (QuIP#) get XᵀX = I: the timing includes their factorization */
        double *xtx = NULL;
        if (sq_quant_needs_xtx(cd)) {
            xtx = calloc(cols * cols, sizeof(double));
            if (!xtx) { fprintf(stderr, "squish-bench: out of memory for a %llu x %llu XᵀX\n", (unsigned long long)cols, (unsigned long long)cols); return EXIT_RESOURCE; }
            for (uint64_t i = 0; i < cols; i++) xtx[i * cols + i] = 1;
        }
        sq_encode_ctx ex = {.codec = cd, .params = p, .w = w, .rows = rows, .cols = cols, .xtx = xtx, .seed = 1, .n_threads = threads};
        double t0 = now();
        sq_status est = sq_quant_encode(&ex, &e, &err);
        free(xtx);
        if (est) { fprintf(stderr, "squish-bench: %s\n", err.msg); return EXIT_RESOURCE; }
        double t_enc = now() - t0;
        sq_tview tv;
        sq_tview_from_encoded(&e, &tv);
        t0 = now();
        sq_decode_mt(&tv, dec, threads);
        double t_dec = now() - t0;
        uint64_t wbytes = 0;
        for (int i = 0; i < e.nparts; i++)
            wbytes += e.bytes[i];
        /* cold-cache GEMV: flush, then time one call; best of the repetitions;
         * on 1 thread, then on all (-T) threads; each against the streaming
         * read timed in the same repetitions */
        gemv_job job = {&tv, x, NULL, NULL, y, 1};
        double b1 = 0, bn = 0, qb1 = 0, qbn = 0;
        double t_g = time_gemv(&job, 1, wbytes, min_time, &b1);
        double gemv_gbs = (double)wbytes / t_g / 1e9, gemv_mt = threads > 1 ? (double)wbytes / time_gemv(&job, threads, wbytes, min_time, &bn) / 1e9 : 0;
        /* the integer-activation kernel, where the codec has one */
        double q8_gbs = 0, q8_mt = 0;
        sq_gemv_q8_fn q8 = sq_gemv_q8_for(cd, sq_isa_active());
        if (q8) {
            sq_act_q8 xa;
            if (sq_act_q8_init(&xa, x, cols, &err)) { fprintf(stderr, "squish-bench: %s\n", err.msg); return EXIT_RESOURCE; }
            gemv_job jq = {&tv, x, &xa, q8, y, 1};
            q8_gbs = (double)wbytes / time_gemv(&jq, 1, wbytes, min_time, &qb1) / 1e9;
            if (threads > 1) q8_mt = (double)wbytes / time_gemv(&jq, threads, wbytes, min_time, &qbn) / 1e9;
            sq_act_q8_free(&xa);
        }
        char name[64];
        sq_scheme_format(cd, p, name, sizeof name);
        char q8s[32] = "-", q8r[16] = "-", mts[32] = "-", mtr[16] = "-", q8ms[32] = "-", q8mr[16] = "-";
        if (q8) {
            snprintf(q8s, sizeof q8s, "%.2f", q8_gbs);
            snprintf(q8r, sizeof q8r, "%.0f%%", 100.0 * q8_gbs / qb1);
        }
        if (threads > 1) {
            snprintf(mts, sizeof mts, "%.2f", gemv_mt);
            snprintf(mtr, sizeof mtr, "%.0f%%", 100.0 * gemv_mt / bn);
        }
        if (q8 && threads > 1) {
            snprintf(q8ms, sizeof q8ms, "%.2f", q8_mt);
            snprintf(q8mr, sizeof q8mr, "%.0f%%", 100.0 * q8_mt / qbn);
        }
        /* which of the two the runtime's decode runs (sq_best_kernel) */
        const char *rt = sq_act_kind_name(sq_best_kernel(&tv, sq_isa_active()).act);
        cli_progress_clear();
        printf("%-24s %7.3f %10.1f %10.2f %11.2f %6.0f%% %11s %7s %11s %7s %11s %7s %4s %9.2f %9.2f\n", name, 8.0 * (double)wbytes / (double)n,
               (double)n * 2 / t_enc / 1e6, (double)n * 4 / t_dec / 1e9, gemv_gbs, 100.0 * gemv_gbs / b1, q8s, q8r, mts, mtr, q8ms,
               q8mr, rt, fmax(b1, qb1), threads > 1 ? fmax(bn, qbn) : 0.0);
        fflush(stdout);
        int trc = cd->id == SQ_CODEC_BF16 /* the same matrix TCA-TBE-coded, its GEMV against this one's */
                      ? bench_tbe_row(e.data[0], rows, cols, x, min_time, threads, flush_cache, bw, t_g)
                      : 0;
        sq_encoded_free(&e);
        if (trc) {
            free(w), free(dec), free(x), free(y);
            return trc;
        }
    }
    cli_progress_done();
    if (tbe_model) {
        int trc = bench_tbe_model(tbe_model, 19, min_time, threads, flush_cache);
        if (trc) {
            free(w), free(dec), free(x), free(y);
            return trc;
        }
    }
    free(w);
    free(dec);
    free(x);
    free(y);
    return bench_models(models, n_models, rt_ctx, threads, &be, no_exact);
}
