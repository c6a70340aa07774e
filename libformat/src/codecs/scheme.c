/* Scheme strings (CODEC[:gN|:pc|:pt][:sym|:asym][:dq][:s16|:sbf16|:s32])
 * and the params checks shared by encoding and reading files: both read
 * only the codec's descriptor (its groupings and options). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"

static uint32_t group_bit(uint32_t g) {
    switch (g) {
    case SQ_GROUP_ROW: return SQ_GROUPOK_ROW;
    case SQ_GROUP_TENSOR: return SQ_GROUPOK_TENSOR;
    case 32: return SQ_GROUPOK_32;
    case 64: return SQ_GROUPOK_64;
    case 128: return SQ_GROUPOK_128;
    case 256: return SQ_GROUPOK_256;
    default: return 0;
    }
}

static int has(const sq_codec *c, uint32_t opt) { return (c->opts & opt) != 0; }

/* A codec with one possible grouping (or none) does not spell it. */
static int group_is_spelled(const sq_codec *c) {
    uint32_t g = c->group_ok & ~(uint32_t)SQ_GROUPOK_NONE;
    return g && (g & (g - 1));
}

sq_status sq_scheme_parse(const char *s, const sq_codec **codec, uint32_t params[SQ_NPARAMS], sq_err *err) {
    char buf[128];
    if (!s || strlen(s) >= sizeof buf) return sq_err_set(err, SQ_EUSAGE, "scheme: empty or too long");
    strcpy(buf, s);
    char *save = NULL;
    char *tok = strtok_r(buf, ":", &save);
    const sq_codec *c = tok ? sq_codec_by_name(tok) : NULL;
    if (!c) return sq_err_set(err, SQ_EUSAGE, "scheme '%s': unknown codec '%s' (see squish-quantize --list-schemes)", s,
                              tok ? tok : "");
    memset(params, 0, sizeof(uint32_t) * SQ_NPARAMS);
    params[SQ_P_GROUP] = c->default_group;
    params[SQ_P_SCALE_DTYPE] = has(c, SQ_OPT_SCALE_DTYPE) ? (c->default_group == SQ_GROUP_TENSOR ? SQ_DT_F32 : SQ_DT_F16) : 0;
    if (c->defaults) c->defaults(c, params);
    int saw_group = 0, saw_sym = 0, saw_scale = 0;
    while ((tok = strtok_r(NULL, ":", &save))) {
        char why[160] = "";
        int own = c->scheme_opt ? c->scheme_opt(c, tok, params, why, sizeof why) : 0;
        if (own < 0) return sq_err_set(err, SQ_EUSAGE, "scheme '%s': option '%s': %s", s, tok, why);
        if (own > 0) continue;
        if (tok[0] == 'g' && isdigit((unsigned char)tok[1])) {
            char *end;
            unsigned long g = strtoul(tok + 1, &end, 10);
            if (*end || !group_bit((uint32_t)g) || g == 0)
                return sq_err_set(err, SQ_EUSAGE, "scheme '%s': group '%s' must be g32, g64, g128 or g256", s, tok);
            params[SQ_P_GROUP] = (uint32_t)g;
            saw_group++;
        } else if (!strcmp(tok, "pc")) {
            params[SQ_P_GROUP] = SQ_GROUP_ROW;
            saw_group++;
        } else if (!strcmp(tok, "pt")) {
            params[SQ_P_GROUP] = SQ_GROUP_TENSOR;
            saw_group++;
        } else if (!strcmp(tok, "sym") || !strcmp(tok, "asym")) {
            if (!has(c, SQ_OPT_ASYM)) return sq_err_set(err, SQ_EUSAGE, "scheme '%s': %s applies to int codecs only", s, tok);
            if (tok[0] == 'a') params[SQ_P_FLAGS] |= SQ_PF_ASYM;
            saw_sym++;
        } else if (!strcmp(tok, "dq")) {
            if (!has(c, SQ_OPT_DQ)) return sq_err_set(err, SQ_EUSAGE, "scheme '%s': dq applies to nf4 only", s);
            params[SQ_P_FLAGS] |= SQ_PF_DQ;
        } else if (!strcmp(tok, "s16") || !strcmp(tok, "sbf16") || !strcmp(tok, "s32")) {
            if (!has(c, SQ_OPT_SCALE_DTYPE))
                return sq_err_set(err, SQ_EUSAGE, "scheme '%s': %s does not apply to %s", s, tok, c->name);
            params[SQ_P_SCALE_DTYPE] = !strcmp(tok, "s16") ? SQ_DT_F16 : !strcmp(tok, "sbf16") ? SQ_DT_BF16 : SQ_DT_F32;
            saw_scale++;
        } else {
            return sq_err_set(err, SQ_EUSAGE, "scheme '%s': unknown option '%s'", s, tok);
        }
    }
    if (saw_group > 1 || saw_sym > 1 || saw_scale > 1)
        return sq_err_set(err, SQ_EUSAGE, "scheme '%s': an option is given twice", s);
    if (saw_group && !(c->group_ok & group_bit(params[SQ_P_GROUP])))
        return sq_err_set(err, SQ_EUSAGE, "scheme '%s': codec %s does not take that grouping", s, c->name);
    if (!saw_scale && params[SQ_P_GROUP] == SQ_GROUP_TENSOR && has(c, SQ_OPT_SCALE_DTYPE))
        params[SQ_P_SCALE_DTYPE] = SQ_DT_F32;
    *codec = c;
    return SQ_OK;
}

void sq_scheme_format(const sq_codec *c, const uint32_t p[SQ_NPARAMS], char *out, size_t n) {
    size_t k = (size_t)snprintf(out, n, "%s", c->name);
    if (group_is_spelled(c) && k < n) {
        if (p[SQ_P_GROUP] == SQ_GROUP_ROW) k += (size_t)snprintf(out + k, n - k, ":pc");
        else if (p[SQ_P_GROUP] == SQ_GROUP_TENSOR) k += (size_t)snprintf(out + k, n - k, ":pt");
        else k += (size_t)snprintf(out + k, n - k, ":g%u", p[SQ_P_GROUP]);
    }
    if (k < n && has(c, SQ_OPT_ASYM)) k += (size_t)snprintf(out + k, n - k, (p[SQ_P_FLAGS] & SQ_PF_ASYM) ? ":asym" : ":sym");
    if (k < n && (p[SQ_P_FLAGS] & SQ_PF_DQ)) k += (size_t)snprintf(out + k, n - k, ":dq");
    if (k < n && has(c, SQ_OPT_SCALE_DTYPE) && p[SQ_P_SCALE_DTYPE] != SQ_DT_F16)
        k += (size_t)snprintf(out + k, n - k, p[SQ_P_SCALE_DTYPE] == SQ_DT_BF16 ? ":sbf16" : ":s32");
    if (k < n && c->scheme_format) {
        c->scheme_format(c, p, out + k, n - k);
        k = strlen(out);
    }
    /* transforms are made by methods (GPTQ, AWQ), not chosen in a scheme; shown after '+' */
    const sq_xform_desc *xf = sq_xform_list();
    for (int i = 0; i < SQ_XFORM_KINDS && k < n; i++)
        if (p[SQ_P_XFORM] & xf[i].flag) k += (size_t)snprintf(out + k, n - k, "+%s", xf[i].part);
}

sq_status sq_codec_check_params(const sq_codec *c, const uint32_t *p, sq_err *err, const char *who) {
    if (!(c->group_ok & SQ_GROUPOK_NONE) && !(c->group_ok & group_bit(p[SQ_P_GROUP])))
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: group size %u is not allowed", who, c->name, p[SQ_P_GROUP]);
    if (has(c, SQ_OPT_SCALE_DTYPE) && p[SQ_P_SCALE_DTYPE] != SQ_DT_F16 && p[SQ_P_SCALE_DTYPE] != SQ_DT_BF16 &&
        p[SQ_P_SCALE_DTYPE] != SQ_DT_F32)
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: scale dtype %u is not f16/bf16/f32", who, c->name,
                          p[SQ_P_SCALE_DTYPE]);
    uint32_t allowed = (has(c, SQ_OPT_ASYM) ? SQ_PF_ASYM : 0) | (has(c, SQ_OPT_DQ) ? SQ_PF_DQ : 0);
    if (p[SQ_P_FLAGS] & ~allowed)
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: flags 0x%x not allowed", who, c->name, p[SQ_P_FLAGS]);
    if (!has(c, SQ_OPT_SCALE_DTYPE) && p[SQ_P_SCALE_DTYPE])
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: params[2] must be 0", who, c->name);
    uint32_t known = 0;
    for (int i = 0; i < SQ_XFORM_KINDS; i++) known |= sq_xform_list()[i].flag;
    if (p[SQ_P_XFORM] & ~known)
        return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: transform flags 0x%x are not known", who, c->name,
                          p[SQ_P_XFORM]);
    if (c->check_params) {
        char why[160] = "";
        if (c->check_params(c, p, why, sizeof why))
            return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: %s", who, c->name, why);
        return SQ_OK;
    }
    for (int i = 4; i < SQ_NPARAMS; i++)
        if (p[i]) return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s: params[%d] must be 0", who, c->name, i);
    return SQ_OK;
}
