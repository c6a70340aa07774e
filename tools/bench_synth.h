/* Synthetic tensors for squish-bench's Vulkan table: the codebook (aqlm) and
 * sparse + dense (spqr) codecs encode only with calibration statistics and
 * take minutes per large matrix (AQLM far longer), while a kernel benchmark
 * needs only parts of the right shape. These are random parts that pass the
 * codec's checks: aqlm random codes, codebooks and scales; spqr random codes
 * and statistic codes, plausible second-level statistics, 1% outliers and a
 * random perm link. The same (codec, params, shape) gives the same bytes. */
#ifndef SQUISH_BENCH_SYNTH_H
#define SQUISH_BENCH_SYNTH_H

#include <stdint.h>

#include "squish/codec.h"

/* Whether bench_synthetic makes tensors of codec c. */
int bench_synthetic_for(const sq_codec *c);
sq_status bench_synthetic(const sq_codec *c, const uint32_t *params, uint64_t rows, uint64_t cols, sq_encoded *out,
                          sq_err *err);

#endif
