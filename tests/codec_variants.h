/* The parameter variants a codec's descriptor admits, generated from its
 * groupings (group_ok) and options (opts) for the tests that run every
 * registered codec (test_codecs, test_vulkan, the codecs fuzz target): a
 * codec added to libformat/src/codecs/registry.c is tested in each grouping,
 * sym/asym, dq and scale dtype it declares without being named in a list.
 *
 * The variants are the union of (every grouping x every flag set) at the
 * default scale dtype and (every flag set x every scale dtype) at the
 * default grouping, deduplicated; each is spelled as a scheme string and
 * read back with sq_scheme_parse, so the grammar is the one users type. */
#ifndef SQUISH_CODEC_VARIANTS_H
#define SQUISH_CODEC_VARIANTS_H

#include <stdio.h>
#include <string.h>

#include "squish/codec.h"

#define CODEC_MAX_VARIANTS 64

typedef struct codec_variant {
    const sq_codec *codec;
    uint32_t params[SQ_NPARAMS];
    char scheme[64]; /* canonical text (sq_scheme_format) */
    int is_default;  /* the codec's own defaults (the first variant) */
} codec_variant;

/* Adds the scheme text s if it parses and its params are new; returns -1 on a parse failure. */
static inline int variant_add(const char *s, codec_variant *out, int *n, int max) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    if (sq_scheme_parse(s, &c, p, NULL)) return -1;
    for (int i = 0; i < *n; i++)
        if (out[i].codec == c && !memcmp(out[i].params, p, sizeof p)) return 0;
    if (*n >= max) return 0;
    out[*n].codec = c;
    memcpy(out[*n].params, p, sizeof p);
    sq_scheme_format(c, p, out[*n].scheme, sizeof out[*n].scheme);
    out[*n].is_default = *n == 0;
    (*n)++;
    return 0;
}

/* Fills out[] with c's variants (the default first); returns the count, or
 * -1 when a spelling the descriptor allows does not parse (what failed is
 * left in bad, when given). */
static inline int codec_variants(const sq_codec *c, codec_variant *out, int max, char *bad, size_t nbad) {
    static const struct { uint32_t bit; const char *text; } groups[] = {
        {SQ_GROUPOK_ROW, ":pc"}, {SQ_GROUPOK_TENSOR, ":pt"}, {SQ_GROUPOK_32, ":g32"},
        {SQ_GROUPOK_64, ":g64"}, {SQ_GROUPOK_128, ":g128"}, {SQ_GROUPOK_256, ":g256"}};
    static const char *const dtypes[] = {":s16", ":sbf16", ":s32"};
    const char *gs[8] = {""}, *fs[4] = {""}, *ds[4] = {""};
    int ng = 0, nf = 1, nd = 1, n = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (c->group_ok & groups[i].bit) gs[ng++] = groups[i].text;
    if (!ng) gs[ng++] = ""; /* no groups (SQ_GROUPOK_NONE) */
    if (c->opts & SQ_OPT_ASYM) fs[nf++] = ":asym";
    if (c->opts & SQ_OPT_DQ) fs[nf++] = ":dq";
    if ((c->opts & SQ_OPT_ASYM) && (c->opts & SQ_OPT_DQ)) fs[nf++] = ":asym:dq";
    if (c->opts & SQ_OPT_SCALE_DTYPE)
        for (nd = 0; nd < 3; nd++) ds[nd] = dtypes[nd];
    char s[96];
    /* the defaults first */
    if (variant_add(c->name, out, &n, max)) {
        if (bad) snprintf(bad, nbad, "%s", c->name);
        return -1;
    }
    for (int g = 0; g < ng; g++)
        for (int f = 0; f < nf; f++) {
            snprintf(s, sizeof s, "%s%s%s", c->name, gs[g], fs[f]);
            if (variant_add(s, out, &n, max)) {
                if (bad) snprintf(bad, nbad, "%s", s);
                return -1;
            }
        }
    for (int f = 0; f < nf; f++)
        for (int d = 0; d < nd; d++) {
            snprintf(s, sizeof s, "%s%s%s", c->name, fs[f], ds[d]);
            if (variant_add(s, out, &n, max)) {
                if (bad) snprintf(bad, nbad, "%s", s);
                return -1;
            }
        }
    return n;
}

/* Every registered codec's variants in registry order; returns the count
 * (fewer than max only when all fit) or -1 as codec_variants does. */
static inline int all_codec_variants(codec_variant *out, int max, char *bad, size_t nbad) {
    int n = 0;
    for (const sq_codec *const *l = sq_codec_list(); *l; l++) {
        int k = codec_variants(*l, out + n, max - n, bad, nbad);
        if (k < 0) return -1;
        n += k;
    }
    return n;
}

#endif
