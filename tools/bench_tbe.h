/* squish-bench: TCA-TBE, the lossless bf16 part compression, timed next to
 * what it replaces in the same run (the bf16 GEMV, zstd). */
#ifndef SQUISH_BENCH_TBE_H
#define SQUISH_BENCH_TBE_H

#include <stdint.h>

/* Evicts the caches (squish-bench's flush buffer), so a GEMV reads DRAM. */
typedef void (*bench_flush_fn)(void);

/* The codec table's row after bf16: the same bf16 matrix v [rows x cols]
 * TCA-TBE-coded, in the table's columns (encode MB/s of bf16 input, decode
 * GB/s of f32 output through the container's read path, GEMV GB/s of coded
 * bytes read, from cold caches), then a line with its GEMV time against
 * the bf16 GEMV time bf16_gemv_s measured in this run. 0, or an exit code. */
int bench_tbe_row(const uint16_t *v, uint64_t rows, uint64_t cols, const float *x, double min_time, int threads,
                  bench_flush_fn flush, double bw, double bf16_gemv_s);

/* --tca-tbe MODEL: every bf16 tensor of MODEL by class (q_proj, ... ,
 * norms): size coded against bf16 and against zstd at zstd_level (one frame
 * per tensor, as the container's --zstd stores it), decode GB/s of both
 * (bf16 output, one thread), and the coded GEMV against the bf16 GEMV
 * (one thread, cold caches), every ratio against the baseline measured in
 * this run. 0, or an exit code. */
int bench_tbe_model(const char *model, int zstd_level, double min_time, int threads, bench_flush_fn flush);

#endif
