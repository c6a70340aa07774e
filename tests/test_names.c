/* Canonical Llama tensor names (squish/llama_names.h): every role's name as
 * spelled here independently (spec/squizd.md §3.1 and Hugging Face's
 * LlamaForCausalLM), parsing back to the same role and layer, and the
 * near-misses that must not parse. */
#include "squish/llama_names.h"
#include "testutil.h"

static const struct { sq_llama_role role; uint32_t layer; const char *weight, *bias; } names[] = {
    {SQ_LLAMA_EMBED, 0, "model.embed_tokens.weight", NULL},
    {SQ_LLAMA_FINAL_NORM, 0, "model.norm.weight", NULL},
    {SQ_LLAMA_LM_HEAD, 0, "lm_head.weight", NULL},
    {SQ_LLAMA_ATTN_NORM, 0, "model.layers.0.input_layernorm.weight", NULL},
    {SQ_LLAMA_FFN_NORM, 7, "model.layers.7.post_attention_layernorm.weight", NULL},
    {SQ_LLAMA_Q, 1, "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.bias"},
    {SQ_LLAMA_K, 10, "model.layers.10.self_attn.k_proj.weight", "model.layers.10.self_attn.k_proj.bias"},
    {SQ_LLAMA_V, 2, "model.layers.2.self_attn.v_proj.weight", "model.layers.2.self_attn.v_proj.bias"},
    {SQ_LLAMA_O, 31, "model.layers.31.self_attn.o_proj.weight", "model.layers.31.self_attn.o_proj.bias"},
    {SQ_LLAMA_GATE, 4, "model.layers.4.mlp.gate_proj.weight", "model.layers.4.mlp.gate_proj.bias"},
    {SQ_LLAMA_UP, 5, "model.layers.5.mlp.up_proj.weight", "model.layers.5.mlp.up_proj.bias"},
    {SQ_LLAMA_DOWN, 4294967295u, "model.layers.4294967295.mlp.down_proj.weight",
     "model.layers.4294967295.mlp.down_proj.bias"},
};

START_TEST(every_role_round_trips) {
    int seen[SQ_LLAMA_ROLE_COUNT] = {0};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char got[SQ_LLAMA_NAME_MAX];
        ck_assert_int_eq(sq_llama_name(got, sizeof got, names[i].role, names[i].layer), (int)strlen(names[i].weight));
        ck_assert_str_eq(got, names[i].weight);
        uint32_t layer = 12345;
        int bias = 7;
        ck_assert_int_eq(sq_llama_parse(names[i].weight, &layer, &bias), names[i].role);
        ck_assert_int_eq(bias, 0);
        if (sq_llama_role_in_block(names[i].role)) ck_assert_uint_eq(layer, names[i].layer);
        else ck_assert_uint_eq(layer, 12345); /* untouched outside a block */
        if (names[i].bias) {
            ck_assert_int_eq(sq_llama_bias_name(got, sizeof got, names[i].role, names[i].layer), (int)strlen(names[i].bias));
            ck_assert_str_eq(got, names[i].bias);
            ck_assert_int_eq(sq_llama_parse(names[i].bias, &layer, &bias), names[i].role);
            ck_assert_int_eq(bias, 1);
            ck_assert_uint_eq(layer, names[i].layer);
        } else {
            ck_assert_int_eq(sq_llama_bias_name(got, sizeof got, names[i].role, names[i].layer), -1);
        }
        seen[names[i].role]++;
    }
    for (int r = 1; r < SQ_LLAMA_ROLE_COUNT; r++) ck_assert_msg(seen[r] == 1, "role %d not covered", r);
    char got[SQ_LLAMA_NAME_MAX];
    ck_assert_int_eq(sq_llama_name(got, sizeof got, SQ_LLAMA_NONE, 0), -1);
    ck_assert_int_eq(sq_llama_name(got, sizeof got, SQ_LLAMA_ROLE_COUNT, 0), -1);
    ck_assert_ptr_null(sq_llama_component(SQ_LLAMA_LM_HEAD));
    ck_assert_str_eq(sq_llama_component(SQ_LLAMA_GATE), "mlp.gate_proj");
}
END_TEST

START_TEST(block_and_linear_orders) {
    /* the methods index a block's tensors 0..8 (norms, then q k v o gate up down) */
    static const char *const block[SQ_LLAMA_BLOCK_COUNT] = {
        "input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
        "self_attn.o_proj", "mlp.gate_proj",   "mlp.up_proj",              "mlp.down_proj"};
    for (int i = 0; i < SQ_LLAMA_BLOCK_COUNT; i++) {
        sq_llama_role r = sq_llama_block_role(i);
        ck_assert_str_eq(sq_llama_component(r), block[i]);
        ck_assert_int_eq(sq_llama_block_index(r), i);
        ck_assert_int_eq(sq_llama_role_is_linear(r), i >= 2);
        if (i >= 2) ck_assert_int_eq(sq_llama_linear_role(sq_llama_linear_index(r)), r);
    }
    ck_assert_int_eq(sq_llama_block_index(SQ_LLAMA_EMBED), -1);
    ck_assert_int_eq(sq_llama_linear_index(SQ_LLAMA_FFN_NORM), -1);
    ck_assert_int_eq(sq_llama_linear_index(SQ_LLAMA_Q), 0);
    ck_assert_int_eq(sq_llama_linear_index(SQ_LLAMA_DOWN), SQ_LLAMA_LINEAR_COUNT - 1);
}
END_TEST

START_TEST(near_misses_do_not_parse) {
    static const char *const bad[] = {
        "",
        "model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.q_proj.weight.x",
        "model.layers.0.self_attn.q_proj.weightx",
        "model.layers.0.self_attn.q_projweight",
        "model.layers.0.input_layernorm.bias", /* norms have no bias */
        "model.layers.0.self_attn.q_norm.weight",
        "model.layers.0.lm_head.weight",
        "model.layers..mlp.up_proj.weight",
        "model.layers.x.mlp.up_proj.weight",
        "model.layers.3mlp.up_proj.weight",
        "layers.0.mlp.up_proj.weight",
        "blk.0.attn_q.weight",
        "lm_head.bias",
        "lm_head",
        "model.norm.weightx",
        "model.embed_tokens.bias",
        "embed_tokens.weight",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t layer = 99;
        int bias = 5;
        ck_assert_msg(sq_llama_parse(bad[i], &layer, &bias) == SQ_LLAMA_NONE, "'%s' parsed", bad[i]);
        ck_assert_int_eq(bias, 0);
    }
    ck_assert_int_eq(sq_llama_parse("model.layers.2.mlp.up_proj.weight", NULL, NULL), SQ_LLAMA_UP);
}
END_TEST

START_TEST(layers_and_classes) {
    uint32_t l = 0;
    ck_assert(sq_llama_layer_of("model.layers.17.block_sparse_moe.gate.weight", &l) && l == 17);
    ck_assert(sq_llama_layer_of("model.layers.3", &l) && l == 3);
    ck_assert(!sq_llama_layer_of("model.norm.weight", &l));
    ck_assert(!sq_llama_layer_of("model.layers.x.mlp.up_proj.weight", &l));
    ck_assert(!sq_llama_layer_of("lm_head.weight", &l));
    /* by substring: other architectures' norms and embeddings too */
    ck_assert(sq_llama_is_norm("model.layers.0.self_attn.q_norm.weight"));
    ck_assert(sq_llama_is_norm(SQ_LLAMA_FINAL_NORM_NAME));
    ck_assert(sq_llama_is_norm("model.layers.0.post_attention_layernorm.weight"));
    ck_assert(!sq_llama_is_norm("model.layers.0.mlp.down_proj.weight"));
    ck_assert(sq_llama_is_embedding(SQ_LLAMA_EMBED_NAME));
    ck_assert(!sq_llama_is_embedding(SQ_LLAMA_LM_HEAD_NAME));
    ck_assert_str_eq(SQ_LLAMA_LAYERS_PREFIX, "model.layers.");
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, every_role_round_trips);
    tcase_add_test(tc, block_and_linear_orders);
    tcase_add_test(tc, near_misses_do_not_parse);
    tcase_add_test(tc, layers_and_classes);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
