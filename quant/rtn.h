/* Round-to-nearest quantization of one tensor (the baseline method): the
 * codec's own encoder, after checking the input is finite. */
#ifndef SQUISH_RTN_H
#define SQUISH_RTN_H

#include "squish/codec.h"

/* Fails with SQ_ECORRUPT naming the first NaN/Inf element; name is how
 * messages refer to the tensor (e.g. "model/: tensor X"). */
sq_status sq_check_finite(const char *name, const float *w, uint64_t n, sq_err *err);
sq_status sq_rtn_quantize(const char *name, const sq_codec *c, const uint32_t params[SQ_NPARAMS], const float *w,
                          uint64_t rows, uint64_t cols, int n_threads, sq_encoded *out, sq_err *err);

#endif
