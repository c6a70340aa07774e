/* AQLM (Egiazarian et al., ICML 2024): additive multi-codebook
 * quantization of a weight matrix against the layer's input statistics.
 * Each group of 8 consecutive inputs of a row is scale[row] times the sum
 * of M codewords, one from each of M codebooks of 2^B vectors; the codes,
 * codebooks and scales are chosen to make the output error
 * ||(W - Ŵ) X||² = tr(ΔW XᵀX ΔWᵀ) small. The stored layout and the decode
 * are in libformat/src/codecs/aqlm/aqlm_decode.h.
 *
 * Algorithm (one matrix, or several sharing the codebooks):
 *   1. scale[o] = ||W_o||; residual k-means (Lloyd, seeded, fixed sums) on
 *      the 8-vectors of W / scale, one codebook after the other.
 *   2. Repeat until the objective improves by less than rel_tol or
 *      max_iters: (a) codebooks: the least-squares optimum under XᵀX of
 *      all codewords jointly, codes and scales fixed, by preconditioned
 *      conjugate gradients (8x8 block-Jacobi); (b) scales: per row, the
 *      closed-form optimum; (c) codes: a pass over the groups in a seeded
 *      random order, each group's M codes chosen by the reference's beam
 *      search (beam 8 by default: for each codebook in turn, every kept
 *      hypothesis tries all 2^B codewords in its place, the best 8 distinct
 *      code tuples are kept), scored by the row's exact XᵀX-weighted error
 *      with the other groups fixed; a group's codes change only when the
 *      best tuple is strictly better. Beam 1 is the greedy coordinate pass
 *      (one codebook at a time); beam 8 lowered the error of the 34M
 *      model's layer 0 v_proj by 9% (0.0401 -> 0.0365, 128-window
 *      calibration) and its 60-window KLD by 8% (0.342 -> 0.313), at 1.7x
 *      the CPU time of the whole 34M encode. The beam costs only stack
 *      (16 hypotheses of M codes).
 *   3. A last (a) and (b) for the final codes.
 *   Codebooks and scales are rounded to f16 as soon as they change, and a
 *   step is kept only if the exact objective (float64) did not rise, so the
 *   objective never increases and what is optimized is what is stored.
 *
 * Deterministic: every row's work is a fixed sequence of float64
 * operations, reductions over rows run over fixed chunks summed in order,
 * so the result is the same bits for any n_threads.
 *
 * Memory, per call (n matrices of rows_i x cols sharing codebooks,
 * R = Σ rows_i, K = 2^B), besides the inputs and the results' parts:
 *   12·R·cols bytes for the whole call (float W·H, a decoded direction and
 *   its product with H), M·R·cols (codes and their occurrence lists),
 *   4·n·cols² (each H as float), 568·M·K (conjugate-gradient vectors and
 *   8x8 preconditioner blocks), and at the peak the larger of
 *   9·R·cols (initialization: the normalized groups and a permutation) and
 *   M·K·cols (code search: every codeword's norm under each group's H
 *   block), plus 264·cols per thread (tiles of 16 rows and their H
 *   products) and 8·R for the rows' W H Wᵀ.
 * For one 4096x4096 layer: about 430 MiB at 2x8, 560 MiB at 1x16; for a
 * 512x512 layer of the 34M model, 7 MiB at 2x8. */
#ifndef SQUISH_AQLM_H
#define SQUISH_AQLM_H

#include <stdint.h>

#include "aqlm_decode.h"
#include "squish/error.h"

typedef struct sq_aqlm_opts {
    uint32_t M, B;         /* codebooks and bits per code: 2x8 (default) or 1x16 */
    uint32_t max_iters;    /* alternations of (a)-(c); default 20 */
    double rel_tol;        /* stop when an alternation lowers the objective by less than this fraction; default 0.005 */
    uint32_t kmeans_iters; /* Lloyd iterations per codebook at initialization; default 20 */
    uint32_t cg_iters;     /* conjugate-gradient steps per codebook update; default 12 */
    uint32_t beam;         /* code search: hypotheses kept per group, 1..16; default 8 (1: greedy) */
    uint64_t seed;         /* k-means initialization and the group order of the code search */
    int n_threads;         /* default 1 */
} sq_aqlm_opts;

/* Fills in defaults for zero fields. */
void sq_aqlm_opts_default(sq_aqlm_opts *o);

#define SQ_AQLM_MAX_HIST 128

/* One quantized matrix: the arrays are the stored parts, byte for byte
 * (see aqlm_decode.h for layout and packing). */
typedef struct sq_aqlm_result {
    uint64_t rows, cols;
    uint32_t M, B;
    uint8_t *codes;     /* packed codes [sq_aqlm_codes_bytes] */
    uint64_t codes_bytes;
    uint8_t *codebooks; /* f16 LE [M][2^B][8]; a copy of the shared one when shared */
    uint64_t codebooks_bytes;
    uint8_t *scales; /* f16 LE [rows] */
    uint64_t scales_bytes;
    /* report */
    double rel_err;   /* tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) of this matrix's f16 decode (sq_aqlm_decode_rows), float64 */
    uint32_t iters;   /* alternations run */
    uint32_t n_hist;  /* objective (a relative error, summed over shared matrices) after the */
    double hist[SQ_AQLM_MAX_HIST]; /* initialization and after each step (a), (b), (c) */
} sq_aqlm_result;

/* Quantizes w (rows x cols, row-major) with H = XᵀX (cols x cols,
 * row-major float64, any positive scale). cols must be a multiple of 8.
 * SQ_EUSAGE for bad shapes or options, non-finite weights or H. */
sq_status sq_aqlm_quantize(const float *w, uint64_t rows, uint64_t cols, const double *H, const sq_aqlm_opts *o,
                           sq_aqlm_result *out, sq_err *err);

/* n matrices of the same cols sharing one set of codebooks (e.g. the
 * q_proj of every layer), each with its own XᵀX; out[i] gets matrix i's
 * codes and scales and a copy of the codebooks. The objective is the sum
 * of the matrices' relative errors tr(ΔW_i H_i ΔW_iᵀ) / tr(W_i H_i W_iᵀ),
 * so matrices whose statistics differ in scale count alike; each out[i]
 * reports its own rel_err and the shared objective's history. */
sq_status sq_aqlm_quantize_shared(uint32_t n, const float *const *w, const uint64_t *rows, uint64_t cols,
                                  const double *const *H, const sq_aqlm_opts *o, sq_aqlm_result *out, sq_err *err);

void sq_aqlm_result_free(sq_aqlm_result *r);

/* The view of a result's parts (for sq_aqlm_decode_rows / sq_aqlm_gemv). */
void sq_aqlm_result_view(const sq_aqlm_result *r, sq_aqlm_view *v);

/* Bits per weight of a rows x cols matrix: (codes + codebooks/n_share +
 * scales) bytes x 8 / (rows x cols), the bytes of the parts as stored;
 * n_share = the number of matrices (of this size) sharing the codebooks, 1
 * when not shared. */
double sq_aqlm_bpw(uint64_t rows, uint64_t cols, uint32_t M, uint32_t B, uint32_t n_share);

#endif
