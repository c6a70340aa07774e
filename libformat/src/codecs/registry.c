/* The codec registry: every codec is one line here; everything else about
 * a codec comes from its descriptor (squish/codec.h). */
#include <string.h>

#include "codecs/codecs.h"

static const sq_codec *const registry[] = {
    &sq_codec_f32, &sq_codec_f16, &sq_codec_bf16,
    &sq_codec_int8, &sq_codec_int4, &sq_codec_int3, &sq_codec_int2,
    &sq_codec_nf4,
    &sq_codec_fp8_e4m3, &sq_codec_fp8_e5m2, &sq_codec_fp6_e3m2, &sq_codec_fp6_e2m3, &sq_codec_fp4_e2m1,
    &sq_codec_mxfp8_e4m3, &sq_codec_mxfp8_e5m2, &sq_codec_mxfp6_e3m2, &sq_codec_mxfp6_e2m3, &sq_codec_mxfp4,
    &sq_codec_quip,
    &sq_codec_aqlm,
    &sq_codec_spqr,
    &sq_codec_mix,
    NULL};

const sq_codec *const *sq_codec_list(void) { return registry; }

const sq_codec *sq_codec_by_id(uint32_t id) {
    for (int i = 0; registry[i]; i++)
        if (registry[i]->id == id) return registry[i];
    return NULL;
}

const sq_codec *sq_codec_by_name(const char *name) {
    for (int i = 0; registry[i]; i++)
        if (!strcmp(registry[i]->name, name)) return registry[i];
    return NULL;
}

const sq_codec *sq_codec_for_dtype(uint32_t dtype) {
    const sq_codec *f32 = NULL;
    for (int i = 0; registry[i]; i++)
        if (registry[i]->family == SQ_FAMILY_FLOAT) {
            if (registry[i]->value_dtype == dtype) return registry[i];
            if (registry[i]->value_dtype == SQ_DT_F32) f32 = registry[i];
        }
    return f32;
}

uint64_t sq_codec_technique_flags(uint32_t id) {
    const sq_codec *c = sq_codec_by_id(id);
    return c ? c->technique_flag : 0;
}

const char *sq_codec_family_name(sq_codec_family f) {
    switch (f) {
    case SQ_FAMILY_FLOAT: return "float";
    case SQ_FAMILY_INT: return "int";
    case SQ_FAMILY_LUT: return "lut";
    case SQ_FAMILY_MX: return "mx";
    case SQ_FAMILY_CODEBOOK: return "codebook";
    case SQ_FAMILY_LATTICE: return "lattice";
    case SQ_FAMILY_SPARSE_DENSE: return "sparse+dense";
    case SQ_FAMILY_MIXED: return "mixed";
    }
    return "?";
}

uint64_t sq_codec_group_len(const uint32_t *p, uint64_t cols) {
    uint32_t g = p[SQ_P_GROUP];
    return (g == SQ_GROUP_ROW || g == SQ_GROUP_TENSOR) ? cols : g;
}

const float *sq_codec_value_table(const sq_codec *c, int *bits) {
    const float *t = c->table ? c->table : c->minifloat ? sq_mf_table((sq_minifloat)(c->minifloat - 1)) : NULL;
    if (t && bits) *bits = (int)c->bits;
    return t;
}

int sq_int_bits(const sq_codec *c) { return c->family == SQ_FAMILY_INT ? (int)c->bits : 0; }
