/* Which codec each tensor of a model gets: the first --rule whose regular
 * expression matches the tensor's name, else the defaults (the output
 * layer's scheme for lm_head; source precision for embeddings, norms and
 * 1-D tensors; the model-wide scheme for every other weight). */
#ifndef SQUISH_SCHEME_RULES_H
#define SQUISH_SCHEME_RULES_H

#include <regex.h>

#include "squish/codec.h"
#include "squish/model.h"

/* One REGEX=SCHEME rule (POSIX extended regex; SCHEME "keep" = source precision). */
typedef struct sq_scheme_rule {
    const char *text; /* "REGEX=SCHEME" as given (messages; the canonical form is sq_scheme_rule_text) */
    regex_t re;
    const sq_codec *codec; /* NULL = keep source precision */
    uint32_t params[SQ_NPARAMS];
} sq_scheme_rule;

typedef struct sq_scheme_rules {
    const sq_codec *codec; /* linear weights; NULL = source precision (--target-bpw chooses instead) */
    uint32_t params[SQ_NPARAMS];
    const sq_codec *out_codec; /* lm_head; NULL = keep source precision */
    uint32_t out_params[SQ_NPARAMS];
    const sq_scheme_rule *rules; /* first match wins */
    int n_rules;
} sq_scheme_rules;

/* A scheme or "keep" (*c = NULL, params zero). */
sq_status sq_scheme_parse_or_keep(const char *s, const sq_codec **c, uint32_t params[SQ_NPARAMS], sq_err *err);

/* The codec (never NULL) and params for tensor t. */
const sq_codec *sq_scheme_rules_choose(const sq_scheme_rules *s, const sq_model_tensor *t, uint32_t params[SQ_NPARAMS]);

/* Rule i's use on model m: how many tensor names it matches and how many of
 * those it decides (no earlier rule matches them). A rule that decides no
 * tensor is almost always a mistake. */
void sq_scheme_rule_use(const sq_scheme_rules *s, int i, const sq_model *m, uint32_t *matched, uint32_t *chosen);

/* REGEX=SCHEME with the scheme in canonical form ("int8" is "int8:pc:sym"). */
void sq_scheme_rule_text(const sq_scheme_rule *r, char *out, size_t n);

#endif
