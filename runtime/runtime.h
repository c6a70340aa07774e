/* Reference runtime: the Llama-family forward pass (RMSNorm, rotary
 * embeddings in the Hugging Face convention, grouped-query attention, SwiGLU
 * MLP, tied or separate output layer, optional linear biases as in Qwen2) over weights in any codec, decoded a
 * block of rows at a time (never a full-model f32 copy). Used to measure
 * perplexity and KL-divergence of quantized files. */
#ifndef SQUISH_RUNTIME_H
#define SQUISH_RUNTIME_H

#include <stdint.h>

#include "squish/codec.h"
#include "squish/container.h"
#include "squish/model.h"
#include "vk.h"

typedef struct sq_rt_config {
    uint32_t n_layers, hidden, n_heads, n_kv_heads, head_dim, inter, vocab;
    uint32_t max_seq; /* longest context the model was configured for */
    float rope_theta, eps;
} sq_rt_config;

/* Linear layers of a block, in this order (index into sq_rt_layer.bias). */
enum { SQ_LIN_Q, SQ_LIN_K, SQ_LIN_V, SQ_LIN_O, SQ_LIN_GATE, SQ_LIN_UP, SQ_LIN_DOWN, SQ_LIN_COUNT };

typedef struct sq_rt_layer {
    float *attn_norm, *ffn_norm; /* decoded once (small) */
    sq_tview q, k, v, o, gate, up, down;
    /* optional biases (Qwen2's q/k/v; Llama's attention_bias/mlp_bias), NULL when absent */
    float *bias[SQ_LIN_COUNT];
    sq_vk_tensor *gpu[SQ_LIN_COUNT]; /* uploaded copies (Vulkan backend), NULL on the CPU */
} sq_rt_layer;

/* EXACT: f32 activations everywhere, the Hugging Face summation order in
 * attention; what verification and calibration use (same bits on every ISA
 * and thread count). FAST: single-token products through each codec's
 * fastest kernel (int8-block activations where the codec has them and they
 * pay, sq_best_kernel), attention with partial sums (AVX-512: 16 keys per
 * vector); batched products through the codec's batched integer kernel
 * (sq_gemm_q8_fn, AVX2 or AVX-512) where it has one, else the decode-once
 * f32 GEMM. FAST_Q8_GEMM: FAST, and the remaining batched products through
 * the single-token integer kernels once per row (slower than the f32 GEMM,
 * kept so that it can be measured and tested). */
enum { SQ_RT_PATH_EXACT = 0, SQ_RT_PATH_FAST = 1, SQ_RT_PATH_FAST_Q8_GEMM = 2 };

typedef struct sq_rt_model {
    sq_rt_config cfg;
    sq_tview embed, lm_head; /* lm_head = embed when tied */
    float *final_norm;
    sq_rt_layer *layers;
    /* storage owned by the model */
    void **owned;
    uint32_t n_owned, cap_owned;
    sq_encoded *encoded; /* reference models: tensors held in f32 */
    uint32_t n_encoded;
    /* Vulkan backend: the linear layers and the output layer run there (the
     * embedding lookup, norms, rotary embeddings and attention stay on the CPU) */
    sq_vk *vk;
    sq_vk_tensor *gpu_lm_head;
    /* Which CPU path the products and attention run on (SQ_RT_PATH_*):
     * sq_rt_load_file sets SQ_RT_PATH_FAST, sq_rt_load_model (references,
     * calibration) SQ_RT_PATH_EXACT; callers may change it at any time. */
    int fast_kernels;
    /* sq_rt_load_model_mapped: bf16 weights are read in place, and their
     * exact single-token products run on the portable kernel, whose order
     * is the f32 one's (the same bits as sq_rt_load_model's f32 copy) */
    int mapped;
} sq_rt_model;

/* From a .squizd file (configuration from its metadata "config"). f must
 * outlive the model. */
sq_status sq_rt_load_file(sq_file *f, sq_rt_model *m, sq_err *err);
/* From a source model (weights converted to f32 in memory: the reference). */
sq_status sq_rt_load_model(const sq_model *src, sq_rt_model *m, int n_threads, sq_err *err);
/* The same results on the exact path without the f32 copy: bf16 and f32
 * tensors of a mapped source are viewed where they lie (bf16 widens to f32
 * exactly), so a 7B model costs its 13.5 GB of reclaimable page cache, not
 * 27 GB of heap. Other tensors are converted as above. src must outlive m;
 * the views are not f32 (--alloc-probe swaps f32 storage: it uses the copy). */
sq_status sq_rt_load_model_mapped(const sq_model *src, sq_rt_model *m, int n_threads, sq_err *err);
void sq_rt_free(sq_rt_model *m);
/* Uploads the linear layers and the output layer to vk (which must outlive
 * the model); forward passes and steps then run their products there. */
sq_status sq_rt_use_vulkan(sq_rt_model *m, sq_vk *vk, sq_err *err);
/* Linear layer i (SQ_LIN_*) of a block, and its uploaded copy. */
const sq_tview *sq_rt_linear_view(const sq_rt_layer *L, int i);
/* Y[T][rows] = X[T][cols] * W^T on the model's backend. */
sq_status sq_rt_linear(const sq_rt_model *m, const sq_tview *w, const sq_vk_tensor *gpu, const float *x, uint32_t T,
                       float *y, int n_threads, sq_err *err);
/* y[i] = W x for the n linear layers idx[i] of block L that share the input
 * vector x (T = 1): the same results as n sq_rt_linear calls, on Vulkan in
 * one submission. */
sq_status sq_rt_linear_many(const sq_rt_model *m, const sq_rt_layer *L, const int *idx, int n, const float *x,
                            float *const *y, int n_threads, sq_err *err);

/* Y[i] = X * W_i^T for the n linear layers idx[i] of block L that read the
 * same X[T][cols]: the same results as n sq_rt_linear calls; on the fast path
 * the matrices with a batched q8 kernel share one quantization of X and one
 * parallel pass. */
sq_status sq_rt_linear_batch(const sq_rt_model *m, const sq_rt_layer *L, const int *idx, int n, const float *x, uint32_t T,
                             float *const *y, int n_threads, sq_err *err);

/* Logits [T][vocab] for tokens[0..T) run from an empty cache (batched prefill). */
sq_status sq_rt_forward(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *logits, int n_threads,
                        sq_err *err);

/* The same pass with the logits of the last position alone ([vocab]): what
 * a prompt needs before decoding (and what llama-bench's pp test times). */
sq_status sq_rt_forward_last(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *logits, int n_threads,
                             sq_err *err);

/* The inputs of the linear layers, as calibration sees them: q/k/v share
 * ATTN_IN, o_proj reads ATTN_OUT, gate/up share MLP_IN, down_proj reads
 * MLP_ACT. */
typedef enum sq_site { SQ_SITE_ATTN_IN = 0, SQ_SITE_ATTN_OUT = 1, SQ_SITE_MLP_IN = 2, SQ_SITE_MLP_ACT = 3, SQ_SITE_COUNT } sq_site;
/* Called with the T x n activation matrix (row-major) entering each site.
 * When logits are computed, the output layer's input (the final norm's
 * output) comes last as layer n_layers, site SQ_SITE_ATTN_IN. */
typedef void (*sq_rt_tap_fn)(void *ctx, uint32_t layer, sq_site site, const float *x, uint32_t T, uint32_t n);
/* sq_rt_forward with a tap; logits may be NULL (the output layer is skipped). */
sq_status sq_rt_forward_tap(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *logits, int n_threads,
                            sq_rt_tap_fn tap, void *tap_ctx, sq_err *err);
/* The taps of layers 0..layer_end-1 alone: the pass stops there (no logits),
 * so calibrating the first layers of a 7B model (--layers, --shard) does not
 * pay for the rest. The taps see what sq_rt_forward_tap's see. */
sq_status sq_rt_forward_tap_layers(const sq_rt_model *m, const int32_t *tokens, uint32_t T, uint32_t layer_end, int n_threads,
                                   sq_rt_tap_fn tap, void *tap_ctx, sq_err *err);

/* One block at a time (what sequential quantization needs: the hidden
 * states between blocks, the blocks' weights changing in between). The
 * batched prefill (sq_rt_forward) is sq_rt_embed and then sq_rt_block for
 * every layer, so the two give the same bits. */
typedef struct sq_rt_scratch {
    uint32_t T; /* positions (the window) */
    float *xn, *q, *k, *v, *att, *tmp, *g, *u, *cs, *sn;
} sq_rt_scratch;
sq_status sq_rt_scratch_init(const sq_rt_model *m, uint32_t T, sq_rt_scratch *s, sq_err *err);
void sq_rt_scratch_free(sq_rt_scratch *s);
/* x[T][hidden] = the embeddings of tokens (ids checked against the vocabulary). */
sq_status sq_rt_embed(const sq_rt_model *m, const int32_t *tokens, uint32_t T, float *x, sq_err *err);
/* Runs block l over x[s->T][hidden] in place (residual stream in, out),
 * tapping each site. stop_site < SQ_SITE_COUNT returns right after that
 * site's tap: x then holds a partial result (attention residual added from
 * SQ_SITE_MLP_IN on) that only a copy should take. */
sq_status sq_rt_block(const sq_rt_model *m, uint32_t l, float *x, sq_rt_scratch *s, int stop_site, int n_threads,
                      sq_rt_tap_fn tap, void *tap_ctx, sq_err *err);

/* Incremental decoding: K/V of past positions kept per layer. */
typedef struct sq_rt_cache {
    uint32_t max_seq, pos;
    float *k, *v; /* [n_layers][max_seq][n_kv_heads * head_dim] */
    /* on Vulkan: the whole step on the device, its K/V there (vk_decode.h);
     * NULL: the step runs here, its products on the model's backend */
    struct sq_vk_decode *gpu;
} sq_rt_cache;
/* On a model that runs on Vulkan the cache also gets the device decode
 * state (c->gpu) when every layer can run there (vk_decode.h). */
sq_status sq_rt_cache_init(const sq_rt_model *m, uint32_t max_seq, sq_rt_cache *c, sq_err *err);
void sq_rt_cache_free(sq_rt_cache *c);
/* Runs one token at position c->pos with the codecs' GEMV kernels, appends
 * its K/V and writes logits [vocab]. With c->gpu (a Vulkan model, see
 * sq_rt_cache_init) all of it runs on the device. */
sq_status sq_rt_step(const sq_rt_model *m, sq_rt_cache *c, int32_t token, float *logits, int n_threads, sq_err *err);

/* Y[T][N] = X[T][K] · W^T for a weight view W [N][K]; SQ_ENOMEM when a
 * worker's buffer cannot be had. */
sq_status sq_rt_matmul(const sq_tview *w, const float *x, uint32_t T, float *y, int n_threads);

/* Evaluation over windows of ctx tokens (non-overlapping, the short tail
 * dropped), each from an empty cache. */
typedef struct sq_eval_opts {
    uint32_t ctx;
    uint32_t max_windows;  /* 0 = all */
    int second_half;       /* score like llama.cpp's perplexity: only the second half of each window */
    int n_threads;
    /* Reference log-probabilities cache: read when it exists and matches
     * (same ids, ctx, scoring, vocab and reference identity), else computed
     * from ref and written (atomically). NULL = no cache. */
    const char *ref_cache;
    uint8_t ref_id[32]; /* identity of the reference model (e.g. SHA-256 of its files) */
    /* Called after each window with (progress_ctx, windows done, windows in
     * all), from the calling thread; NULL = no progress reports. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
} sq_eval_opts;

typedef struct sq_eval_result {
    uint64_t windows, scored;
    double nll_sum, ppl;
    /* against a reference model (when given) */
    double ref_nll_sum, ref_ppl, kld_mean, kld_p99, kld_max, top1;
    double prefill_tps; /* tokens per second of the evaluated model's forward passes */
    int ref_cache_used; /* 1: reference read from the cache, 2: computed and written */
} sq_eval_result;

/* ref may be NULL when o->ref_cache names a valid cache file. */
sq_status sq_rt_eval(const sq_rt_model *m, const sq_rt_model *ref, const int32_t *ids, uint64_t n_ids,
                     const sq_eval_opts *o, sq_eval_result *r, sq_err *err);

/* 1 if o->ref_cache exists and was made for these ids, options, vocab and reference. */
int sq_rt_ref_cache_matches(const int32_t *ids, uint64_t n_ids, uint32_t vocab, const sq_eval_opts *o);

/* Reads whitespace-separated token ids; every id must be < vocab. */
sq_status sq_read_ids(const char *path, uint32_t vocab, int32_t **ids, uint64_t *n, sq_err *err);

#endif
