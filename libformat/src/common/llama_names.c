/* Canonical Llama tensor names (see squish/llama_names.h). */
#include "squish/llama_names.h"

#include <stdio.h>
#include <string.h>

static const char *const top_name[SQ_LLAMA_ROLE_COUNT] = {
    [SQ_LLAMA_EMBED] = SQ_LLAMA_EMBED_NAME,
    [SQ_LLAMA_FINAL_NORM] = SQ_LLAMA_FINAL_NORM_NAME,
    [SQ_LLAMA_LM_HEAD] = SQ_LLAMA_LM_HEAD_NAME,
};

/* Block tensors: "model.layers.N." component ".weight" (or ".bias"). */
static const char *const component[SQ_LLAMA_ROLE_COUNT] = {
    [SQ_LLAMA_ATTN_NORM] = "input_layernorm",
    [SQ_LLAMA_FFN_NORM] = "post_attention_layernorm",
    [SQ_LLAMA_Q] = "self_attn.q_proj",
    [SQ_LLAMA_K] = "self_attn.k_proj",
    [SQ_LLAMA_V] = "self_attn.v_proj",
    [SQ_LLAMA_O] = "self_attn.o_proj",
    [SQ_LLAMA_GATE] = "mlp.gate_proj",
    [SQ_LLAMA_UP] = "mlp.up_proj",
    [SQ_LLAMA_DOWN] = "mlp.down_proj",
};

const char *sq_llama_component(sq_llama_role r) { return sq_llama_role_in_block(r) ? component[r] : NULL; }

int sq_llama_name(char *out, size_t n, sq_llama_role r, uint32_t layer) {
    if (sq_llama_role_in_block(r)) return snprintf(out, n, SQ_LLAMA_LAYERS_PREFIX "%u.%s.weight", layer, component[r]);
    if ((unsigned)r < SQ_LLAMA_ROLE_COUNT && top_name[r]) return snprintf(out, n, "%s", top_name[r]);
    return -1;
}

int sq_llama_bias_name(char *out, size_t n, sq_llama_role r, uint32_t layer) {
    if (!sq_llama_role_is_linear(r)) return -1;
    return snprintf(out, n, SQ_LLAMA_LAYERS_PREFIX "%u.%s.bias", layer, component[r]);
}

/* rest is "<component>.weight" or "<component>.bias" for component c. */
static int matches(const char *rest, const char *c, int *is_bias) {
    size_t k = strlen(c);
    if (strncmp(rest, c, k) || rest[k] != '.') return 0;
    if (!strcmp(rest + k + 1, "weight")) {
        *is_bias = 0;
        return 1;
    }
    if (!strcmp(rest + k + 1, "bias")) {
        *is_bias = 1;
        return 1;
    }
    return 0;
}

sq_llama_role sq_llama_parse(const char *name, uint32_t *layer, int *is_bias) {
    int bias = 0, *b = is_bias ? is_bias : &bias;
    unsigned l;
    int used = 0;
    if (sscanf(name, SQ_LLAMA_LAYERS_PREFIX "%u.%n", &l, &used) == 1 && used > 0) {
        for (int r = SQ_LLAMA_ATTN_NORM; r <= SQ_LLAMA_DOWN; r++)
            if (matches(name + used, component[r], b) && (!*b || sq_llama_role_is_linear((sq_llama_role)r))) {
                if (layer) *layer = l;
                return (sq_llama_role)r;
            }
    } else {
        for (int r = SQ_LLAMA_EMBED; r <= SQ_LLAMA_LM_HEAD; r++)
            if (!strcmp(name, top_name[r])) {
                *b = 0;
                return (sq_llama_role)r;
            }
    }
    *b = 0;
    return SQ_LLAMA_NONE;
}

int sq_llama_layer_of(const char *name, uint32_t *layer) {
    unsigned l;
    if (sscanf(name, SQ_LLAMA_LAYERS_PREFIX "%u", &l) != 1) return 0;
    *layer = l;
    return 1;
}

int sq_llama_is_embedding(const char *name) { return strstr(name, "embed_tokens") != NULL; }
int sq_llama_is_norm(const char *name) { return strstr(name, "norm") != NULL; }
