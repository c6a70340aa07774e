/* squish-bench --trials: a statistical benchmark of whole models, .squizd
 * files on squish's runtime next to GGUF files on llama.cpp's llama-bench,
 * interleaved in one run: P50/P95/P99 of the time to first token and of
 * the decode rate, peak resident memory and file size. */
#ifndef SQUISH_BENCH_TRIALS_H
#define SQUISH_BENCH_TRIALS_H

#include <stdint.h>

typedef struct bench_trials_opts {
    const char *const *files; /* .squizd or .gguf */
    int n_files;
    uint32_t trials;          /* samples per file */
    uint32_t rounds;          /* the trials run in this many interleaved rounds (1..trials) */
    uint32_t n_prompt, n_gen; /* tokens: the prompt (TTFT) and the decode run */
    int threads;
    const char *llama_bench;  /* a llama-bench binary, or a folder with bin-avx512/ and bin-avx2/; NULL: look */
    const char *json;         /* write every sample and the summary there ('-' = stdout), or NULL */
} bench_trials_opts;

/* 1 when path is a GGUF file (by its magic, else its name). */
int bench_is_gguf(const char *path);
/* Runs the benchmark and prints the table; returns the exit code. */
int bench_trials(const bench_trials_opts *o);
/* The percentile p (0..100) of n values, linear between the closest ranks
 * (numpy's default); v is sorted in place. */
double bench_percentile(double *v, uint32_t n, double p);

#endif
