/* A Hugging Face GPTQ or AWQ directory into a .squizd file with exact
 * integer codecs (see squish/hf_quant.h; the mapping: docs/hf-gptq-awq.md).
 *
 * Every quantized module (a name.qweight with its qzeros, scales and, for
 * GPTQ, g_idx) becomes name.weight in int2/3/4/8 with the module's codes,
 * scales and zeros as they are; an act-order g_idx becomes a perm link
 * (stored columns grouped by g_idx, in increasing column order within a
 * group). Every other tensor is kept in its precision. Nothing is
 * re-quantized: a module squish cannot hold exactly (a group size other
 * than 32/64/128/256 or per channel, a zero point outside the codes) is
 * refused, naming it. */
#include <dirent.h>
#include <json-c/json.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codecs/codecs.h"
#include "common/bytes.h"
#include "common/json_util.h"
#include "interop/hf_pack.h"
#include "interop/safetensors_io.h"
#include "squish/codec.h"
#include "squish/hf_quant.h"
#include "squish/version.h"

#define MAX_TEXT (16u << 20)

typedef struct qcfg {
    sq_hf_layout layout;
    int bits, sym;
    int64_t group; /* -1: per channel */
    json_object *dynamic; /* GPTQModel per-module overrides (borrowed), or NULL */
} qcfg;

typedef struct out_tensor {
    const char *name;      /* output name (module.weight or the tensor's own) */
    char *owned_name;
    const sq_st_entry *e;  /* a floating-point tensor, or a module's qweight */
    char module[SQ_MAX_NAME + 1];
} out_tensor;

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* ---------------- the quantization_config ---------------- */

static json_object *read_json_file(const sq_model *m, const char *dir, const char *name, sq_err *err) {
    char *path = join(dir, name), *text = NULL;
    size_t len;
    json_object *o = NULL;
    if (path && sq_model_file_exists(m, path) && !sq_model_read_file(m, path, MAX_TEXT, &text, &len, err))
        sq_json_parse_object(path, text, len, &o, err);
    free(path);
    free(text);
    return o;
}

/* config.json's quantization_config, else AutoGPTQ's quantize_config.json
 * or AutoAWQ's quant_config.json beside it (a new reference each). */
static json_object *find_qconfig(const sq_model *m, const char *dir, json_object *cfg) {
    json_object *q;
    if (cfg && json_object_object_get_ex(cfg, "quantization_config", &q) && json_object_is_type(q, json_type_object))
        return json_object_get(q);
    sq_err e;
    if ((q = read_json_file(m, dir, "quantize_config.json", &e))) {
        if (!json_object_object_get_ex(q, "quant_method", NULL)) json_object_object_add(q, "quant_method", json_object_new_string("gptq"));
        return q;
    }
    if ((q = read_json_file(m, dir, "quant_config.json", &e))) {
        if (!json_object_object_get_ex(q, "quant_method", NULL)) json_object_object_add(q, "quant_method", json_object_new_string("awq"));
        return q;
    }
    return NULL;
}

const char *sq_hf_quant_method(const sq_model *m, const char *dir, char *buf, size_t n) {
    json_object *cfg = m->config_json ? json_tokener_parse(m->config_json) : NULL;
    json_object *q = find_qconfig(m, dir, cfg), *qm;
    const char *r = NULL;
    if (q) {
        snprintf(buf, n, "%s", json_object_object_get_ex(q, "quant_method", &qm) ? json_object_get_string(qm) : "?");
        r = buf;
    }
    json_object_put(q);
    json_object_put(cfg);
    return r;
}

static int jint(json_object *o, const char *k, int64_t *v) {
    json_object *x;
    if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_int)) return 0;
    *v = json_object_get_int64(x);
    return 1;
}

static sq_status parse_qconfig(json_object *q, const char *where, qcfg *c, sq_err *err) {
    memset(c, 0, sizeof *c);
    const char *method = sq_json_str(q, "quant_method");
    int64_t bits = 0, group = -1;
    if (method && !strcmp(method, "gptq")) {
        const char *fmt = sq_json_str(q, "checkpoint_format");
        if (!fmt) fmt = sq_json_str(q, "format");
        c->layout = !fmt || !strcmp(fmt, "gptq") ? SQ_HF_GPTQ : !strcmp(fmt, "gptq_v2") ? SQ_HF_GPTQ_V2 : SQ_HF_NONE;
        if (!c->layout)
            return sq_err_set(err, SQ_EUNSUPPORTED, "%s: GPTQ checkpoint_format \"%s\": squish reads \"gptq\" and \"gptq_v2\"", where, fmt);
        c->sym = 1;
        sq_json_bool(q, "sym", &c->sym);
        jint(q, "bits", &bits);
        jint(q, "group_size", &group);
        json_object *d;
        if (json_object_object_get_ex(q, "dynamic", &d) && json_object_is_type(d, json_type_object)) c->dynamic = d;
    } else if (method && !strcmp(method, "awq")) {
        c->layout = SQ_HF_AWQ;
        const char *ver = sq_json_str(q, "version");
        if (ver && strcasecmp(ver, "gemm"))
            return sq_err_set(err, SQ_EUNSUPPORTED, "%s: AWQ version \"%s\": squish reads the GEMM layout", where, ver);
        int zp = 1;
        sq_json_bool(q, "zero_point", &zp);
        if (!zp) return sq_err_set(err, SQ_EUNSUPPORTED, "%s: AWQ without zero points: squish reads zero_point true", where);
        if (!jint(q, "bits", &bits)) jint(q, "w_bit", &bits);
        if (!jint(q, "group_size", &group)) jint(q, "q_group_size", &group);
    } else {
        return sq_err_set(err, SQ_EUNSUPPORTED, "%s: quantization method \"%s\": squish imports gptq and awq", where,
                          method ? method : "(none)");
    }
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
        return sq_err_set(err, SQ_EUNSUPPORTED, "%s: %lld-bit weights: squish reads 2, 3, 4 and 8 bits", where, (long long)bits);
    if (c->layout == SQ_HF_AWQ && bits != 4) return sq_err_set(err, SQ_EUNSUPPORTED, "%s: AWQ with %lld bits: the GEMM layout is 4-bit", where, (long long)bits);
    if (group != -1 && group <= 0) return sq_err_set(err, SQ_ECORRUPT, "%s: group_size %lld", where, (long long)group);
    c->bits = (int)bits;
    c->group = group;
    return SQ_OK;
}

/* GPTQModel's "dynamic": the first key (a Python re pattern, matched at the
 * start of the module name) that matches overrides bits, group_size, sym;
 * "-:" keys mark modules left unquantized. */
static sq_status module_cfg(const qcfg *c, const char *module, qcfg *out, sq_err *err) {
    *out = *c;
    if (!c->dynamic) return SQ_OK;
    json_object_object_foreach(c->dynamic, key, val) {
        const char *pat = key;
        int negative = !strncmp(pat, "-:", 2);
        if (negative || !strncmp(pat, "+:", 2)) pat += 2;
        regex_t re;
        char *anchored = malloc(strlen(pat) + 4);
        if (!anchored) return sq_err_set(err, SQ_ENOMEM, "out of memory");
        sprintf(anchored, "^(%s)", pat);
        int bad = regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB);
        free(anchored);
        if (bad) return sq_err_set(err, SQ_EUNSUPPORTED, "quantization_config.dynamic key \"%s\" is no regular expression squish reads", key);
        int hit = regexec(&re, module, 0, NULL, 0) == 0;
        regfree(&re);
        if (!hit) continue;
        if (negative || !json_object_is_type(val, json_type_object)) return SQ_OK; /* the shapes tell the rest */
        int64_t v;
        if (jint(val, "bits", &v)) out->bits = (int)v;
        if (jint(val, "group_size", &v)) out->group = v;
        sq_json_bool(val, "sym", &out->sym);
        return SQ_OK;
    }
    return SQ_OK;
}

/* ---------------- the safetensors files ---------------- */

static sq_status map_and_parse(sq_model *m, const char *path, sq_st_set *set, sq_err *err) {
    int fi = sq_model_map_file(m, path, err);
    if (fi < 0) return err->status;
    return sq_st_parse(set, path, m->files[fi].map, m->files[fi].size, fi, err);
}

/* model.safetensors, the shards of model.safetensors.index.json, or else
 * the one *.safetensors file of the directory (AutoGPTQ's own names). */
static sq_status read_tensors(sq_model *m, const char *dir, sq_st_set *set, sq_err *err) {
    char *idx = join(dir, "model.safetensors.index.json"), *single = join(dir, "model.safetensors");
    sq_status st = SQ_OK;
    if (!idx || !single) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    else if (sq_model_file_exists(m, idx)) {
        json_object *root = NULL, *wm;
        char *text = NULL;
        size_t len;
        st = sq_model_read_file(m, idx, MAX_TEXT, &text, &len, err);
        if (!st) st = sq_json_parse_object(idx, text, len, &root, err);
        free(text);
        if (st) {
        } else if (!json_object_object_get_ex(root, "weight_map", &wm) || !json_object_is_type(wm, json_type_object))
            st = sq_err_set(err, SQ_ECORRUPT, "%s: \"weight_map\" object is missing", idx);
        else {
            char **seen = NULL;
            size_t n_seen = 0;
            json_object_object_foreach(wm, name, shard) {
                (void)name;
                const char *s = json_object_is_type(shard, json_type_string) ? json_object_get_string(shard) : "";
                if (!*s || strchr(s, '/') || !strcmp(s, "..") || !strcmp(s, ".")) {
                    st = sq_err_set(err, SQ_ECORRUPT, "%s: weight_map names \"%s\", not a plain file name", idx, s);
                    break;
                }
                int known = 0;
                for (size_t i = 0; i < n_seen && !known; i++) known = !strcmp(seen[i], s);
                if (known) continue;
                char **ns = realloc(seen, (n_seen + 1) * sizeof *ns);
                if (!ns) { st = sq_err_set(err, SQ_ENOMEM, "out of memory"); break; }
                seen = ns;
                seen[n_seen++] = (char *)s;
                char *p = join(dir, s);
                st = p ? map_and_parse(m, p, set, err) : sq_err_set(err, SQ_ENOMEM, "out of memory");
                free(p);
                if (st) break;
            }
            free(seen);
        }
        json_object_put(root);
    } else if (sq_model_file_exists(m, single)) {
        st = map_and_parse(m, single, set, err);
    } else {
        char *found = NULL;
        int count = 0;
        if (m->vfs) {
            for (uint32_t i = 0; i < m->n_vfs; i++)
                if (ends_with(m->vfs[i].name, ".safetensors") && !strchr(m->vfs[i].name, '/')) count++, found = m->vfs[i].name;
            if (found) found = join(dir, found);
        } else {
            DIR *d = opendir(dir);
            struct dirent *e;
            while (d && (e = readdir(d)))
                if (ends_with(e->d_name, ".safetensors")) {
                    count++;
                    free(found);
                    found = join(dir, e->d_name);
                }
            if (d) closedir(d);
        }
        if (count == 1 && found) st = map_and_parse(m, found, set, err);
        else st = sq_err_set(err, SQ_EIO, "%s: no model.safetensors or model.safetensors.index.json%s", dir,
                             count > 1 ? " (and several other .safetensors files)" : "");
        free(found);
    }
    free(idx);
    free(single);
    if (!st) st = sq_st_sort(set, err);
    if (!st && !set->n) st = sq_err_set(err, SQ_ECORRUPT, "%s: the model has no tensors", dir);
    return st;
}

/* ---------------- one quantized module ---------------- */

typedef struct module_in {
    const char *module;
    const sq_st_entry *qweight, *qzeros, *scales, *g_idx;
} module_in;

static uint32_t entry_i32(const sq_st_entry *e, uint64_t i) { return get32(e->data + 4 * i); }

static int scale_dtype_ok(const sq_st_entry *e) { return e->dtype == SQ_DT_F16 || e->dtype == SQ_DT_BF16 || e->dtype == SQ_DT_F32; }

static int scale_finite(const sq_st_entry *e, uint64_t i) {
    if (e->dtype == SQ_DT_F32) return (get32(e->data + 4 * i) & 0x7F800000u) != 0x7F800000u;
    uint16_t h = get16(e->data + 2 * i);
    return e->dtype == SQ_DT_F16 ? (h & 0x7C00u) != 0x7C00u : (h & 0x7F80u) != 0x7F80u;
}

/* The columns in stored order when g_idx is not the plain c / G: sorted by
 * group (stable), each group exactly G columns (the last one shorter). */
static sq_status perm_from_gidx(const module_in *mi, uint64_t K, uint64_t G, uint64_t ng, uint32_t **perm, sq_err *err) {
    *perm = NULL;
    if (!mi->g_idx) return SQ_OK;
    int plain = 1;
    for (uint64_t c = 0; c < K; c++) {
        uint32_t g = entry_i32(mi->g_idx, c);
        if (g >= ng)
            return sq_err_set(err, SQ_ECORRUPT, "%s.g_idx[%llu] = %u, but the module has %llu groups", mi->module,
                              (unsigned long long)c, g, (unsigned long long)ng);
        plain &= g == c / G;
    }
    if (plain) return SQ_OK;
    uint64_t *start = calloc(ng + 1, sizeof *start);
    uint32_t *p = malloc(K * sizeof *p);
    if (!start || !p) {
        free(start);
        free(p);
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    for (uint64_t c = 0; c < K; c++) start[entry_i32(mi->g_idx, c) + 1]++;
    for (uint64_t g = 0; g < ng; g++) {
        uint64_t want = g + 1 < ng ? G : K - G * (ng - 1);
        if (start[g + 1] != want) {
            sq_status st = sq_err_set(err, SQ_EUNSUPPORTED, "%s.g_idx puts %llu columns in group %llu, not %llu: no grouping squish "
                                      "can store", mi->module, (unsigned long long)start[g + 1], (unsigned long long)g,
                                      (unsigned long long)want);
            free(start);
            free(p);
            return st;
        }
        start[g + 1] += start[g];
    }
    for (uint64_t c = 0; c < K; c++) p[start[entry_i32(mi->g_idx, c)]++] = (uint32_t)c;
    free(start);
    *perm = p;
    return SQ_OK;
}

static int dims_are(const sq_st_entry *e, uint32_t nd, uint64_t d0, uint64_t d1) {
    return e->ndim == nd && e->dims[0] == d0 && (nd < 2 || e->dims[1] == d1);
}

/* Writes one module as name.weight in an integer codec. */
static sq_status write_module(sq_writer *w, const qcfg *qc, const module_in *mi, const char *name, uint32_t src_dtype,
                              int *permuted, sq_err *err) {
    const sq_hf_layout L = qc->layout;
    const int gptq = L != SQ_HF_AWQ;
    const sq_st_entry *qw = mi->qweight, *qz = mi->qzeros, *sc = mi->scales;
    if (!qz || !sc) return sq_err_set(err, SQ_ECORRUPT, "module %s has a qweight but no %s", mi->module, qz ? "scales" : "qzeros");
    if (qw->dtype != SQ_DT_I32 || qz->dtype != SQ_DT_I32 || (mi->g_idx && mi->g_idx->dtype != SQ_DT_I32) || !scale_dtype_ok(sc) ||
        qw->ndim != 2 || qz->ndim != 2 || sc->ndim != 2)
        return sq_err_set(err, SQ_ECORRUPT, "module %s: qweight/qzeros%s must be 2-D I32 and scales 2-D F16/BF16/F32", mi->module,
                          mi->g_idx ? "/g_idx (1-D)" : "");
    const int bits = qc->bits, mid = 1 << (bits - 1);
    const uint64_t N = sc->dims[1], ng = sc->dims[0];
    uint64_t K;
    if (gptq) {
        K = mi->g_idx ? mi->g_idx->dims[0] : qw->dims[0] * 32 / (uint64_t)bits;
        if (mi->g_idx && mi->g_idx->ndim != 1) return sq_err_set(err, SQ_ECORRUPT, "module %s: g_idx is not 1-D", mi->module);
        if (K * (uint64_t)bits % 32 || N * (uint64_t)bits % 32 || !dims_are(qw, 2, K * (uint64_t)bits / 32, N) ||
            !dims_are(qz, 2, ng, N * (uint64_t)bits / 32))
            return sq_err_set(err, SQ_ECORRUPT, "module %s: qweight %llux%llu, qzeros %llux%llu and scales %llux%llu do not "
                              "describe one %d-bit layer", mi->module, (unsigned long long)qw->dims[0], (unsigned long long)qw->dims[1],
                              (unsigned long long)qz->dims[0], (unsigned long long)qz->dims[1], (unsigned long long)ng,
                              (unsigned long long)N, bits);
    } else {
        K = qw->dims[0];
        if (N % 8 || !dims_are(qw, 2, K, N / 8) || !dims_are(qz, 2, ng, N / 8))
            return sq_err_set(err, SQ_ECORRUPT, "module %s: qweight %llux%llu, qzeros %llux%llu and scales %llux%llu do not "
                              "describe one 4-bit AWQ layer", mi->module, (unsigned long long)qw->dims[0],
                              (unsigned long long)qw->dims[1], (unsigned long long)qz->dims[0], (unsigned long long)qz->dims[1],
                              (unsigned long long)ng, (unsigned long long)N);
    }
    const uint64_t G = qc->group < 0 || (uint64_t)qc->group >= K ? K : (uint64_t)qc->group;
    if (!K || !N || ng != (K + G - 1) / G || (!gptq && K % G))
        return sq_err_set(err, SQ_ECORRUPT, "module %s: %llu groups of scales for %llu inputs in groups of %llu", mi->module,
                          (unsigned long long)ng, (unsigned long long)K, (unsigned long long)G);
    if (G != K && G != 32 && G != 64 && G != 128 && G != 256)
        return sq_err_set(err, SQ_EUNSUPPORTED, "module %s: groups of %llu: squish's integer codecs have groups of 32, 64, 128, 256 "
                          "or per channel", mi->module, (unsigned long long)G);
    uint32_t *perm = NULL;
    sq_status st = gptq ? perm_from_gidx(mi, K, G, ng, &perm, err) : SQ_OK;
    if (st) return st;
    /* zero points, and whether the module is symmetric (all at the midpoint, as its config says) */
    const uint64_t zw = gptq ? N * (uint64_t)bits / 32 : N / 8;
    uint8_t *z = malloc(N * ng);
    int sym = qc->sym && gptq;
    for (uint64_t n = 0; z && !st && n < N; n++)
        for (uint64_t g = 0; g < ng; g++) {
            uint32_t v = gptq ? sq_hf_stream_get(qz->data, 1, g * zw, n, bits) : sq_awq_get(qz->data + g * zw * 4, n);
            if (L == SQ_HF_GPTQ) v++; /* v1 stores zero - 1 */
            if (v >= (1u << bits)) {
                st = sq_err_set(err, SQ_EUNSUPPORTED, "module %s: zero point %u (output %llu, group %llu) lies outside the %d-bit "
                                "codes (a v1 checkpoint whose zero was 0)", mi->module, v, (unsigned long long)n,
                                (unsigned long long)g, bits);
                break;
            }
            if (!scale_finite(sc, g * N + n)) {
                st = sq_err_set(err, SQ_ECORRUPT, "module %s: scale of output %llu, group %llu is not finite", mi->module,
                                (unsigned long long)n, (unsigned long long)g);
                break;
            }
            z[n * ng + g] = (uint8_t)v;
            sym &= v == (uint32_t)mid;
        }
    if (!z && !st) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    const sq_codec *c = sq_codec_by_id(bits == 8 ? SQ_CODEC_INT8 : bits == 4 ? SQ_CODEC_INT4 : bits == 3 ? SQ_CODEC_INT3 : SQ_CODEC_INT2);
    uint32_t params[SQ_NPARAMS] = {G == K ? SQ_GROUP_ROW : (uint32_t)G, sym ? 0u : SQ_PF_ASYM, sc->dtype, perm ? SQ_XF_PERM : 0u,
                                   0, 0, 0, 0};
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int np = sq_layout(c, params, N, K, sp);
    void *parts[SQ_CODEC_MAX_PARTS] = {0};
    for (int i = 0; !st && i < np; i++)
        if (!(parts[i] = calloc(1, sq_part_spec_bytes(&sp[i]) + 1))) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    uint8_t *row = st ? NULL : calloc(1, K + SQ_CHUNK);
    if (!st && !row) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    const uint64_t rb = sq_row_bytes(K, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8), es = sq_dtype_size(sc->dtype);
    for (uint64_t n = 0; !st && n < N; n++) {
        for (uint64_t j = 0; j < K; j++) {
            const uint64_t k = perm ? perm[j] : j;
            row[j] = (uint8_t)(gptq ? sq_hf_stream_get(qw->data, N, n, k, bits) : sq_awq_get(qw->data + k * (N / 8) * 4, n));
        }
        for (uint64_t cc = 0; cc < K; cc += SQ_CHUNK) sq_pack_chunk(bits, row + cc, (uint8_t *)parts[0] + n * rb + (cc / SQ_CHUNK) * cb);
        for (uint64_t g = 0; g < ng; g++) {
            memcpy((uint8_t *)parts[1] + (n * ng + g) * es, sc->data + (g * N + n) * es, es);
            if (!sym) ((uint8_t *)parts[2])[n * ng + g] = z[n * ng + g];
        }
    }
    if (!st && perm) memcpy(parts[np - 1], perm, K * sizeof *perm);
    uint64_t dims[2] = {N, K};
    if (!st) st = sq_writer_begin_tensor(w, name, 2, dims, src_dtype, c->id, params, err);
    for (int i = 0; !st && i < np; i++)
        st = sq_writer_add_part(w, sp[i].name, sp[i].dtype, sp[i].ndim, sp[i].dims, parts[i], sq_part_spec_bytes(&sp[i]),
                                SQ_COMP_NONE, err);
    if (!st) st = sq_writer_end_tensor(w, err);
    for (int i = 0; i < np; i++) free(parts[i]);
    *permuted = perm != NULL;
    free(perm);
    free(row);
    free(z);
    return st;
}

static sq_status write_float(sq_writer *w, const out_tensor *o, sq_err *err) {
    const sq_st_entry *e = o->e;
    const sq_codec *c = sq_codec_for_dtype(e->dtype);
    uint32_t params[SQ_NPARAMS] = {0};
    uint64_t rows = 1, cols = e->dims[e->ndim - 1];
    for (uint32_t i = 0; i + 1 < e->ndim; i++) rows *= e->dims[i];
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int np = sq_layout(c, params, rows, cols, sp);
    if (np != 1 || sq_part_spec_bytes(&sp[0]) != e->nbytes) return sq_err_set(err, SQ_EINTERNAL, "tensor %s: float layout mismatch", o->name);
    sq_status st = sq_writer_begin_tensor(w, o->name, e->ndim, e->dims, e->dtype, c->id, params, err);
    if (!st) st = sq_writer_add_part(w, sp[0].name, sp[0].dtype, sp[0].ndim, sp[0].dims, e->data, e->nbytes, SQ_COMP_NONE, err);
    if (!st) st = sq_writer_end_tensor(w, err);
    return st;
}

/* ---------------- the whole directory ---------------- */

static int cmp_out(const void *a, const void *b) { return sq_tensor_name_cmp(((const out_tensor *)a)->name, ((const out_tensor *)b)->name); }

/* The tensors the .squizd gets: one per quantized module, one per other tensor. */
static sq_status collect(const sq_st_set *set, out_tensor **outs, uint32_t *n_out, sq_err *err) {
    static const char *const sufs[] = {".qweight", ".qzeros", ".scales", ".g_idx"};
    out_tensor *o = calloc(set->n ? set->n : 1, sizeof *o);
    if (!o) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    uint32_t n = 0;
    sq_status st = SQ_OK;
    for (uint32_t i = 0; !st && i < set->n; i++) {
        const sq_st_entry *e = &set->e[i];
        int part_of_module = 0;
        for (int k = 0; k < 4 && !part_of_module; k++) {
            size_t nl = strlen(e->name), sl = strlen(sufs[k]);
            if (nl <= sl || strcmp(e->name + nl - sl, sufs[k]) || nl - sl > SQ_MAX_NAME) continue;
            char q[SQ_MAX_NAME + 16];
            snprintf(q, sizeof q, "%.*s.qweight", (int)(nl - sl), e->name);
            if (!sq_st_find(set, q)) continue;
            part_of_module = 1;
            if (k) continue; /* the module is written once, from its qweight */
            snprintf(o[n].module, sizeof o[n].module, "%.*s", (int)(nl - sl), e->name);
            size_t wl = strlen(o[n].module) + 8;
            if (!(o[n].owned_name = malloc(wl))) { st = sq_err_set(err, SQ_ENOMEM, "out of memory"); break; }
            snprintf(o[n].owned_name, wl, "%s.weight", o[n].module);
            if (sq_st_find(set, o[n].owned_name)) {
                st = sq_err_set(err, SQ_ECORRUPT, "module %s has both a qweight and a weight", o[n].module);
                free(o[n].owned_name);
                break;
            }
            o[n].name = o[n].owned_name;
            o[n].e = e;
            n++;
        }
        if (part_of_module || st) continue;
        if (e->dtype != SQ_DT_F32 && e->dtype != SQ_DT_F16 && e->dtype != SQ_DT_BF16) {
            st = sq_err_set(err, SQ_EUNSUPPORTED, "tensor %s has dtype %s and belongs to no quantized module (name.qweight)", e->name,
                            e->dtype_name);
            break;
        }
        o[n].name = e->name;
        o[n].e = e;
        n++;
    }
    if (!st) qsort(o, n, sizeof *o, cmp_out);
    if (st) {
        for (uint32_t i = 0; i < n; i++) free(o[i].owned_name);
        free(o);
        return st;
    }
    *outs = o;
    *n_out = n;
    return SQ_OK;
}

static const char *const side_names[] = {"generation_config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                         "special_tokens_map.json", "README.md", "LICENSE"};

static sq_status add_embedded(sq_writer *w, const char *name, const void *data, uint64_t size, sq_err *err) {
    size_t nl = strlen(name);
    uint8_t *b = malloc(2 + nl + size);
    if (!b) return sq_err_set(err, SQ_ENOMEM, "out of memory for %s", name);
    b[0] = (uint8_t)nl;
    b[1] = (uint8_t)(nl >> 8);
    memcpy(b + 2, name, nl);
    if (size) memcpy(b + 2 + nl, data, (size_t)size);
    sq_status st = sq_writer_add_appendix(w, SQ_APPX_FILE, 0, b, 2 + nl + size, SQ_COMP_NONE, err);
    free(b);
    return st;
}

/* config.json (without its quantization_config: the codecs say it now) and
 * the tokenizer and side files beside it, in name order. */
static sq_status embed_files(const sq_model *m, const char *dir, const char *config_text, sq_writer *w, uint32_t *count, sq_err *err) {
    const char *names[8];
    int n = 0;
    names[n++] = "config.json";
    for (size_t i = 0; i < sizeof side_names / sizeof side_names[0]; i++) names[n++] = side_names[i];
    for (int i = 1; i < n; i++) /* name order: the same set gives the same bytes */
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        if (!strcmp(names[i], "config.json")) {
            sq_status st = add_embedded(w, names[i], config_text, strlen(config_text), err);
            if (st) return st;
            (*count)++;
            continue;
        }
        char *p = join(dir, names[i]), *data = NULL;
        size_t len;
        sq_status st = SQ_OK;
        if (p && sq_model_file_exists(m, p)) {
            st = sq_model_read_file(m, p, (size_t)1 << 30, &data, &len, err);
            if (!st) st = add_embedded(w, names[i], data, len, err);
            if (!st) (*count)++;
        }
        free(p);
        free(data);
        if (st) return st;
    }
    return SQ_OK;
}

static uint32_t dtype_of_config(json_object *cfg) {
    const char *t = sq_json_str(cfg, "torch_dtype");
    if (!t) t = sq_json_str(cfg, "dtype");
    if (t && !strcmp(t, "bfloat16")) return SQ_DT_BF16;
    if (t && !strcmp(t, "float32")) return SQ_DT_F32;
    return SQ_DT_F16;
}

sq_status sq_hf_import(sq_model *m, const char *dir, const char *out, sq_hf_import_result *r, sq_err *err) {
    sq_hf_import_result rs;
    memset(&rs, 0, sizeof rs);
    char *cpath = join(dir, "config.json"), *text = NULL;
    size_t len;
    json_object *cfg = NULL, *q = NULL, *meta = NULL;
    sq_st_set set = {0};
    out_tensor *outs = NULL;
    uint32_t n_out = 0;
    sq_writer *w = NULL;
    qcfg qc;
    sq_status st = cpath ? sq_model_read_file(m, cpath, MAX_TEXT, &text, &len, err) : sq_err_set(err, SQ_ENOMEM, "out of memory");
    if (!st) st = sq_json_parse_object(cpath, text, len, &cfg, err);
    if (!st && !(q = find_qconfig(m, dir, cfg)))
        st = sq_err_set(err, SQ_EUSAGE, "%s: no quantization_config (and no quantize_config.json): not a GPTQ or AWQ checkpoint", dir);
    if (!st) st = parse_qconfig(q, cpath, &qc, err);
    if (cfg) json_object_object_del(cfg, "quantization_config");
    const char *plain = st ? NULL : json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                            JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!st) st = sq_model_parse_config(m, cpath, plain, strlen(plain), err);
    if (!st) st = read_tensors(m, dir, &set, err);
    if (!st) st = collect(&set, &outs, &n_out, err);
    if (!st && !(w = sq_writer_open(out, NULL, err))) st = err->status;
    if (!st) {
        sq_writer_set_model(w, &m->info);
        sq_writer_add_flags(w, qc.layout == SQ_HF_AWQ ? SQ_FLAG_AWQ : SQ_FLAG_GPTQ);
        char g[24];
        if (qc.group > 0) snprintf(g, sizeof g, "g%lld", (long long)qc.group);
        else snprintf(g, sizeof g, "pc");
        snprintf(rs.scheme, sizeof rs.scheme, "int%d:%s:%s", qc.bits, g, qc.layout != SQ_HF_AWQ && qc.sym ? "sym" : "asym");
        meta = json_object_new_object();
        json_object *prov = json_object_new_object(), *qm = json_object_new_object();
        json_object_object_add(prov, "tool", json_object_new_string("squish-pack import"));
        json_object_object_add(prov, "version", json_object_new_string(SQUISH_VERSION_STRING));
        json_object_object_add(prov, "source_format", json_object_new_string(sq_hf_layout_name(qc.layout)));
        json_object_object_add(prov, "quantization_config", json_object_get(q));
        json_object_object_add(meta, "provenance", prov);
        json_object_object_add(meta, "config", json_object_get(cfg));
        json_object_object_add(qm, "method", json_object_new_string(qc.layout == SQ_HF_AWQ ? "awq" : "gptq"));
        json_object_object_add(qm, "scheme", json_object_new_string(rs.scheme));
        json_object_object_add(meta, "quantization", qm);
        st = sq_writer_set_metadata(w, json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE), err);
    }
    const uint32_t qdt = cfg ? dtype_of_config(cfg) : SQ_DT_F16;
    for (uint32_t i = 0; !st && i < n_out; i++) {
        if (!outs[i].module[0]) {
            st = write_float(w, &outs[i], err);
            rs.copied++;
            continue;
        }
        module_in mi = {outs[i].module, outs[i].e, NULL, NULL, NULL};
        char nm[SQ_MAX_NAME + 16];
        snprintf(nm, sizeof nm, "%s.qzeros", mi.module);
        mi.qzeros = sq_st_find(&set, nm);
        snprintf(nm, sizeof nm, "%s.scales", mi.module);
        mi.scales = sq_st_find(&set, nm);
        snprintf(nm, sizeof nm, "%s.g_idx", mi.module);
        mi.g_idx = qc.layout == SQ_HF_AWQ ? NULL : sq_st_find(&set, nm);
        qcfg mc;
        int permuted = 0;
        st = module_cfg(&qc, mi.module, &mc, err);
        if (!st) st = write_module(w, &mc, &mi, outs[i].name, qdt, &permuted, err);
        rs.packed++;
        rs.permuted += (uint32_t)permuted;
    }
    if (!st) st = embed_files(m, dir, plain, w, &rs.files, err);
    if (w) {
        if (st) sq_writer_abort(w);
        else st = sq_writer_commit(w, err);
    }
    rs.layout = st ? SQ_HF_NONE : qc.layout;
    for (uint32_t i = 0; i < n_out; i++) free(outs[i].owned_name);
    free(outs);
    sq_st_free(&set);
    json_object_put(meta);
    json_object_put(q);
    json_object_put(cfg);
    free(text);
    free(cpath);
    if (r) *r = rs;
    return st;
}

/* ---------------- as a source model ---------------- */

sq_status sq_model_open_hf_quant(sq_model *m, const char *dir, sq_err *err) {
    const char *td = getenv("TMPDIR");
    if (!td || !*td) td = "/tmp";
    size_t n = strlen(td) + strlen(dir) + 64;
    char *tdir = malloc(n), *path = malloc(n + strlen(dir) + 16), *copy = strdup(dir);
    sq_status st = SQ_OK;
    if (!tdir || !path || !copy) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    else {
        snprintf(tdir, n, "%s/squish-hf-import-XXXXXX", td);
        if (!mkdtemp(tdir)) st = sq_err_set(err, SQ_EIO, "cannot create a temporary directory in %s", td);
    }
    if (!st) {
        /* a name that depends only on the model's, for provenance records */
        size_t l = strlen(copy);
        while (l > 1 && copy[l - 1] == '/') copy[--l] = 0;
        const char *base = strrchr(copy, '/');
        snprintf(path, n + strlen(dir) + 16, "%s/%s.squizd", tdir, base ? base + 1 : copy);
        const uint32_t nf0 = m->n_files;
        st = sq_hf_import(m, dir, path, NULL, err);
        for (uint32_t i = nf0; i < m->n_files; i++) { /* the shards were read: the .squizd holds their data */
            if (m->files[i].map && m->files[i].mapped) munmap((void *)m->files[i].map, (size_t)m->files[i].size);
            free(m->files[i].path);
        }
        m->n_files = nf0;
        sq_file *f = st ? NULL : sq_open(path, err);
        if (!st && !f) st = err->status;
        unlink(path);
        rmdir(tdir);
        if (f) {
            m->squizd_owned = 1;
            st = sq_model_from_squizd(m, f, err);
            const char *toks[] = {"tokenizer.json", "tokenizer.model"};
            for (int i = 0; !st && i < 2 && !m->tokenizer_path && !m->vfs; i++) {
                char *tp = join(dir, toks[i]);
                if (tp && access(tp, F_OK) == 0) m->tokenizer_path = tp;
                else free(tp);
            }
        }
    }
    free(tdir);
    free(path);
    free(copy);
    return st;
}
