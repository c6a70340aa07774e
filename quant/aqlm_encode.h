/* The aqlm codec's encoder (codec id 80, libformat/src/codecs/aqlm/):
 * sq_aqlm_quantize on one whole tensor with the layer's XᵀX. */
#ifndef SQUISH_QUANT_AQLM_ENCODE_H
#define SQUISH_QUANT_AQLM_ENCODE_H

#include "squish/codec.h"

extern const sq_codec_encoder sq_aqlm_encoder;

#endif
