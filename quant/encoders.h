/* Encoders that live in the quantization library: those of codecs whose
 * descriptor leaves enc NULL because encoding needs calibration statistics
 * and dense algebra (SpQR, AQLM, QuIP#), so that libsquish-decode links
 * without them. One line per such codec in encoders.c. */
#ifndef SQUISH_QUANT_ENCODERS_H
#define SQUISH_QUANT_ENCODERS_H

#include "squish/codec.h"

/* c->enc when the descriptor has one, else the quantization library's
 * encoder for c, else NULL. */
const sq_codec_encoder *sq_quant_encoder(const sq_codec *c);
/* sq_encode_with, with the quantization library's encoders too. */
sq_status sq_quant_encode(const sq_encode_ctx *x, sq_encoded *out, sq_err *err);
/* Whether encoding c needs the layer's XᵀX (squish-quantize --calib). */
int sq_quant_needs_xtx(const sq_codec *c);

#endif
