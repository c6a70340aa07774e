/* Codec choice per tensor (see scheme_rules.h). */
#include "scheme_rules.h"

#include <stdio.h>
#include <string.h>

#include "squish/llama_names.h"

sq_status sq_scheme_parse_or_keep(const char *s, const sq_codec **c, uint32_t params[SQ_NPARAMS], sq_err *err) {
    if (!strcmp(s, "keep")) {
        *c = NULL;
        memset(params, 0, sizeof(uint32_t) * SQ_NPARAMS);
        return SQ_OK;
    }
    return sq_scheme_parse(s, c, params, err);
}

const sq_codec *sq_scheme_rules_choose(const sq_scheme_rules *s, const sq_model_tensor *t, uint32_t params[SQ_NPARAMS]) {
    for (int i = 0; i < s->n_rules; i++)
        if (!regexec(&s->rules[i].re, t->name, 0, NULL, 0)) {
            memcpy(params, s->rules[i].params, sizeof(uint32_t) * SQ_NPARAMS); /* "keep" parsed to zero params */
            return s->rules[i].codec ? s->rules[i].codec : sq_codec_for_dtype(t->dtype);
        }
    memset(params, 0, sizeof(uint32_t) * SQ_NPARAMS);
    if (sq_llama_parse(t->name, NULL, NULL) == SQ_LLAMA_LM_HEAD) {
        if (!s->out_codec) return sq_codec_for_dtype(t->dtype);
        memcpy(params, s->out_params, sizeof(uint32_t) * SQ_NPARAMS);
        return s->out_codec;
    }
    if (t->ndim < 2 || sq_llama_is_embedding(t->name) || sq_llama_is_norm(t->name)) return sq_codec_for_dtype(t->dtype);
    if (!s->codec) return sq_codec_for_dtype(t->dtype); /* no --scheme (--target-bpw allocates the linears) */
    memcpy(params, s->params, sizeof(uint32_t) * SQ_NPARAMS);
    return s->codec;
}

void sq_scheme_rule_use(const sq_scheme_rules *s, int i, const sq_model *m, uint32_t *matched, uint32_t *chosen) {
    *matched = *chosen = 0;
    for (uint32_t k = 0; k < m->n_tensors; k++) {
        const char *name = m->tensors[k].name;
        if (regexec(&s->rules[i].re, name, 0, NULL, 0)) continue;
        ++*matched;
        int earlier = 0;
        for (int j = 0; j < i && !earlier; j++) earlier = !regexec(&s->rules[j].re, name, 0, NULL, 0);
        *chosen += !earlier;
    }
}

void sq_scheme_rule_text(const sq_scheme_rule *r, char *out, size_t n) {
    const char *eq = strrchr(r->text, '=');
    int len = eq ? (int)(eq - r->text) : (int)strlen(r->text);
    char s[64];
    if (r->codec) sq_scheme_format(r->codec, r->params, s, sizeof s);
    snprintf(out, n, "%.*s=%s", len, r->text, r->codec ? s : "keep");
}
