/* The quantization library's encoders, by codec id. */
#include "encoders.h"

#include <stddef.h>

#include "codecs/quip/quip_codec.h"
#include "quip.h"
#include "aqlm_decode.h" /* SQ_CODEC_AQLM */
#include "aqlm_encode.h"
#include "codecs/spqr/spqr_params.h"
#include "spqr.h"
#include "codecs/mix/mix_format.h"
#include "mix_encode.h"

typedef struct quant_encoder {
    uint16_t codec_id;
    const sq_codec_encoder *enc;
} quant_encoder;

/* One line per codec encoded here. */
static const quant_encoder table[] = {
    {SQ_CODEC_QUIP, &sq_quip_encoder},
    {SQ_CODEC_AQLM, &sq_aqlm_encoder},
    {SQ_CODEC_SPQR, &sq_spqr_encoder},
    {SQ_CODEC_MIX, &sq_mix_encoder},
};

const sq_codec_encoder *sq_quant_encoder(const sq_codec *c) {
    if (c->enc) return c->enc;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].enc && table[i].codec_id == c->id) return table[i].enc;
    return NULL;
}

sq_status sq_quant_encode(const sq_encode_ctx *x, sq_encoded *out, sq_err *err) {
    return sq_encode_using(sq_quant_encoder(x->codec), x, out, err);
}

int sq_quant_needs_xtx(const sq_codec *c) {
    const sq_codec_encoder *e = sq_quant_encoder(c);
    return e && e->needs_xtx;
}
