/* llama2.c checkpoints: 7 int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len; vocab_size < 0 means a separate
 * classifier), then float32 arrays in a fixed order. Rotary frequency tables
 * sit between the final norm and the classifier and are skipped. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bytes.h"
#include "squish/llama_names.h"
#include "squish/model.h"

static sq_status add(sq_model *m, int fi, const char *name, const char *src, uint64_t rows, uint64_t cols, uint64_t *off,
                     uint32_t rope_heads, sq_err *err) {
    const sq_model_file *f = &m->files[fi];
    uint64_t bytes = rows * cols * 4;
    if (*off + bytes > f->size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: truncated: %s needs bytes [%llu, %llu) but the file has %llu", f->path, src,
                          (unsigned long long)*off, (unsigned long long)(*off + bytes), (unsigned long long)f->size);
    uint64_t dims[2] = {rows, cols};
    sq_status s = sq_model_add_tensor(m, name, src, SQ_DT_F32, cols == 1 ? 1 : 2, cols == 1 ? &dims[0] : dims,
                                      f->map + *off, bytes, fi, err);
    if (s) return s;
    m->tensors[m->n_tensors - 1].rope_heads = rope_heads;
    *off += bytes;
    return SQ_OK;
}

sq_status sq_model_open_llama2c(sq_model *m, const char *path, sq_err *err) {
    int fi = sq_model_map_file(m, path, err);
    if (fi < 0) return err ? err->status : SQ_EIO;
    sq_status s = sq_model_parse_llama2c(m, fi, err);
    if (s) return s;
    /* tokenizer beside the checkpoint: tok<vocab>.bin or tokenizer.bin */
    char *dcopy = strdup(path);
    if (dcopy) {
        const char *dir = dirname(dcopy);
        char cand[2][64];
        snprintf(cand[0], sizeof cand[0], "tok%u.bin", m->info.vocab_size);
        snprintf(cand[1], sizeof cand[1], "tokenizer.bin");
        for (int i = 0; i < 2 && !m->tokenizer_path; i++) {
            char *tp = malloc(strlen(dir) + 80);
            if (!tp) break;
            sprintf(tp, "%s/%s", dir, cand[i]);
            if (access(tp, F_OK) == 0) m->tokenizer_path = tp;
            else free(tp);
        }
        free(dcopy);
    }
    return SQ_OK;
}

sq_status sq_model_parse_llama2c(sq_model *m, int fi, sq_err *err) {
    const sq_model_file *f = &m->files[fi];
    const char *path = f->path;
    if (f->size < 28)
        return sq_err_set(err, SQ_ECORRUPT, "%s: not a llama2.c checkpoint: %llu bytes, the header needs 28", path,
                          (unsigned long long)f->size);
    int32_t h[7];
    for (int i = 0; i < 7; i++) h[i] = (int32_t)get32(f->map + 4 * i);
    int shared = h[5] > 0;
    int64_t vocab = h[5] < 0 ? -(int64_t)h[5] : h[5];
    const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++)
        if ((i == 5 ? vocab : h[i]) <= 0 || (i == 5 ? vocab : h[i]) > (1 << 24))
            return sq_err_set(err, SQ_ECORRUPT, "%s: header field %s (byte %d) = %d is out of range; not a llama2.c checkpoint?",
                              path, names[i], 4 * i, h[i]);
    uint64_t dim = (uint64_t)h[0], hidden = (uint64_t)h[1], L = (uint64_t)h[2], nh = (uint64_t)h[3],
             nkv = (uint64_t)h[4], seq = (uint64_t)h[6];
    if (dim % nh || nh % nkv || (dim / nh) % 2)
        return sq_err_set(err, SQ_ECORRUPT, "%s: dim %llu, n_heads %llu and n_kv_heads %llu are inconsistent", path,
                          (unsigned long long)dim, (unsigned long long)nh, (unsigned long long)nkv);
    uint64_t hd = dim / nh, kvd = nkv * hd;
    sq_model_info *in = &m->info;
    in->arch = SQ_ARCH_LLAMA;
    in->hidden_size = (uint32_t)dim;
    in->intermediate_size = (uint32_t)hidden;
    in->n_layers = (uint32_t)L;
    in->n_heads = (uint32_t)nh;
    in->n_kv_heads = (uint32_t)nkv;
    in->vocab_size = (uint32_t)vocab;
    m->head_dim = (uint32_t)hd;
    m->max_seq = (uint32_t)seq;
    m->rope_theta = 10000.0f;
    m->norm_eps = 1e-5f;
    m->tied_embeddings = shared;

    uint64_t off = 28;
    char name[SQ_LLAMA_NAME_MAX], src[64];
    sq_status s = add(m, fi, SQ_LLAMA_EMBED_NAME, "token_embedding_table", (uint64_t)vocab, dim, &off, 0, err);
    /* per-layer arrays are stored all layers of one kind at a time (llama.c's
     * array names and order, a fact of the format) */
    struct { sq_llama_role role; const char *src; uint64_t rows, cols; int rope; } kinds[] = {
        {SQ_LLAMA_ATTN_NORM, "rms_att_weight", dim, 1, 0}, {SQ_LLAMA_Q, "wq", dim, dim, 1},
        {SQ_LLAMA_K, "wk", kvd, dim, 2},                   {SQ_LLAMA_V, "wv", kvd, dim, 0},
        {SQ_LLAMA_O, "wo", dim, dim, 0},                   {SQ_LLAMA_FFN_NORM, "rms_ffn_weight", dim, 1, 0},
        {SQ_LLAMA_GATE, "w1", hidden, dim, 0},             {SQ_LLAMA_DOWN, "w2", dim, hidden, 0},
        {SQ_LLAMA_UP, "w3", hidden, dim, 0},
    };
    for (size_t k = 0; !s && k < sizeof kinds / sizeof kinds[0]; k++)
        for (uint64_t l = 0; !s && l < L; l++) {
            sq_llama_name(name, sizeof name, kinds[k].role, (uint32_t)l);
            snprintf(src, sizeof src, "%s[%llu]", kinds[k].src, (unsigned long long)l);
            uint32_t rh = kinds[k].rope == 1 ? (uint32_t)nh : kinds[k].rope == 2 ? (uint32_t)nkv : 0;
            s = add(m, fi, name, src, kinds[k].rows, kinds[k].cols, &off, rh, err);
        }
    if (!s) s = add(m, fi, SQ_LLAMA_FINAL_NORM_NAME, "rms_final_weight", dim, 1, &off, 0, err);
    if (s) return s;
    uint64_t freq = seq * hd; /* freq_cis_real + freq_cis_imag: 2 * seq * hd/2 floats */
    if (off + freq * 4 > f->size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: truncated in the rotary tables at byte %llu", path, (unsigned long long)off);
    off += freq * 4;
    if (!shared && (s = add(m, fi, SQ_LLAMA_LM_HEAD_NAME, "wcls", (uint64_t)vocab, dim, &off, 0, err))) return s;
    if (off != f->size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %llu unexpected bytes after the last array (at byte %llu)", path,
                          (unsigned long long)(f->size - off), (unsigned long long)off);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %llu, "
             "\"intermediate_size\": %llu, \"num_hidden_layers\": %llu, \"num_attention_heads\": %llu, "
             "\"num_key_value_heads\": %llu, \"vocab_size\": %lld, \"max_position_embeddings\": %llu, "
             "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": %s, \"head_dim\": %llu}",
             (unsigned long long)dim, (unsigned long long)hidden, (unsigned long long)L, (unsigned long long)nh,
             (unsigned long long)nkv, (long long)vocab, (unsigned long long)seq, shared ? "true" : "false",
             (unsigned long long)hd);
    m->config_json = strdup(cfg);
    return m->config_json ? SQ_OK : sq_err_set(err, SQ_ENOMEM, "out of memory");
}
