/* Canonical Llama tensor names, the only place squish spells them.
 *
 * A .squizd file names its tensors as Hugging Face Llama checkpoints do
 * (spec/squizd.md §3.1): model.embed_tokens.weight, model.norm.weight,
 * lm_head.weight and, per layer N, model.layers.N.<component>.weight (and
 * .bias for linear layers). The source readers translate llama2.c and GGUF
 * names into these; the runtime, the calibration, the quantization methods
 * and the structural check find tensors by them. The header is public
 * because the names are part of the file format: a third-party reader of a
 * .squizd model (linking libsquish-decode alone) looks tensors up by them. */
#ifndef SQUISH_LLAMA_NAMES_H
#define SQUISH_LLAMA_NAMES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The tensors outside the blocks, and the prefix of every block tensor. */
#define SQ_LLAMA_EMBED_NAME "model.embed_tokens.weight"
#define SQ_LLAMA_FINAL_NORM_NAME "model.norm.weight"
#define SQ_LLAMA_LM_HEAD_NAME "lm_head.weight"
#define SQ_LLAMA_LAYERS_PREFIX "model.layers."
/* Room for any canonical name (a layer index up to 2^32 - 1 included). */
#define SQ_LLAMA_NAME_MAX 64

/* What a tensor is. The block roles are contiguous (ATTN_NORM..DOWN, in
 * the order of sq_llama_block_index) and the linear ones keep the runtime's
 * order (q, k, v, o, gate, up, down: SQ_LIN_* in runtime.h). */
typedef enum sq_llama_role {
    SQ_LLAMA_NONE = 0,   /* not a canonical Llama name */
    SQ_LLAMA_EMBED,      /* model.embed_tokens.weight */
    SQ_LLAMA_FINAL_NORM, /* model.norm.weight */
    SQ_LLAMA_LM_HEAD,    /* lm_head.weight */
    SQ_LLAMA_ATTN_NORM,  /* model.layers.N.input_layernorm.weight */
    SQ_LLAMA_FFN_NORM,   /* model.layers.N.post_attention_layernorm.weight */
    SQ_LLAMA_Q,          /* model.layers.N.self_attn.q_proj.weight */
    SQ_LLAMA_K,          /* ... k_proj */
    SQ_LLAMA_V,          /* ... v_proj */
    SQ_LLAMA_O,          /* ... o_proj */
    SQ_LLAMA_GATE,       /* model.layers.N.mlp.gate_proj.weight */
    SQ_LLAMA_UP,         /* ... up_proj */
    SQ_LLAMA_DOWN,       /* ... down_proj */
    SQ_LLAMA_ROLE_COUNT
} sq_llama_role;

#define SQ_LLAMA_BLOCK_COUNT 9  /* block tensors per layer: 2 norms + 7 linears */
#define SQ_LLAMA_LINEAR_COUNT 7

static inline int sq_llama_role_in_block(sq_llama_role r) { return r >= SQ_LLAMA_ATTN_NORM && r <= SQ_LLAMA_DOWN; }
static inline int sq_llama_role_is_linear(sq_llama_role r) { return r >= SQ_LLAMA_Q && r <= SQ_LLAMA_DOWN; }
/* 0..8 for a block role (attn norm, ffn norm, q, k, v, o, gate, up, down), else -1. */
static inline int sq_llama_block_index(sq_llama_role r) { return sq_llama_role_in_block(r) ? (int)(r - SQ_LLAMA_ATTN_NORM) : -1; }
/* 0..6 for a linear role (runtime's SQ_LIN_* order), else -1. */
static inline int sq_llama_linear_index(sq_llama_role r) { return sq_llama_role_is_linear(r) ? (int)(r - SQ_LLAMA_Q) : -1; }
static inline sq_llama_role sq_llama_block_role(int i) { return (sq_llama_role)(SQ_LLAMA_ATTN_NORM + i); }
static inline sq_llama_role sq_llama_linear_role(int i) { return (sq_llama_role)(SQ_LLAMA_Q + i); }

/* A block role's component, between "model.layers.N." and ".weight"
 * ("self_attn.q_proj", "input_layernorm"); NULL for other roles. */
const char *sq_llama_component(sq_llama_role r);

/* Writes the canonical name of role's weight (layer is ignored outside a
 * block) into out; returns snprintf's count, or -1 for a role without a
 * name. sq_llama_bias_name does the same for a linear layer's bias
 * (model.layers.N.self_attn.q_proj.bias) and returns -1 for other roles. */
int sq_llama_name(char *out, size_t n, sq_llama_role r, uint32_t layer);
int sq_llama_bias_name(char *out, size_t n, sq_llama_role r, uint32_t layer);

/* Parses a canonical name: returns its role (SQ_LLAMA_NONE for any other
 * name) and, for block roles, its layer in *layer; *is_bias (may be NULL)
 * tells a linear layer's .bias from its .weight. Exact match only:
 * "model.layers.0.self_attn.q_proj.weight" is SQ_LLAMA_Q, layer 0. */
sq_llama_role sq_llama_parse(const char *name, uint32_t *layer, int *is_bias);

/* The layer of any tensor under "model.layers.N" whatever follows (other
 * architectures' extra block tensors included): 1 and *layer = N, or 0.
 * N is read as sscanf's %u reads it. */
int sq_llama_layer_of(const char *name, uint32_t *layer);

/* Classes by substring, the way squish has always treated names it does
 * not know (extra norms of Qwen3 or Gemma, renamed embeddings): a token
 * embedding is any name containing "embed_tokens", a normalization weight
 * any name containing "norm". They decide what squish-quantize keeps at
 * source precision by default and the writing order (spec/squizd.md). */
int sq_llama_is_embedding(const char *name);
int sq_llama_is_norm(const char *name);

#ifdef __cplusplus
}
#endif
#endif
