/* Hugging Face model directories: config.json plus model.safetensors or
 * shards listed in model.safetensors.index.json. Safetensors layout: u64 LE
 * header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
 * then the data; offsets are relative to the end of the header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/json_util.h"
#include "squish/hf_quant.h"
#include "squish/model.h"

#define MAX_HEADER (100u << 20) /* safetensors header JSON limit */
#define MAX_CONFIG (16u << 20)

static char *join(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    if (p) sprintf(p, "%s/%s", dir, name);
    return p;
}

static uint32_t st_dtype(const char *s) {
    if (!strcmp(s, "F32")) return SQ_DT_F32;
    if (!strcmp(s, "F16")) return SQ_DT_F16;
    if (!strcmp(s, "BF16")) return SQ_DT_BF16;
    return SQ_DT_INVALID;
}

sq_status sq_model_parse_safetensors(sq_model *m, int fi, sq_err *err) {
    const sq_model_file *f = &m->files[fi];
    const char *p = f->path;
    if (f->size < 8)
        return sq_err_set(err, SQ_ECORRUPT, "%s: truncated: %llu bytes, the 8-byte header length is missing", p,
                          (unsigned long long)f->size);
    uint64_t n = get64(f->map);
    if (n > f->size - 8)
        return sq_err_set(err, SQ_ECORRUPT, "%s: header length %llu (bytes 0..7) runs past the end of the file (%llu bytes)", p,
                          (unsigned long long)n, (unsigned long long)f->size);
    if (n > MAX_HEADER)
        return sq_err_set(err, SQ_ENOMEM, "%s: header length %llu exceeds the 100 MiB limit", p, (unsigned long long)n);
    json_object *root;
    sq_status s = sq_json_parse_object(p, (const char *)f->map + 8, (size_t)n, &root, err);
    if (s) return s;
    const uint8_t *data = f->map + 8 + n;
    uint64_t dsize = f->size - 8 - n;
    json_object_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        json_object *dt, *shape, *offs;
        if (!json_object_is_type(val, json_type_object) || !json_object_object_get_ex(val, "dtype", &dt) ||
            !json_object_object_get_ex(val, "shape", &shape) || !json_object_object_get_ex(val, "data_offsets", &offs) ||
            !json_object_is_type(dt, json_type_string) || !json_object_is_type(shape, json_type_array) ||
            !json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2) {
            s = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: header entry needs dtype, shape and data_offsets [begin, end]", p, key);
            break;
        }
        uint32_t dtype = st_dtype(json_object_get_string(dt));
        if (!dtype) {
            s = sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s has dtype %s; squish reads F32, F16 and BF16", p, key,
                           json_object_get_string(dt));
            break;
        }
        size_t nd = json_object_array_length(shape);
        if (nd > SQ_MAX_NDIM) {
            s = sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s has %zu dimensions (max 8)", p, key, nd);
            break;
        }
        uint64_t dims[SQ_MAX_NDIM], bytes = sq_dtype_size(dtype);
        int ok = 1;
        for (size_t i = 0; i < nd && ok; i++) {
            json_object *d = json_object_array_get_idx(shape, i);
            ok = json_object_is_type(d, json_type_int) && json_object_get_int64(d) >= 0;
            if (ok) {
                dims[i] = (uint64_t)json_object_get_int64(d);
                ok = mul_ok(bytes, dims[i], &bytes);
            }
        }
        json_object *b0 = json_object_array_get_idx(offs, 0), *b1 = json_object_array_get_idx(offs, 1);
        if (!ok || !json_object_is_type(b0, json_type_int) || !json_object_is_type(b1, json_type_int)) {
            s = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: shape or data_offsets are not non-negative integers", p, key);
            break;
        }
        int64_t begin = json_object_get_int64(b0), end = json_object_get_int64(b1);
        if (begin < 0 || end < begin || (uint64_t)end > dsize) {
            s = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: data_offsets [%lld, %lld] fall outside the %llu data bytes%s", p, key,
                           (long long)begin, (long long)end, (unsigned long long)dsize,
                           (uint64_t)end > dsize ? " (truncated file?)" : "");
            break;
        }
        if ((uint64_t)(end - begin) != bytes) {
            s = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: data_offsets span %lld bytes but dtype and shape need %llu", p, key,
                           (long long)(end - begin), (unsigned long long)bytes);
            break;
        }
        if (nd == 0) { dims[0] = 1; nd = 1; } /* scalars become [1] */
        s = sq_model_add_tensor(m, key, key, dtype, (uint32_t)nd, dims, data + begin, bytes, fi, err);
        if (s) break;
    }
    json_object_put(root);
    return s;
}

static sq_status read_config(sq_model *m, const char *dir, sq_err *err) {
    char *path = join(dir, "config.json"), *text = NULL;
    if (!path) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    size_t len;
    sq_status s = sq_model_read_file(m, path, MAX_CONFIG, &text, &len, err);
    if (!s) s = sq_model_parse_config(m, path, text, len, err);
    free(text);
    free(path);
    return s;
}

sq_status sq_model_parse_config(sq_model *m, const char *path, const char *text, size_t len, sq_err *err) {
    json_object *o = NULL;
    sq_status s = sq_json_parse_object(path, text, len, &o, err);
    if (s) return s;
    free(m->config_json);
    m->config_json = malloc(len + 1);
    if (!m->config_json) { json_object_put(o); return sq_err_set(err, SQ_ENOMEM, "out of memory"); }
    memcpy(m->config_json, text, len);
    m->config_json[len] = 0;
    sq_model_info *in = &m->info;
    const char *mt = sq_json_str(o, "model_type");
    in->arch = sq_arch_from_name(mt);
    const char *need[] = {"num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size", "intermediate_size"};
    uint32_t *dst[] = {&in->n_layers, &in->hidden_size, &in->n_heads, &in->vocab_size, &in->intermediate_size};
    for (int i = 0; i < 5; i++)
        if (!sq_json_u32(o, need[i], dst[i]) || !*dst[i]) {
            s = sq_err_set(err, SQ_ECORRUPT, "%s: field \"%s\" is missing or not a positive integer", path, need[i]);
            goto out;
        }
    if (!sq_json_u32(o, "num_key_value_heads", &in->n_kv_heads)) in->n_kv_heads = in->n_heads;
    if (!sq_json_u32(o, "head_dim", &m->head_dim)) m->head_dim = in->hidden_size / in->n_heads;
    if (!in->n_kv_heads || in->n_heads % in->n_kv_heads || !m->head_dim) {
        s = sq_err_set(err, SQ_ECORRUPT, "%s: num_attention_heads %u, num_key_value_heads %u and head_dim %u are inconsistent",
                       path, in->n_heads, in->n_kv_heads, m->head_dim);
        goto out;
    }
    m->rope_theta = 10000.0f;
    if (!sq_json_f32(o, "rope_theta", &m->rope_theta)) {
        json_object *rp;
        if (json_object_object_get_ex(o, "rope_parameters", &rp) && json_object_is_type(rp, json_type_object))
            sq_json_f32(rp, "rope_theta", &m->rope_theta);
    }
    m->norm_eps = 1e-5f;
    sq_json_f32(o, "rms_norm_eps", &m->norm_eps);
    sq_json_bool(o, "tie_word_embeddings", &m->tied_embeddings);
    m->max_seq = 2048;
    sq_json_u32(o, "max_position_embeddings", &m->max_seq);
out:
    json_object_put(o);
    return s;
}

static int safe_shard_name(const char *s) {
    return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

sq_status sq_model_open_hf(sq_model *m, const char *dir, sq_err *err) {
    sq_status s = read_config(m, dir, err);
    if (s) return s;
    char method[64];
    if (sq_hf_quant_method(m, dir, method, sizeof method)) return sq_model_open_hf_quant(m, dir, err); /* GPTQ/AWQ: interop/hf_import.c */
    char *idx = join(dir, "model.safetensors.index.json"), *single = join(dir, "model.safetensors");
    char *text = NULL;
    json_object *root = NULL;
    if (!idx || !single) { s = sq_err_set(err, SQ_ENOMEM, "out of memory"); goto out; }
    if (sq_model_file_exists(m, idx)) {
        size_t len;
        s = sq_model_read_file(m, idx, MAX_CONFIG, &text, &len, err);
        if (!s) s = sq_json_parse_object(idx, text, len, &root, err);
        if (s) goto out;
        json_object *wm;
        if (!json_object_object_get_ex(root, "weight_map", &wm) || !json_object_is_type(wm, json_type_object)) {
            s = sq_err_set(err, SQ_ECORRUPT, "%s: \"weight_map\" object is missing", idx);
            goto out;
        }
        /* map each distinct shard once, in order of first mention */
        json_object_object_foreach(wm, name, shard) {
            if (!json_object_is_type(shard, json_type_string) || !safe_shard_name(json_object_get_string(shard))) {
                s = sq_err_set(err, SQ_ECORRUPT, "%s: weight_map[\"%s\"] is not a plain file name", idx, name);
                goto out;
            }
            char *sp = join(dir, json_object_get_string(shard));
            int seen = -1;
            for (uint32_t i = 0; sp && i < m->n_files; i++)
                if (!strcmp(m->files[i].path, sp)) seen = (int)i;
            if (sp && seen < 0) {
                if (!sq_model_file_exists(m, sp)) {
                    s = sq_err_set(err, SQ_EIO, "%s: shard %s named in %s is missing", sp, json_object_get_string(shard), idx);
                    free(sp);
                    goto out;
                }
                int fi = sq_model_map_file(m, sp, err);
                if (fi < 0 || sq_model_parse_safetensors(m, fi, err)) {
                    s = err ? err->status : SQ_EIO;
                    free(sp);
                    goto out;
                }
            }
            free(sp);
        }
        json_object_object_foreach(wm, name2, shard2) {
            const sq_model_tensor *t = sq_model_find(m, name2);
            char *sp = join(dir, json_object_get_string(shard2));
            int ok = t && sp && !strcmp(m->files[t->file].path, sp);
            free(sp);
            if (!ok) {
                s = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s is listed in shard %s but not found there", idx, name2,
                               json_object_get_string(shard2));
                goto out;
            }
        }
    } else if (sq_model_file_exists(m, single)) {
        int fi = sq_model_map_file(m, single, err);
        if (fi < 0) { s = err ? err->status : SQ_EIO; goto out; }
        if ((s = sq_model_parse_safetensors(m, fi, err))) goto out;
    } else {
        s = sq_err_set(err, SQ_EIO, "%s: no model.safetensors or model.safetensors.index.json", dir);
        goto out;
    }
    if (!m->n_tensors) { s = sq_err_set(err, SQ_ECORRUPT, "%s: the model has no tensors", dir); goto out; }
    const char *toks[] = {"tokenizer.json", "tokenizer.model"};
    for (int i = 0; i < 2 && !m->tokenizer_path; i++) {
        char *tp = join(dir, toks[i]);
        if (tp && !m->vfs && access(tp, F_OK) == 0) m->tokenizer_path = tp; /* archives: give --tokenizer */
        else free(tp);
    }
out:
    json_object_put(root);
    free(text);
    free(idx);
    free(single);
    return s;
}
