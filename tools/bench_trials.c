/* squish-bench --trials (see bench_trials.h).
 *
 * Each file is timed in fresh processes so that each has its own peak RSS:
 * a forked child loads a .squizd file into squish's runtime, a GGUF file
 * runs in llama.cpp's llama-bench (-o json). The trials run in rounds; a
 * round runs every file once, in an order that rotates from round to round
 * (so drift on a shared machine spreads over all files), each run doing the
 * round's share of the trials: squish's child repeats prefill and decode in
 * one process, llama-bench gets the same count as its -r repetitions. One
 * unrecorded run per file first warms the page cache.
 *
 * Time to first token: the prompt of n_prompt tokens processed in one batch
 * from an empty cache, plus (squish) choosing the first token; llama-bench's
 * pp<n_prompt> sample. Decode: n_gen tokens one at a time with the KV cache
 * from an empty cache (squish with each codec's fastest kernels), like
 * llama-bench's tg<n_gen>. Both runtimes warm up in each process first
 * (llama-bench: a full prompt and one token; squish: a 32-token prompt and
 * one token). */
#include "bench_trials.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "runtime.h"
#include "squish/container.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_is_gguf(const char *path) {
    char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, magic, 4);
        close(fd);
        if (n == 4) return !memcmp(magic, "GGUF", 4);
    }
    size_t l = strlen(path);
    return l > 5 && !strcmp(path + l - 5, ".gguf");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_percentile(double *v, uint32_t n, double p) {
    if (!n) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    double h = (double)(n - 1) * p / 100.0;
    uint32_t lo = (uint32_t)floor(h);
    if (lo + 1 >= n) return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

/* ---------------- finding llama-bench ---------------- */

/* Whether /proc/cpuinfo's first flags line has every flag. */
static int cpu_has(const char *const *flags) {
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[8192];
    int found = 0, all = 0;
    while (f && !found && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            found = all = 1;
            line[strcspn(line, "\n")] = ' ';
            for (int i = 0; flags[i]; i++) {
                char pat[64];
                snprintf(pat, sizeof pat, " %s ", flags[i]);
                all &= strstr(line, pat) != NULL;
            }
        }
    if (f) fclose(f);
    return all;
}

static int is_exec(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* A llama-bench binary, or a folder holding one, or one with bin-avx512/
 * and bin-avx2/ (the peer bundle: the AVX-512 build needs the flags it was
 * compiled with, as its bench.sh checks). */
static char *resolve_llama_bench(const char *p, char *why, size_t n) {
    static const char *const avx512[] = {"avx512f", "avx512_vnni", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512_bf16", NULL};
    static const char *const avx2[] = {"avx2", "fma", "f16c", NULL};
    char buf[4200];
    struct stat st;
    if (stat(p, &st) != 0) return snprintf(why, n, "%s: %s", p, strerror(errno)), NULL;
    if (!S_ISDIR(st.st_mode)) return is_exec(p) ? strdup(p) : (snprintf(why, n, "%s is not executable", p), NULL);
    snprintf(buf, sizeof buf, "%s/llama-bench", p);
    if (is_exec(buf)) return strdup(buf);
    snprintf(buf, sizeof buf, "%s/bin-avx512/llama-bench", p);
    if (is_exec(buf) && cpu_has(avx512)) return strdup(buf);
    snprintf(buf, sizeof buf, "%s/bin-avx2/llama-bench", p);
    if (is_exec(buf) && cpu_has(avx2)) return strdup(buf);
    snprintf(why, n, "%s holds no llama-bench (nor bin-avx512/ or bin-avx2/ one this CPU runs)", p);
    return NULL;
}

static char *find_llama_bench(const char *given, char *why, size_t n) {
    if (given) return resolve_llama_bench(given, why, n);
    const char *env = getenv("SQUISH_LLAMA_BENCH");
    if (env && *env) return resolve_llama_bench(env, why, n);
    const char *path = getenv("PATH");
    char *copy = path ? strdup(path) : NULL, *save = NULL;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
        char buf[4200];
        snprintf(buf, sizeof buf, "%s/llama-bench", d);
        if (is_exec(buf)) {
            free(copy);
            return strdup(buf);
        }
    }
    free(copy);
    snprintf(why, n, "no llama-bench: give --llama-bench PATH (a binary, or llama.cpp's folder) or set SQUISH_LLAMA_BENCH");
    return NULL;
}

/* ---------------- one run of one file ---------------- */

typedef struct file_stats {
    const char *path;
    int gguf;
    uint64_t size;
    char label[64]; /* squish: the file's scheme; llama.cpp: its type */
    double *ttft, *dec, *rss_kib;
    uint32_t n, n_rss;
} file_stats;

static int32_t argmax(const float *v, uint32_t n) {
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return (int32_t)b;
}

/* In the child: load, warm up, then reps x (prompt, decode); each trial's
 * two figures go to fd as doubles. Returns the exit code. */
static int squish_child(const char *path, const bench_trials_opts *o, uint32_t reps, int fd, int warm_only) {
    sq_err err = {0};
    sq_file *f = sq_open(path, &err);
    sq_rt_model m;
    if (!f || sq_rt_load_file(f, &m, &err)) {
        fprintf(stderr, "squish-bench: %s\n", err.msg);
        return cli_exit_code(err.status ? err.status : SQ_EIO);
    }
    const uint32_t P = o->n_prompt, G = o->n_gen, V = m.cfg.vocab;
    if (m.cfg.max_seq && (P > m.cfg.max_seq || G > m.cfg.max_seq)) {
        fprintf(stderr, "squish-bench: %s: --n-prompt %u / --n-gen %u exceed the model's %u positions\n", path, P, G, m.cfg.max_seq);
        return EXIT_USAGE;
    }
    int32_t *ids = malloc(P * sizeof *ids);
    float *lg = malloc((size_t)P * V * sizeof(float));
    if (!ids || !lg) return EXIT_RESOURCE;
    for (uint32_t i = 0; i < P; i++) ids[i] = (int32_t)((i * 2654435761u + 17u) % V);
    m.fast_kernels = 1;
    sq_rt_cache kv;
    /* warm-up: the weights faulted in, the buffers allocated */
    if (sq_rt_forward(&m, ids, P < 32 ? P : 32, lg, o->threads, &err) || sq_rt_cache_init(&m, G, &kv, &err) ||
        sq_rt_step(&m, &kv, ids[0], lg, o->threads, &err)) {
        fprintf(stderr, "squish-bench: %s: %s\n", path, err.msg);
        return EXIT_INTERNAL;
    }
    sq_rt_cache_free(&kv);
    for (uint32_t r = 0; r < reps && !warm_only; r++) {
        double t0 = now();
        if (sq_rt_forward(&m, ids, P, lg, o->threads, &err)) break;
        int32_t tok = argmax(lg + (size_t)(P - 1) * V, V);
        double res[2] = {now() - t0, 0};
        if (sq_rt_cache_init(&m, G, &kv, &err)) break;
        t0 = now();
        for (uint32_t i = 0; i < G && !err.status; i++)
            if (!sq_rt_step(&m, &kv, tok, lg, o->threads, &err)) tok = argmax(lg, V);
        res[1] = (double)G / (now() - t0);
        sq_rt_cache_free(&kv);
        if (err.status) break;
        if (write(fd, res, sizeof res) != (ssize_t)sizeof res) return EXIT_IO;
    }
    if (err.status) {
        fprintf(stderr, "squish-bench: %s: %s\n", path, err.msg);
        return EXIT_INTERNAL;
    }
    free(ids);
    free(lg);
    sq_rt_free(&m);
    sq_close(f);
    return EXIT_OK;
}

static int add_sample(file_stats *s, double ttft, double dec) {
    double *a = realloc(s->ttft, (s->n + 1) * sizeof *a);
    if (a) s->ttft = a;
    double *b = realloc(s->dec, (s->n + 1) * sizeof *b);
    if (b) s->dec = b;
    if (!a || !b) return -1;
    s->ttft[s->n] = ttft;
    s->dec[s->n++] = dec;
    return 0;
}

static int add_rss(file_stats *s, long kib) {
    double *a = realloc(s->rss_kib, (s->n_rss + 1) * sizeof *a);
    if (!a) return -1;
    s->rss_kib = a;
    s->rss_kib[s->n_rss++] = (double)kib;
    return 0;
}

/* Reads all of fd into a malloc'd NUL-terminated buffer. */
static char *slurp(int fd, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (!b) return NULL;
        if (n + 4096 > cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); return NULL; }
            b = nb;
        }
        ssize_t k = read(fd, b + n, cap - n - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += (size_t)k;
    }
    b[n] = 0;
    *len = n;
    return b;
}

static int run_squish(file_stats *s, const bench_trials_opts *o, uint32_t reps, int record) {
    int pfd[2];
    if (pipe(pfd)) return EXIT_IO;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return EXIT_RESOURCE;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* no orphan timing runs when squish-bench is killed */
        close(pfd[0]);
        _exit(squish_child(s->path, o, reps, pfd[1], !record));
    }
    close(pfd[1]);
    size_t len;
    char *buf = slurp(pfd[0], &len);
    close(pfd[0]);
    int status;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_INTERNAL;
    if (!rc && record) {
        const double *d = (const double *)buf;
        uint32_t got = buf ? (uint32_t)(len / (2 * sizeof(double))) : 0;
        if (got != reps) rc = EXIT_INTERNAL;
        for (uint32_t i = 0; !rc && i < got; i++) rc = add_sample(s, d[2 * i], d[2 * i + 1]) ? EXIT_RESOURCE : 0;
        if (!rc && add_rss(s, ru.ru_maxrss)) rc = EXIT_RESOURCE;
    }
    free(buf);
    if (rc) fprintf(stderr, "squish-bench: %s: the timing run failed (exit %d)\n", s->path, rc);
    return rc;
}

/* llama-bench's JSON: one object per test; the pp test's samples_ns are
 * the times to first token, the tg test's samples_ts the decode rates. */
static int parse_llama(file_stats *s, const char *text, uint32_t reps, int record) {
    json_object *root = json_tokener_parse(text);
    double *tt = NULL, *dd = NULL;
    uint32_t nt = 0, nd = 0;
    int rc = root && json_object_is_type(root, json_type_array) ? 0 : EXIT_CORRUPT;
    for (size_t i = 0; !rc && i < json_object_array_length(root); i++) {
        json_object *e = json_object_array_get_idx(root, i), *np, *ng, *arr, *ty;
        if (!json_object_object_get_ex(e, "n_prompt", &np) || !json_object_object_get_ex(e, "n_gen", &ng)) continue;
        int pp = json_object_get_int(np) > 0 && json_object_get_int(ng) == 0, tg = json_object_get_int(ng) > 0 && json_object_get_int(np) == 0;
        if (!pp && !tg) continue;
        if (!json_object_object_get_ex(e, pp ? "samples_ns" : "samples_ts", &arr) || !json_object_is_type(arr, json_type_array)) {
            rc = EXIT_CORRUPT;
            break;
        }
        if (json_object_object_get_ex(e, "model_type", &ty) && !s->label[0]) {
            const char *t = json_object_get_string(ty), *sp = strstr(t, "B "); /* "llama ?B Q4_K - Medium" */
            size_t k = 0;
            for (const char *c = sp ? sp + 2 : t; *c && k + 1 < sizeof s->label; c++)
                if (*c != ' ') s->label[k++] = *c; /* "Q4_K-Medium": one word in the table */
            s->label[k] = 0;
        }
        size_t k = json_object_array_length(arr);
        double **dst = pp ? &tt : &dd;
        uint32_t *cnt = pp ? &nt : &nd;
        double *nb = realloc(*dst, (*cnt + k + 1) * sizeof *nb);
        if (!nb) { rc = EXIT_RESOURCE; break; }
        *dst = nb;
        for (size_t j = 0; j < k; j++) {
            double v = json_object_get_double(json_object_array_get_idx(arr, j));
            (*dst)[(*cnt)++] = pp ? v * 1e-9 : v;
        }
    }
    if (!rc && (nt != reps || nd != reps)) rc = EXIT_CORRUPT;
    for (uint32_t i = 0; !rc && record && i < reps; i++) rc = add_sample(s, tt[i], dd[i]) ? EXIT_RESOURCE : 0;
    free(tt);
    free(dd);
    json_object_put(root);
    return rc;
}

static int run_llama(file_stats *s, const bench_trials_opts *o, const char *bin, uint32_t reps, int record) {
    char p[16], n[16], t[16], r[16];
    snprintf(p, sizeof p, "%u", o->n_prompt);
    snprintf(n, sizeof n, "%u", o->n_gen);
    snprintf(t, sizeof t, "%d", o->threads);
    snprintf(r, sizeof r, "%u", reps);
    char *const argv[] = {(char *)bin, "-m", (char *)s->path, "-p", p, "-n", n, "-t", t, "-r", r, "-o", "json", NULL};
    int pfd[2];
    FILE *errf = tmpfile();
    if (!errf || pipe(pfd)) {
        if (errf) fclose(errf);
        return EXIT_IO;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return EXIT_RESOURCE;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(pfd[1], STDOUT_FILENO);
        dup2(fileno(errf), STDERR_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execv(bin, argv);
        fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    size_t len;
    char *out = slurp(pfd[0], &len);
    close(pfd[0]);
    int status;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
    int rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EXIT_INTERNAL;
    if (!rc && out) rc = parse_llama(s, out, reps, record);
    if (!rc && record && add_rss(s, ru.ru_maxrss)) rc = EXIT_RESOURCE;
    if (rc) {
        char tail[1024] = "";
        long end = (fseek(errf, 0, SEEK_END), ftell(errf));
        fseek(errf, end > (long)sizeof tail - 1 ? end - (long)sizeof tail + 1 : 0, SEEK_SET);
        size_t k = fread(tail, 1, sizeof tail - 1, errf);
        tail[k] = 0;
        fprintf(stderr, "squish-bench: %s -m %s failed%s:\n%s\n", bin, s->path,
                rc == EXIT_CORRUPT ? " (its JSON output lacks the pp and tg samples)" : "", tail);
    }
    fclose(errf);
    free(out);
    return rc;
}

/* ---------------- the report ---------------- */

typedef struct summary {
    double ttft[3], dec[3], rss_mib; /* P50, P95, P99; decode: the slow tail (rates reached by 95%, 99%) */
} summary;

static summary summarize(const file_stats *s) {
    static const double q[3] = {50, 95, 99};
    summary m;
    double *a = malloc((s->n + 1) * sizeof *a), *b = malloc((s->n + 1) * sizeof *b);
    for (int i = 0; i < 3 && a && b; i++) {
        memcpy(a, s->ttft, s->n * sizeof *a);
        memcpy(b, s->dec, s->n * sizeof *b);
        m.ttft[i] = bench_percentile(a, s->n, q[i]);
        m.dec[i] = bench_percentile(b, s->n, 100 - q[i]);
    }
    free(a);
    free(b);
    m.rss_mib = 0;
    for (uint32_t i = 0; i < s->n_rss; i++)
        if (s->rss_kib[i] / 1024.0 > m.rss_mib) m.rss_mib = s->rss_kib[i] / 1024.0;
    return m;
}

static json_object *darray(const double *v, uint32_t n, double scale) {
    json_object *a = json_object_new_array();
    for (uint32_t i = 0; i < n; i++) json_object_array_add(a, json_object_new_double(v[i] * scale));
    return a;
}

static json_object *pct_object(const double v[3]) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "p50", json_object_new_double(v[0]));
    json_object_object_add(o, "p95", json_object_new_double(v[1]));
    json_object_object_add(o, "p99", json_object_new_double(v[2]));
    return o;
}

static int write_json(const bench_trials_opts *o, const char *bin, file_stats *fs) {
    json_object *root = json_object_new_object(), *files = json_object_new_array();
    json_object_object_add(root, "schema", json_object_new_string("squish-bench-trials/1"));
    json_object_object_add(root, "version", json_object_new_string(SQUISH_VERSION));
    json_object_object_add(root, "trials", json_object_new_int64(o->trials));
    json_object_object_add(root, "rounds", json_object_new_int64(o->rounds));
    json_object_object_add(root, "n_prompt", json_object_new_int64(o->n_prompt));
    json_object_object_add(root, "n_gen", json_object_new_int64(o->n_gen));
    json_object_object_add(root, "threads", json_object_new_int(o->threads));
    json_object_object_add(root, "llama_bench", bin ? json_object_new_string(bin) : NULL);
    for (int i = 0; i < o->n_files; i++) {
        const file_stats *s = &fs[i];
        summary m = summarize(s);
        json_object *f = json_object_new_object();
        json_object_object_add(f, "file", json_object_new_string(s->path));
        json_object_object_add(f, "runtime", json_object_new_string(s->gguf ? "llama.cpp" : "squish"));
        json_object_object_add(f, "label", json_object_new_string(s->label));
        json_object_object_add(f, "size_bytes", json_object_new_int64((int64_t)s->size));
        json_object_object_add(f, "ttft_ms", darray(s->ttft, s->n, 1e3));
        json_object_object_add(f, "decode_tok_s", darray(s->dec, s->n, 1));
        json_object_object_add(f, "peak_rss_kib", darray(s->rss_kib, s->n_rss, 1));
        double tt[3] = {m.ttft[0] * 1e3, m.ttft[1] * 1e3, m.ttft[2] * 1e3};
        json_object_object_add(f, "ttft_ms_pct", pct_object(tt));
        json_object_object_add(f, "decode_tok_s_pct", pct_object(m.dec));
        json_object_object_add(f, "peak_rss_mib", json_object_new_double(m.rss_mib));
        json_object_array_add(files, f);
    }
    json_object_object_add(root, "files", files);
    const int fl = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE;
    int bad = !strcmp(o->json, "-") ? printf("%s\n", json_object_to_json_string_ext(root, fl)) < 0
                                     : json_object_to_file_ext(o->json, root, fl) != 0;
    json_object_put(root);
    if (bad) fprintf(stderr, "squish-bench: %s: cannot write the JSON report\n", o->json);
    return bad ? EXIT_IO : EXIT_OK;
}

int bench_trials(const bench_trials_opts *o) {
    file_stats *fs = calloc((size_t)o->n_files, sizeof *fs);
    char *bin = NULL, why[4400];
    int rc = fs ? EXIT_OK : EXIT_RESOURCE, any_gguf = 0;
    for (int i = 0; !rc && i < o->n_files; i++) {
        file_stats *s = &fs[i];
        s->path = o->files[i];
        s->gguf = bench_is_gguf(s->path);
        any_gguf |= s->gguf;
        struct stat st;
        if (s->gguf) {
            if (stat(s->path, &st) != 0) {
                fprintf(stderr, "squish-bench: %s: %s\n", s->path, strerror(errno));
                rc = EXIT_IO;
            }
            s->size = (uint64_t)st.st_size;
            continue;
        }
        sq_err err = {0};
        sq_file *f = sq_open(s->path, &err);
        if (!f) {
            rc = cli_fail(&err);
            break;
        }
        s->size = sq_file_header(f)->file_size;
        const char *meta = sq_file_metadata(f, &err);
        json_object *root = meta ? json_tokener_parse(meta) : NULL, *q, *sc;
        if (root && json_object_object_get_ex(root, "quantization", &q) && json_object_object_get_ex(q, "scheme", &sc))
            snprintf(s->label, sizeof s->label, "%s", json_object_get_string(sc));
        json_object_put(root);
        sq_close(f);
    }
    if (!rc && any_gguf && !(bin = find_llama_bench(o->llama_bench, why, sizeof why))) {
        fprintf(stderr, "squish-bench: GGUF files are timed with llama.cpp's llama-bench: %s\n", why);
        rc = EXIT_USAGE;
    }
    const uint64_t runs = (uint64_t)o->n_files * (o->rounds + 1);
    uint64_t done = 0;
    cli_progress_start("trials", runs, "runs");
    for (uint32_t round = 0; !rc && round <= o->rounds; round++) { /* round 0: the unrecorded warm-up */
        uint32_t reps = round ? o->trials / o->rounds + (round - 1 < o->trials % o->rounds) : 1;
        for (int j = 0; !rc && j < o->n_files; j++) {
            file_stats *s = &fs[(round + (uint32_t)j) % (uint32_t)o->n_files];
            rc = s->gguf ? run_llama(s, o, bin, reps, round > 0) : run_squish(s, o, reps, round > 0);
            cli_progress_update(++done);
        }
    }
    cli_progress_done();
    const int table = !o->json || strcmp(o->json, "-"); /* --json -: standard output carries only the JSON */
    if (!rc && table) {
        printf("# squish-bench --trials %u: %d files, prompt %u tokens, %u generated, %d threads; %u rounds, files interleaved\n"
               "# in a rotating order, each run a fresh process (peak RSS: the largest of its runs), after one unrecorded\n"
               "# warm-up run per file. TTFT: the prompt in one batch from an empty cache (squish: and the first token\n"
               "# chosen; llama.cpp: llama-bench pp%u). DECODE: %u tokens one at a time with the KV cache (squish: each\n"
               "# codec's fastest kernels; llama.cpp: llama-bench tg%u). Decode P95/P99: the rates 95%%/99%% of trials reached.\n",
               o->trials, o->n_files, o->n_prompt, o->n_gen, o->threads, o->rounds, o->n_prompt, o->n_gen, o->n_gen);
        if (bin) printf("# llama-bench: %s\n", bin);
        printf("%-40s %-10s %-16s %9s %9s %9s %9s %9s %9s %9s %9s\n", "FILE", "RUNTIME", "LABEL", "SIZE_MiB", "TTFT_P50",
               "TTFT_P95", "TTFT_P99", "DEC_P50", "DEC_P95", "DEC_P99", "RSS_MiB");
        printf("%-40s %-10s %-16s %9s %9s %9s %9s %9s %9s %9s %9s\n", "", "", "", "", "ms", "ms", "ms", "tok/s", "tok/s", "tok/s",
               "peak");
        for (int i = 0; i < o->n_files; i++) {
            summary m = summarize(&fs[i]);
            printf("%-40s %-10s %-16s %9.2f %9.2f %9.2f %9.2f %9.1f %9.1f %9.1f %9.1f\n", fs[i].path,
                   fs[i].gguf ? "llama.cpp" : "squish", fs[i].label[0] ? fs[i].label : "-", (double)fs[i].size / 1048576.0,
                   m.ttft[0] * 1e3, m.ttft[1] * 1e3, m.ttft[2] * 1e3, m.dec[0], m.dec[1], m.dec[2], m.rss_mib);
        }
        fflush(stdout);
    }
    if (!rc && o->json) rc = write_json(o, bin, fs);
    for (int i = 0; fs && i < o->n_files; i++) {
        free(fs[i].ttft);
        free(fs[i].dec);
        free(fs[i].rss_kib);
    }
    free(fs);
    free(bin);
    return rc;
}
