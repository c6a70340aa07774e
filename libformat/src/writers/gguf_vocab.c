/* Tokenizer files as GGUF vocabularies (gguf_vocab.h). */
#include "gguf_vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/bundle.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* The vocabulary being built: n_vocab tokens (owned strings). */
typedef struct vocab {
    uint32_t n;
    char **tok;
    size_t *len;
    int32_t *type;
    float *score;
} vocab;

static void vocab_free(vocab *v) {
    for (uint32_t i = 0; v->tok && i < v->n; i++) free(v->tok[i]);
    free(v->tok);
    free(v->len);
    free(v->type);
    free(v->score);
}

static int vocab_init(vocab *v, uint32_t n) {
    memset(v, 0, sizeof *v);
    v->n = n;
    v->tok = calloc(n ? n : 1, sizeof *v->tok);
    v->len = calloc(n ? n : 1, sizeof *v->len);
    v->type = calloc(n ? n : 1, sizeof *v->type);
    v->score = calloc(n ? n : 1, sizeof *v->score);
    return v->tok && v->len && v->type && v->score ? 0 : -1;
}

static int vocab_set(vocab *v, uint32_t id, const char *s, size_t n, int32_t type) {
    char *c = malloc(n + 1);
    if (!c) return -1;
    memcpy(c, s, n);
    c[n] = 0;
    free(v->tok[id]);
    v->tok[id] = c;
    v->len[id] = n;
    v->type[id] = type;
    return 0;
}

/* Ids nobody names are padding ("[PADi]", unused), as convert_hf_to_gguf.py writes them. */
static int vocab_fill_gaps(vocab *v) {
    for (uint32_t i = 0; i < v->n; i++)
        if (!v->tok[i]) {
            char pad[32];
            int n = snprintf(pad, sizeof pad, "[PAD%u]", i);
            if (vocab_set(v, i, pad, (size_t)n, TT_UNUSED)) return -1;
        }
    return 0;
}

static int32_t vocab_find(const vocab *v, const char *s) {
    size_t n = strlen(s);
    for (uint32_t i = 0; i < v->n; i++)
        if (v->tok[i] && v->len[i] == n && !memcmp(v->tok[i], s, n)) return (int32_t)i;
    return -1;
}

/* ---- special ids and flags ---- */

static json_object *get(json_object *o, const char *k) {
    json_object *v;
    return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* config[id_key], else tokenizer_config[tok_key] (a string or {"content": ...}) looked up, else fallback. */
static int32_t special_id(const vocab *v, json_object *config, json_object *tcfg, const char *id_key, const char *tok_key,
                          int32_t fallback) {
    json_object *x = get(config, id_key);
    if (x && json_object_is_type(x, json_type_int)) {
        int64_t id = json_object_get_int64(x);
        return id >= 0 && id < (int64_t)v->n ? (int32_t)id : fallback;
    }
    x = get(tcfg, tok_key);
    if (x && json_object_is_type(x, json_type_object)) x = get(x, "content");
    if (x && json_object_is_type(x, json_type_string)) {
        int32_t id = vocab_find(v, json_object_get_string(x));
        if (id >= 0) return id;
    }
    return fallback;
}

static int flag(json_object *tcfg, const char *key, int fallback) {
    json_object *x = get(tcfg, key);
    return x && json_object_is_type(x, json_type_boolean) ? json_object_get_boolean(x) : fallback;
}

static sq_status add_specials(sq_gguf_writer *w, const vocab *v, const sq_gguf_vocab_src *src, json_object *tcfg,
                              int32_t bos0, int32_t eos0, int32_t unk0, int32_t pad0, int add_bos0, sq_err *err) {
    const struct {
        const char *gguf, *id_key, *tok_key;
        int32_t fallback;
    } ids[] = {{"tokenizer.ggml.bos_token_id", "bos_token_id", "bos_token", bos0},
               {"tokenizer.ggml.eos_token_id", "eos_token_id", "eos_token", eos0},
               {"tokenizer.ggml.unknown_token_id", "unk_token_id", "unk_token", unk0},
               {"tokenizer.ggml.padding_token_id", "pad_token_id", "pad_token", pad0}};
    sq_status st = SQ_OK;
    for (int i = 0; !st && i < 4; i++) {
        int32_t id = special_id(v, src->config, tcfg, ids[i].id_key, ids[i].tok_key, ids[i].fallback);
        if (id >= 0) st = sq_gguf_kv_u32(w, ids[i].gguf, (uint32_t)id, err);
    }
    if (!st) st = sq_gguf_kv_bool(w, "tokenizer.ggml.add_bos_token", flag(tcfg, "add_bos_token", add_bos0), err);
    if (!st) st = sq_gguf_kv_bool(w, "tokenizer.ggml.add_eos_token", flag(tcfg, "add_eos_token", 0), err);
    return st;
}

static sq_status add_tokens(sq_gguf_writer *w, const vocab *v, int scores, sq_err *err) {
    sq_status st = sq_gguf_kv_strs(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, v->len, v->n, err);
    if (!st && scores) st = sq_gguf_kv_f32s(w, "tokenizer.ggml.scores", v->score, v->n, err);
    if (!st) st = sq_gguf_kv_i32s(w, "tokenizer.ggml.token_type", v->type, v->n, err);
    return st;
}

/* ---- tokenizer.json (byte-level BPE, GPT-2 pre-tokenizer) ---- */

/* The pre-tokenizer must be the plain ByteLevel one (GPT-2's regex, no prefix space). */
static const char *bpe_unsupported(json_object *root, json_object *model) {
    json_object *t = get(model, "type");
    if (t && strcmp(json_object_get_string(t), "BPE")) return "its model is not BPE";
    json_object *bf = get(model, "byte_fallback");
    if (bf && json_object_get_boolean(bf)) return "it uses byte_fallback (a SentencePiece-style BPE)";
    json_object *n = get(root, "normalizer");
    if (n && !json_object_is_type(n, json_type_null)) return "it has a normalizer";
    json_object *pre = get(root, "pre_tokenizer");
    json_object *pt = get(pre, "type");
    if (!pt || strcmp(json_object_get_string(pt), "ByteLevel")) return "its pre-tokenizer is not GPT-2's ByteLevel";
    json_object *re = get(pre, "use_regex"), *ap = get(pre, "add_prefix_space");
    if (re && !json_object_get_boolean(re)) return "its ByteLevel pre-tokenizer does not use the GPT-2 regex";
    if (ap && json_object_get_boolean(ap)) return "its ByteLevel pre-tokenizer adds a prefix space";
    return NULL;
}

static sq_status vocab_gpt2(sq_gguf_writer *w, const sq_gguf_vocab_src *src, json_object *tcfg, sq_err *err) {
    if (src->size > (size_t)1 << 30) return sq_err_set(err, SQ_ENOMEM, "%s: larger than 1 GiB", src->name);
    json_tokener *tk = json_tokener_new_ex(64);
    json_object *root = tk ? json_tokener_parse_ex(tk, (const char *)src->data, (int)src->size) : NULL;
    int parsed = tk && json_tokener_get_error(tk) == json_tokener_success;
    if (tk) json_tokener_free(tk);
    if (!root || !parsed) {
        json_object_put(root);
        return sq_err_set(err, SQ_ECORRUPT, "%s: not a JSON tokenizer", src->name);
    }
    json_object *model = get(root, "model"), *vmap = get(model, "vocab"), *merges = get(model, "merges");
    const char *why = bpe_unsupported(root, model);
    vocab v;
    sq_status st = SQ_OK;
    char **mg = NULL;
    size_t *ml = NULL, nm = 0;
    if (!model || !vmap || !json_object_is_type(vmap, json_type_object) || !merges ||
        !json_object_is_type(merges, json_type_array)) {
        st = sq_err_set(err, SQ_ECORRUPT, "%s: no model.vocab object or model.merges array", src->name);
        goto out_root;
    }
    if (why) {
        st = sq_err_set(err, SQ_EUNSUPPORTED, "%s: the GGUF export writes GPT-2 byte-level BPE vocabularies, and %s",
                        src->name, why);
        goto out_root;
    }
    if (vocab_init(&v, src->n_vocab)) goto oom; /* v is zeroed first: freeing it is safe */
    json_object_object_foreach(vmap, key, val) {
        int64_t id = json_object_get_int64(val);
        if (id < 0 || id >= (int64_t)v.n) {
            st = sq_err_set(err, SQ_EUSAGE, "%s: token \"%.40s\" has id %lld, outside the model's vocabulary of %u", src->name,
                            key, (long long)id, v.n);
            goto out;
        }
        if (vocab_set(&v, (uint32_t)id, key, strlen(key), TT_NORMAL)) goto oom;
    }
    json_object *added = get(root, "added_tokens");
    for (size_t i = 0; added && json_object_is_type(added, json_type_array) && i < json_object_array_length(added); i++) {
        json_object *a = json_object_array_get_idx(added, i), *id = get(a, "id"), *c = get(a, "content"), *sp = get(a, "special");
        if (!id || !c) continue;
        int64_t k = json_object_get_int64(id);
        if (k < 0 || k >= (int64_t)v.n) {
            st = sq_err_set(err, SQ_EUSAGE, "%s: added token id %lld is outside the model's vocabulary of %u", src->name,
                            (long long)k, v.n);
            goto out;
        }
        const char *s = v.tok[k] ? v.tok[k] : json_object_get_string(c); /* the vocab's string wins, as in the converter */
        if (vocab_set(&v, (uint32_t)k, s, strlen(s), sp && json_object_get_boolean(sp) ? TT_CONTROL : TT_USER)) goto oom;
    }
    if (vocab_fill_gaps(&v)) goto oom;
    nm = json_object_array_length(merges);
    mg = calloc(nm ? nm : 1, sizeof *mg);
    ml = calloc(nm ? nm : 1, sizeof *ml);
    if (!mg || !ml) goto oom;
    for (size_t i = 0; i < nm; i++) {
        json_object *m = json_object_array_get_idx(merges, i);
        const char *a = NULL, *b = NULL;
        if (json_object_is_type(m, json_type_string)) {
            a = json_object_get_string(m);
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                st = sq_err_set(err, SQ_ECORRUPT, "%s: merge %zu \"%.60s\" is not two parts split by one space", src->name, i, a);
                goto out;
            }
            mg[i] = strdup(a);
        } else if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2) {
            a = json_object_get_string(json_object_array_get_idx(m, 0));
            b = json_object_get_string(json_object_array_get_idx(m, 1));
            if (strchr(a, ' ') || strchr(b, ' ')) {
                st = sq_err_set(err, SQ_EUNSUPPORTED, "%s: merge %zu has a part with a space, which GGUF merges cannot hold",
                                src->name, i);
                goto out;
            }
            if ((mg[i] = malloc(strlen(a) + strlen(b) + 2))) sprintf(mg[i], "%s %s", a, b);
        } else {
            st = sq_err_set(err, SQ_ECORRUPT, "%s: merge %zu is neither \"a b\" nor [a, b]", src->name, i);
            goto out;
        }
        if (!mg[i]) goto oom;
        ml[i] = strlen(mg[i]);
    }
    st = sq_gguf_kv_str(w, "tokenizer.ggml.model", "gpt2", err);
    if (!st) st = sq_gguf_kv_str(w, "tokenizer.ggml.pre", "gpt-2", err);
    if (!st) st = add_tokens(w, &v, 0, err);
    if (!st) st = sq_gguf_kv_strs(w, "tokenizer.ggml.merges", (const char *const *)mg, ml, nm, err);
    if (!st) st = add_specials(w, &v, src, tcfg, -1, -1, -1, -1, 0, err);
    goto out;
oom:
    st = sq_err_set(err, SQ_ENOMEM, "out of memory");
out:
    for (size_t i = 0; mg && i < nm; i++) free(mg[i]);
    free(mg);
    free(ml);
    vocab_free(&v);
out_root:
    json_object_put(root);
    return st;
}

/* ---- SentencePiece tokenizer.model (protobuf) ---- */

typedef struct pb {
    const uint8_t *p, *end;
    int bad;
} pb;

static uint64_t pb_varint(pb *b) {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (b->p >= b->end) break;
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80)) return v;
    }
    b->bad = 1;
    return 0;
}

/* Next field of a message: its number, wire type, scalar value or sub-message. 0 at the end or on damage. */
static int pb_field(pb *b, uint32_t *field, uint32_t *wire, uint64_t *val, pb *sub) {
    if (b->bad || b->p >= b->end) return 0;
    uint64_t key = pb_varint(b);
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    switch (*wire) {
    case 0: *val = pb_varint(b); break;
    case 1:
        if (b->end - b->p < 8) b->bad = 1;
        else b->p += 8;
        break;
    case 2: {
        uint64_t n = pb_varint(b);
        if (b->bad || n > (uint64_t)(b->end - b->p)) {
            b->bad = 1;
            return 0;
        }
        *sub = (pb){b->p, b->p + n, 0};
        b->p += n;
        break;
    }
    case 5: {
        if (b->end - b->p < 4) {
            b->bad = 1;
            return 0;
        }
        *val = (uint64_t)b->p[0] | (uint64_t)b->p[1] << 8 | (uint64_t)b->p[2] << 16 | (uint64_t)b->p[3] << 24;
        b->p += 4;
        break;
    }
    default: b->bad = 1;
    }
    return !b->bad;
}

static sq_status vocab_spm_model(const sq_gguf_vocab_src *src, vocab *v, int32_t *ids, int *add_space, sq_err *err) {
    pb b = {src->data, src->data + src->size, 0}, sub, s2;
    uint32_t f, wt, n = 0;
    uint64_t val = 0;
    while (pb_field(&b, &f, &wt, &val, &sub)) {
        if (f == 1 && wt == 2) { /* SentencePiece { piece = 1, score = 2, type = 3 } */
            const uint8_t *ps = NULL;
            size_t pl = 0;
            float score = 0;
            int32_t type = TT_NORMAL;
            uint32_t f2, w2;
            uint64_t v2 = 0;
            while (pb_field(&sub, &f2, &w2, &v2, &s2)) {
                if (f2 == 1 && w2 == 2) ps = s2.p, pl = (size_t)(s2.end - s2.p);
                else if (f2 == 2 && w2 == 5) {
                    uint32_t u = (uint32_t)v2;
                    memcpy(&score, &u, 4);
                } else if (f2 == 3 && w2 == 0) type = (int32_t)v2;
            }
            if (sub.bad || !ps) return sq_err_set(err, SQ_ECORRUPT, "%s: piece %u is malformed", src->name, n);
            if (n >= v->n)
                return sq_err_set(err, SQ_EUSAGE, "%s holds more than the model's %u tokens: a tokenizer of another model",
                                  src->name, v->n);
            if (type < TT_NORMAL || type > TT_BYTE) type = TT_NORMAL;
            if (vocab_set(v, n, (const char *)ps, pl, type)) return sq_err_set(err, SQ_ENOMEM, "out of memory");
            v->score[n++] = score;
        } else if (f == 2 && wt == 2) { /* TrainerSpec: unk_id 40, bos_id 41, eos_id 42, pad_id 43 */
            uint32_t f2, w2;
            uint64_t v2 = 0;
            while (pb_field(&sub, &f2, &w2, &v2, &s2))
                if (f2 >= 40 && f2 <= 43 && w2 == 0) ids[f2 - 40] = (int32_t)v2;
        } else if (f == 3 && wt == 2) { /* NormalizerSpec: add_dummy_prefix = 3 */
            uint32_t f2, w2;
            uint64_t v2 = 0;
            while (pb_field(&sub, &f2, &w2, &v2, &s2))
                if (f2 == 3 && w2 == 0) *add_space = v2 != 0;
        }
    }
    if (b.bad) return sq_err_set(err, SQ_ECORRUPT, "%s: not a SentencePiece model (malformed protobuf)", src->name);
    if (n != v->n)
        return sq_err_set(err, SQ_EUSAGE, "%s holds %u tokens but the model's vocabulary has %u", src->name, n, v->n);
    return SQ_OK;
}

/* llama2.c tokenizer.bin: u32 max_token_length; per token f32 score, i32 length, bytes (' ' for U+2581;
 * <s> and </s> written as "\n<s>\n", "\n</s>\n"). */
static sq_status vocab_llama2c(const sq_gguf_vocab_src *src, vocab *v, sq_err *err) {
    size_t pos = 4;
    if (src->size < 4) return sq_err_set(err, SQ_ECORRUPT, "%s: not a llama2.c tokenizer", src->name);
    for (uint32_t id = 0; id < v->n; id++) {
        float score;
        int32_t len;
        if (src->size - pos < 8) return sq_err_set(err, SQ_EUSAGE, "%s: %u tokens, the model has %u", src->name, id, v->n);
        memcpy(&score, src->data + pos, 4);
        memcpy(&len, src->data + pos + 4, 4);
        pos += 8;
        if (len < 0 || (size_t)len > src->size - pos)
            return sq_err_set(err, SQ_ECORRUPT, "%s: token %u has length %d at byte %zu", src->name, id, len, pos - 4);
        const char *s = (const char *)src->data + pos;
        char *p = malloc((size_t)len * 3 + 1);
        if (!p) return sq_err_set(err, SQ_ENOMEM, "out of memory");
        size_t k = 0;
        if (id == 1 && len == 5 && !memcmp(s, "\n<s>\n", 5)) k = (size_t)sprintf(p, "<s>");
        else if (id == 2 && len == 6 && !memcmp(s, "\n</s>\n", 6)) k = (size_t)sprintf(p, "</s>");
        else
            for (int32_t i = 0; i < len; i++) {
                if (s[i] == ' ') memcpy(p + k, "\xe2\x96\x81", 3), k += 3;
                else p[k++] = s[i];
            }
        p[k] = 0;
        unsigned hi, lo;
        char tail;
        int byte = k == 6 && sscanf(p, "<0x%1x%1x%c", &hi, &lo, &tail) == 3 && tail == '>';
        int32_t type = id == 0 ? TT_UNKNOWN : id < 3 ? TT_CONTROL : byte ? TT_BYTE : TT_NORMAL;
        int bad = vocab_set(v, id, p, k, type);
        free(p);
        if (bad) return sq_err_set(err, SQ_ENOMEM, "out of memory");
        v->score[id] = score;
        pos += (size_t)len;
    }
    if (pos != src->size)
        return sq_err_set(err, SQ_EUSAGE, "%s: %zu bytes after the model's %u tokens: a tokenizer of another model", src->name,
                          src->size - pos, v->n);
    return SQ_OK;
}

static sq_status vocab_llama(sq_gguf_writer *w, const sq_gguf_vocab_src *src, json_object *tcfg, sq_err *err) {
    vocab v;
    if (vocab_init(&v, src->n_vocab)) {
        vocab_free(&v);
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    int32_t ids[4] = {0, 1, 2, -1}; /* SentencePiece's defaults: unk, bos, eos, pad */
    int add_space = 1;
    sq_status st = src->kind == SQ_TOK_SPM ? vocab_spm_model(src, &v, ids, &add_space, err) : vocab_llama2c(src, &v, err);
    if (!st) st = sq_gguf_kv_str(w, "tokenizer.ggml.model", "llama", err);
    if (!st) st = add_tokens(w, &v, 1, err);
    if (!st) st = add_specials(w, &v, src, tcfg, ids[1], ids[2], ids[0], ids[3], 1, err);
    if (!st) st = sq_gguf_kv_bool(w, "tokenizer.ggml.add_space_prefix", add_space, err);
    vocab_free(&v);
    return st;
}

sq_status sq_gguf_add_vocab(sq_gguf_writer *w, const sq_gguf_vocab_src *src, const char **model, sq_err *err) {
    json_object *tcfg = NULL;
    if (src->tok_config) {
        json_tokener *tk = json_tokener_new();
        if (tk && src->tok_config_size < (size_t)1 << 30) {
            tcfg = json_tokener_parse_ex(tk, (const char *)src->tok_config, (int)src->tok_config_size);
            json_tokener_free(tk);
        }
        if (tcfg && !json_object_is_type(tcfg, json_type_object)) {
            json_object_put(tcfg);
            tcfg = NULL;
        }
    }
    if (!src->n_vocab) return sq_err_set(err, SQ_EUSAGE, "the model's vocabulary size is unknown");
    sq_status st;
    if (src->kind == SQ_TOK_JSON) {
        *model = "gpt2";
        st = vocab_gpt2(w, src, tcfg, err);
    } else {
        *model = "llama";
        st = vocab_llama(w, src, tcfg, err);
    }
    json_object_put(tcfg);
    return st;
}
