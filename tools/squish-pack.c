/* squish-pack: merge, split, re-compress, bundle, export and import .squizd
 * containers. Tensors are copied as stored bytes (no decode) unless
 * re-compression asks otherwise, so checksums and codes stay what they were. */
#include <archive.h>
#include <archive_entry.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "pack_gguf.h"
#include "pack_hf.h"
#include "squish/bundle.h"
#include "squish/codec.h"
#include "squish/container.h"
#include "squish/fileio.h"
#include "squish/model.h"

#define MAX_INPUTS 4096
#define MAX_FILES 256
#define MAX_EMBED ((size_t)1 << 30)

static void usage(FILE *o) {
    fprintf(o,
            "Usage: squish-pack merge PART.squizd... -o OUT.squizd\n"
            "       squish-pack split --max-size SIZE IN.squizd -o OUT.squizd\n"
            "       squish-pack recompress (--zstd LEVEL | --none) [--tca-tbe] IN.squizd -o OUT.squizd\n"
            "       squish-pack bundle [--from MODEL_DIR] [--add FILE]... IN.squizd -o OUT.squizd\n"
            "       squish-pack export --to tar|tar.zst|zip IN.squizd -o OUT.ARCHIVE\n"
            "       squish-pack export --to gguf [--requantize TYPE] [--from MODEL_DIR] IN.squizd -o OUT.gguf\n"
            "       squish-pack export --to hf-gptq|hf-gptq-v2|hf-awq [--requantize] IN.squizd -o DIR\n"
            "       squish-pack import ARCHIVE|DIR -o OUT.squizd\n"
            "Containers in, containers out (and GGUF and Hugging Face checkpoints out); tensors are copied\n"
            "as stored, never re-quantized unless export --requantize asks for it.\n\n"
            "  merge       join the partial files of 'squish-quantize --shard K/N' (all N, any order) into\n"
            "              the file the unsharded run writes, byte for byte\n"
            "  split       cut IN into OUT-00001-of-0000N.squizd... of at most SIZE bytes (K, M, G suffixes;\n"
            "              rounded down to 64 KiB); every squish tool opens the first piece as the whole file\n"
            "  recompress  zstd every part and the metadata at LEVEL (1..19), or store them raw (--none);\n"
            "              --tca-tbe codes the bf16 parts with TCA-TBE instead (lossless; alone: the rest raw)\n"
            "  bundle      embed config.json, tokenizer and README files (from --from DIR: config.json,\n"
            "              generation_config.json, tokenizer.json, tokenizer.model, tokenizer_config.json,\n"
            "              special_tokens_map.json, README.md, LICENSE; and each --add FILE) in the container\n"
            "  export      write the embedded files plus the tensors (as model.squizd) to a tar/zip archive;\n"
            "              --to gguf: a GGUF file for llama.cpp (Llama models): f32/f16/bf16 tensors as they are,\n"
            "              integer codes that fit Q4_0, Q4_1 or Q8_0 exactly (groups of 32 or multiples,\n"
            "              f16 scales, no transforms) repacked without re-quantization; any other tensor is\n"
            "              refused, naming it, unless --requantize TYPE (Q8_0, Q4_0, Q4_1, F16, BF16, F32)\n"
            "              re-encodes it and prints its error; vocabulary from the embedded tokenizer, or\n"
            "              --from MODEL_DIR's\n"
            "  import      read an exported archive (or a Hugging Face model directory packed as tar/zip/\n"
            "              tar.zst, tensors kept in source precision) through libarchive into a bundle\n"
            "  export --to hf-gptq|hf-gptq-v2|hf-awq\n"
            "              write DIR as a Hugging Face GPTQ (AutoGPTQ/GPTQModel; v2: zeros without the minus-one)\n"
            "              or AWQ (AutoAWQ GEMM) checkpoint: integer codes, scales and zeros copied into\n"
            "              qweight/qzeros/scales(/g_idx), config.json with its quantization_config, the embedded\n"
            "              files beside; a tensor the layout cannot hold exactly is refused unless --requantize\n"
            "              (RTN into the layout, its error printed); import DIR reads such a directory back into\n"
            "              exact integer codecs (a model directory without quantization_config: source precision)\n\n"
            "  -o, --output FILE   output (written atomically)\n"
            "  -q, --quiet         no summary on stderr\n"
            "  -h, --help, -V, --version\n"
            "Each subcommand takes only the options shown for it: any other is a usage error.\n\n"
            "Exit status: 0 ok, 2 usage or inputs that do not fit together, 3 I/O error, 4 corrupt input,\n"
            "5 unsupported input, 6 out of memory.\n");
}

/* ---------------- writing a container from parts of others ---------------- */
typedef struct src_tensor {
    sq_file *f;
    const sq_tensor *t;
} src_tensor;

/* An embedded file: the same record as an archive member. */
typedef struct sq_vfile embedded;

typedef struct out_spec {
    const sq_header *h;   /* model facts, alignment and technique flags from here */
    const char *meta;     /* metadata JSON text */
    int meta_level;       /* zstd level for the metadata; 0 = raw */
    int part_level;       /* -1 copy stored bytes; 0 store raw; >0 zstd at this level */
    sq_file *appx_from;   /* copy its non-file appendix blocks (may be NULL) */
    embedded *files;      /* embedded files (type 4), in this order */
    int n_files;
    int files_zstd;       /* 1: zstd the embedded files (merge of --zstd shards); 0: as the parts */
    int tca_tbe;          /* code bf16 parts with TCA-TBE whatever part_level says */
} out_spec;

/* An embedded file as an appendix block of type 4: u16 name_len, name, bytes. */
static sq_status add_embedded(sq_writer *w, const embedded *e, int zstd, sq_err *err) {
    size_t nl = strlen(e->name);
    uint8_t *b = malloc(2 + nl + e->size);
    if (!b) return sq_err_set(err, SQ_ENOMEM, "out of memory for %s", e->name);
    b[0] = (uint8_t)nl;
    b[1] = (uint8_t)(nl >> 8);
    memcpy(b + 2, e->name, nl);
    memcpy(b + 2 + nl, e->data, e->size);
    sq_status st = sq_writer_add_appendix(w, SQ_APPX_FILE, 0, b, 2 + nl + e->size, zstd ? SQ_COMP_ZSTD : SQ_COMP_NONE, err);
    free(b);
    return st;
}

static sq_status write_out(const char *path, const out_spec *o, src_tensor *ts, uint32_t n, sq_err *err) {
    int level = o->part_level > 0 ? o->part_level : o->meta_level > 0 ? o->meta_level : 3;
    sq_writer_opts wo = {o->h->alignment, level, o->meta_level > 0};
    sq_writer *w = sq_writer_open(path, &wo, err);
    if (!w) return err->status;
    sq_model_info info = {o->h->arch, o->h->n_layers, o->h->hidden_size, o->h->n_heads, o->h->n_kv_heads,
                          o->h->vocab_size, o->h->intermediate_size, o->h->sparsity, {0}};
    memcpy(info.calib_hash, o->h->calib_hash, 32);
    sq_writer_set_model(w, &info);
    sq_writer_add_flags(w, o->h->flags & (SQ_FLAG_GPTQ | SQ_FLAG_AWQ));
    sq_status st = sq_writer_set_metadata(w, o->meta, err);
    cli_progress_start("writing", n, "tensors");
    for (uint32_t i = 0; !st && i < n; i++) {
        cli_progress_update(i);
        const sq_tensor *t = ts[i].t;
        st = sq_writer_begin_tensor(w, t->name, t->ndim, t->dims, t->src_dtype, t->codec, t->params, err);
        for (uint32_t k = 0; !st && k < t->n_parts; k++) {
            const sq_part *p = &t->parts[k];
            int tbe = o->tca_tbe && p->dtype == SQ_DT_BF16;
            if (o->part_level < 0 && !tbe) {
                uint64_t fsize;
                const uint8_t *bytes = sq_file_bytes(ts[i].f, &fsize);
                st = sq_writer_add_part_stored(w, p->name, p->dtype, p->ndim, p->dims, bytes + p->offset, p->stored_size,
                                               p->raw_size, p->compression, err);
            } else {
                const void *ptr;
                void *owned;
                st = sq_part_read(ts[i].f, p, 0, &ptr, &owned, err);
                if (!st)
                    st = sq_writer_add_part(w, p->name, p->dtype, p->ndim, p->dims, ptr, p->raw_size,
                                            tbe ? SQ_COMP_TCA_TBE : o->part_level > 0 ? SQ_COMP_ZSTD : SQ_COMP_NONE, err);
                free(owned);
            }
        }
        if (!st) st = sq_writer_end_tensor(w, err);
    }
    for (uint32_t i = 0; !st && o->appx_from && i < sq_file_nappendix(o->appx_from); i++) {
        const sq_appendix *a = sq_file_appendix(o->appx_from, i);
        if (a->type == SQ_APPX_FILE) continue;
        const void *ptr;
        void *owned;
        st = sq_appendix_read(o->appx_from, a, &ptr, &owned, err);
        if (!st) st = sq_writer_add_appendix(w, a->type, a->flags, ptr, a->raw_size,
                                             a->stored_size != a->raw_size ? SQ_COMP_ZSTD : SQ_COMP_NONE, err);
        free(owned);
    }
    for (int i = 0; !st && i < o->n_files; i++) st = add_embedded(w, &o->files[i], o->part_level > 0 || o->files_zstd, err);
    cli_progress_done();
    if (st) {
        sq_writer_abort(w);
        return st;
    }
    return sq_writer_commit(w, err);
}

static int cmp_src(const void *a, const void *b) {
    return sq_tensor_name_cmp(((const src_tensor *)a)->t->name, ((const src_tensor *)b)->t->name);
}

static int meta_zstd_level(json_object *meta) {
    json_object *q, *l;
    if (json_object_object_get_ex(meta, "quantization", &q) && json_object_object_get_ex(q, "zstd_level", &l))
        return json_object_get_int(l);
    return 3;
}

static char *meta_text(json_object *o) {
    return strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* The embedded files of a container (appendix type 4), copied. */
static sq_status read_embedded(sq_file *f, embedded *files, int *n, sq_err *err) {
    for (uint32_t i = 0; i < sq_file_nappendix(f); i++) {
        const sq_appendix *a = sq_file_appendix(f, i);
        if (a->type != SQ_APPX_FILE) continue;
        const char *name;
        size_t nl;
        const uint8_t *data;
        uint64_t size;
        void *owned;
        sq_status st = sq_appendix_file(f, a, &name, &nl, &data, &size, &owned, err);
        if (st) return st;
        if (*n == MAX_FILES) {
            free(owned);
            return sq_err_set(err, SQ_EUSAGE, "%s: more than %d embedded files", sq_file_path(f), MAX_FILES);
        }
        embedded *e = &files[(*n)++];
        e->name = strndup(name, nl);
        e->size = size;
        e->data = malloc(size ? (size_t)size : 1);
        if (e->data) memcpy(e->data, data, (size_t)size);
        free(owned);
        if (!e->name || !e->data) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    return SQ_OK;
}

static void free_embedded(embedded *files, int n) {
    for (int i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].data);
    }
}

static int cmp_embedded(const void *a, const void *b) { return strcmp(((const embedded *)a)->name, ((const embedded *)b)->name); }

/* All tensors of f in file order. */
static src_tensor *all_tensors(sq_file *f, uint32_t *n) {
    *n = sq_file_ntensors(f);
    src_tensor *ts = malloc((*n ? *n : 1) * sizeof *ts);
    for (uint32_t i = 0; ts && i < *n; i++) ts[i] = (src_tensor){f, sq_file_tensor(f, i)};
    return ts;
}

/* Rewrites f with other embedded files and/or part compression. */
static sq_status rewrite(sq_file *f, const char *out, int part_level, embedded *files, int n_files, int meta_level_override,
                         sq_err *err) {
    const char *mt = sq_file_metadata(f, err);
    if (!mt) return err->status;
    json_object *meta = json_tokener_parse(mt);
    if (!meta) return sq_err_set(err, SQ_ECORRUPT, "%s: metadata is not JSON", sq_file_path(f));
    int meta_level = meta_level_override >= 0 ? meta_level_override
                                               : sq_file_header(f)->meta_compression ? meta_zstd_level(meta) : 0;
    uint32_t n;
    src_tensor *ts = all_tensors(f, &n);
    out_spec o = {sq_file_header(f), mt, meta_level, part_level, f, files, n_files, 0, 0};
    sq_status st = ts ? write_out(out, &o, ts, n, err) : sq_err_set(err, SQ_ENOMEM, "out of memory");
    free(ts);
    json_object_put(meta);
    return st;
}

/* ---------------- subcommands ---------------- */
static int cmd_merge(char **in, int n_in, const char *out) {
    sq_err err = {0};
    int rc = EXIT_OK;
    sq_file **f = calloc((size_t)n_in, sizeof *f);
    json_object **meta = calloc((size_t)n_in, sizeof *meta);
    src_tensor *ts = NULL;
    char *common = NULL, *text = NULL;
    sq_bundle bundle = {0}; /* every shard carries the model's bundled files; the merged file has them once */
    int count = 0;
    int64_t total = -1;
    uint32_t n = 0;
    if (!f || !meta) { sq_err_set(&err, SQ_ENOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < n_in; i++) {
        if (!(f[i] = sq_open(in[i], &err))) goto fail;
        const char *mt = sq_file_metadata(f[i], &err);
        if (!mt) goto fail;
        json_object *sh, *k, *c, *t;
        if (!(meta[i] = json_tokener_parse(mt)) || !json_object_object_get_ex(meta[i], "shard", &sh) ||
            !json_object_object_get_ex(sh, "index", &k) || !json_object_object_get_ex(sh, "count", &c) ||
            !json_object_object_get_ex(sh, "tensors", &t)) {
            sq_err_set(&err, SQ_EUSAGE, "%s is not a partial file (no \"shard\" metadata): merge joins the outputs of "
                       "squish-quantize --shard K/N", in[i]);
            goto fail;
        }
        int ki = json_object_get_int(k), ci = json_object_get_int(c);
        if (i == 0) {
            count = ci;
            total = json_object_get_int64(t);
        }
        if (ci != count || json_object_get_int64(t) != total || ki < 1 || ki > count) {
            sq_err_set(&err, SQ_EUSAGE, "%s: shard %d/%d does not belong with %s (shard count %d)", in[i], ki, ci, in[0], count);
            goto fail;
        }
        for (int j = 0; j < i; j++) {
            json_object *sj, *kj;
            json_object_object_get_ex(meta[j], "shard", &sj);
            json_object_object_get_ex(sj, "index", &kj);
            if (json_object_get_int(kj) == ki) {
                sq_err_set(&err, SQ_EUSAGE, "%s and %s are both shard %d/%d", in[j], in[i], ki, count);
                goto fail;
            }
        }
        json_object_object_del(meta[i], "shard");
        char *mine = meta_text(meta[i]);
        if (!mine) { sq_err_set(&err, SQ_ENOMEM, "out of memory"); goto fail; }
        if (i == 0) common = mine;
        else {
            int same = !strcmp(mine, common);
            free(mine);
            if (!same) {
                sq_err_set(&err, SQ_EUSAGE, "%s and %s disagree on their metadata (model, scheme, method or command line)",
                           in[0], in[i]);
                goto fail;
            }
            const sq_header *a = sq_file_header(f[0]), *b = sq_file_header(f[i]);
            if (a->arch != b->arch || a->n_layers != b->n_layers || a->hidden_size != b->hidden_size ||
                a->vocab_size != b->vocab_size || memcmp(a->calib_hash, b->calib_hash, 32) || a->alignment != b->alignment) {
                sq_err_set(&err, SQ_EUSAGE, "%s and %s have different model headers", in[0], in[i]);
                goto fail;
            }
        }
        sq_bundle bi = {0};
        if (sq_bundle_from_file(f[i], i ? &bi : &bundle, &err)) goto fail;
        int same = !i || sq_bundle_equal(&bundle, &bi);
        sq_bundle_free(&bi);
        if (!same) {
            sq_err_set(&err, SQ_EUSAGE, "%s and %s embed different files (config, tokenizer)", in[0], in[i]);
            goto fail;
        }
        n += sq_file_ntensors(f[i]);
    }
    if (n_in != count) {
        sq_err_set(&err, SQ_EUSAGE, "%d of %d shards given: all are needed", n_in, count);
        goto fail;
    }
    if ((int64_t)n != total) {
        sq_err_set(&err, SQ_EUSAGE, "the shards hold %u tensors, the model has %lld", n, (long long)total);
        goto fail;
    }
    if (!(ts = malloc((n ? n : 1) * sizeof *ts))) { sq_err_set(&err, SQ_ENOMEM, "out of memory"); goto fail; }
    n = 0;
    for (int i = 0; i < n_in; i++)
        for (uint32_t k = 0; k < sq_file_ntensors(f[i]); k++) ts[n++] = (src_tensor){f[i], sq_file_tensor(f[i], k)};
    qsort(ts, n, sizeof *ts, cmp_src);
    for (uint32_t i = 1; i < n; i++)
        if (!strcmp(ts[i].t->name, ts[i - 1].t->name)) {
            sq_err_set(&err, SQ_EUSAGE, "tensor %s is in %s and in %s", ts[i].t->name, sq_file_path(ts[i - 1].f),
                       sq_file_path(ts[i].f));
            goto fail;
        }
    {
        const sq_header *h0 = sq_file_header(f[0]);
        int ml = h0->meta_compression ? meta_zstd_level(meta[0]) : 0;
        sq_bundle_sort(&bundle);
        out_spec o = {h0, common, ml, -1, NULL, bundle.files, (int)bundle.n, ml > 0, 0};
        if (write_out(out, &o, ts, n, &err)) goto fail;
    }
    cli_note("%s: %u tensors from %d shards\n", out, n, n_in);
    goto done;
fail:
    rc = cli_fail(&err);
done:
    for (int i = 0; f && i < n_in; i++) {
        sq_close(f[i]);
        if (meta) json_object_put(meta[i]);
    }
    free(f);
    free(meta);
    free(ts);
    free(common);
    free(text);
    sq_bundle_free(&bundle);
    return rc;
}

static int parse_size(const char *s, uint64_t *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return -1;
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024ull * 1024 * 1024, end++;
    if (*end == 'i' && end[1] == 'B') end += 2;
    else if (*end == 'B') end++;
    if (*end) return -1;
    *out = (uint64_t)(v * (double)mul);
    return 0;
}

static int cmd_split(const char *in, const char *out, uint64_t max) {
    sq_err err = {0};
    uint64_t piece = max / 65536 * 65536;
    if (!piece) return cli_usage_error("--max-size must be at least 64 KiB");
    size_t ol = strlen(out);
    if (ol < 8 || strcmp(out + ol - 7, ".squizd")) return cli_usage_error("-o must end in .squizd (pieces are NAME-00001-of-0000N.squizd)");
    sq_file *f = sq_open(in, &err);
    if (!f) return cli_fail(&err);
    uint64_t size;
    const uint8_t *b = sq_file_bytes(f, &size);
    uint64_t count = (size + piece - 1) / piece;
    if (count > 99999) {
        sq_close(f);
        return cli_usage_error("--max-size gives %llu pieces (at most 99999)", (unsigned long long)count);
    }
    sq_tmpout *t = calloc(count, sizeof *t);
    char *name = malloc(ol + 32);
    int rc = EXIT_OK;
    uint64_t made = 0;
    for (uint64_t i = 0; t && name && i < count; i++) {
        sprintf(name, "%.*s-%05llu-of-%05llu.squizd", (int)(ol - 7), out, (unsigned long long)(i + 1), (unsigned long long)count);
        if (sq_tmpout_create(&t[i], name, &err)) { rc = cli_fail(&err); break; }
        made++;
        FILE *fp = fopen(t[i].tmp, "wb");
        uint64_t len = i + 1 < count ? piece : size - i * piece;
        int ok = fp && fwrite(b + i * piece, 1, (size_t)len, fp) == len;
        if (fp && fclose(fp) != 0) ok = 0;
        if (!ok) {
            sq_err_set(&err, SQ_EIO, "%s: write failed (disk full?)", name);
            rc = cli_fail(&err);
            break;
        }
    }
    if (!t || !name) rc = cli_fail((sq_err[]){{SQ_ENOMEM, "out of memory"}});
    for (uint64_t i = 0; i < made; i++) { /* all pieces or none */
        if (rc == EXIT_OK && sq_tmpout_commit(&t[i], &err)) rc = cli_fail(&err);
        else if (rc != EXIT_OK) sq_tmpout_abort(&t[i]);
    }
    if (rc == EXIT_OK) cli_note("%s: %llu pieces of at most %llu bytes\n", out, (unsigned long long)count, (unsigned long long)piece);
    free(t);
    free(name);
    sq_close(f);
    return rc;
}

static int cmd_recompress(const char *in, const char *out, int level, int tca_tbe) {
    sq_err err = {0};
    sq_file *f = sq_open(in, &err);
    if (!f) return cli_fail(&err);
    /* the metadata records the level so that merges can redo it */
    const char *mt = sq_file_metadata(f, &err);
    json_object *meta = mt ? json_tokener_parse(mt) : NULL, *q;
    int rc = EXIT_OK;
    embedded files[MAX_FILES];
    int nf = 0;
    if (!meta) {
        rc = cli_fail(mt ? (sq_err[]){{SQ_ECORRUPT, "metadata is not JSON"}} : &err);
    } else {
        if (json_object_object_get_ex(meta, "quantization", &q)) {
            json_object_object_del(q, "zstd_level");
            if (level) json_object_object_add(q, "zstd_level", json_object_new_int(level));
        }
        char *text = meta_text(meta);
        uint32_t n;
        src_tensor *ts = all_tensors(f, &n);
        if (read_embedded(f, files, &nf, &err)) rc = cli_fail(&err);
        else {
            out_spec o = {sq_file_header(f), text, level, level, f, files, nf, 0, tca_tbe};
            if (write_out(out, &o, ts, n, &err)) rc = cli_fail(&err);
        }
        free(ts);
        free(text);
    }
    free_embedded(files, nf);
    json_object_put(meta);
    sq_close(f);
    return rc;
}

/* Adds a file to the set (replacing one of the same name). */
static sq_status add_file(embedded *files, int *n, const char *name, const char *path, sq_err *err) {
    char *data;
    size_t len;
    sq_status st = sq_read_file(path, MAX_EMBED, &data, &len, err);
    if (st) return st;
    if (strlen(name) > 1024) {
        free(data);
        return sq_err_set(err, SQ_EUSAGE, "%s: file name too long", path);
    }
    for (int i = 0; i < *n; i++)
        if (!strcmp(files[i].name, name)) {
            free(files[i].data);
            files[i].data = (uint8_t *)data;
            files[i].size = len;
            return SQ_OK;
        }
    if (*n == MAX_FILES) {
        free(data);
        return sq_err_set(err, SQ_EUSAGE, "at most %d embedded files", MAX_FILES);
    }
    files[*n] = (embedded){strdup(name), (uint8_t *)data, len};
    (*n)++;
    return SQ_OK;
}

static const char *const bundle_names[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer.model",
                                           "tokenizer_config.json", "special_tokens_map.json", "README.md", "LICENSE"};

static int cmd_bundle(const char *in, const char *out, const char *from, char **adds, int n_adds) {
    sq_err err = {0};
    sq_file *f = sq_open(in, &err);
    if (!f) return cli_fail(&err);
    embedded files[MAX_FILES];
    int nf = 0, rc = EXIT_OK;
    sq_status st = read_embedded(f, files, &nf, &err);
    for (size_t i = 0; !st && from && i < sizeof bundle_names / sizeof bundle_names[0]; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", from, bundle_names[i]);
        if (access(p, R_OK) == 0) st = add_file(files, &nf, bundle_names[i], p, &err);
    }
    for (int i = 0; !st && i < n_adds; i++) {
        char *copy = strdup(adds[i]);
        st = copy ? add_file(files, &nf, basename(copy), adds[i], &err) : SQ_ENOMEM;
        free(copy);
    }
    if (!st && !nf) st = sq_err_set(&err, SQ_EUSAGE, "nothing to bundle (no known files in --from, no --add)");
    qsort(files, (size_t)nf, sizeof *files, cmp_embedded); /* canonical order: the same set gives the same bytes */
    if (!st) st = rewrite(f, out, -1, files, nf, -1, &err);
    if (st) rc = cli_fail(&err);
    else cli_note("%s: %d embedded files\n", out, nf);
    free_embedded(files, nf);
    sq_close(f);
    return rc;
}

static int add_entry(struct archive *a, const char *name, const void *data, size_t size) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 0, 0); /* reproducible archives: no dates, owners */
    int ok = archive_write_header(a, e) == ARCHIVE_OK && (size == 0 || archive_write_data(a, data, size) == (la_ssize_t)size);
    archive_entry_free(e);
    return ok ? 0 : -1;
}

static int cmd_export(const char *in, const char *out, const char *to) {
    sq_err err = {0};
    int kind = !strcmp(to, "tar") ? 0 : !strcmp(to, "tar.zst") ? 1 : !strcmp(to, "zip") ? 2 : -1;
    if (kind < 0) return cli_usage_error("--to needs tar, tar.zst, zip, gguf, hf-gptq, hf-gptq-v2 or hf-awq");
    sq_file *f = sq_open(in, &err);
    if (!f) return cli_fail(&err);
    embedded files[MAX_FILES];
    int nf = 0, rc = EXIT_OK;
    sq_tmpout tmp = {0}, model = {0};
    tmp.slot = model.slot = -1;
    char *mpath = NULL;
    /* the tensors travel as a container without the embedded files (they are archive members) */
    if (read_embedded(f, files, &nf, &err) || sq_tmpout_create(&tmp, out, &err)) goto fail;
    if (!(mpath = malloc(strlen(tmp.tmp) + 16))) { sq_err_set(&err, SQ_ENOMEM, "out of memory"); goto fail; }
    sprintf(mpath, "%s.model.squizd", tmp.tmp);
    if (sq_tmpout_create(&model, mpath, &err) || rewrite(f, model.tmp, -1, NULL, 0, -1, &err)) goto fail;
    {
        char *mdata;
        size_t mlen;
        if (sq_read_file(model.tmp, (size_t)1 << 40, &mdata, &mlen, &err)) goto fail;
        struct archive *a = archive_write_new();
        int ok = a != NULL;
        if (ok && kind == 2) ok = archive_write_set_format_zip(a) == ARCHIVE_OK;
        else if (ok) {
            ok = archive_write_set_format_pax_restricted(a) == ARCHIVE_OK;
            if (ok && kind == 1) ok = archive_write_add_filter_zstd(a) == ARCHIVE_OK;
        }
        ok = ok && archive_write_open_filename(a, tmp.tmp) == ARCHIVE_OK;
        for (int i = 0; ok && i < nf; i++) ok = !add_entry(a, files[i].name, files[i].data, files[i].size);
        ok = ok && !add_entry(a, "model.squizd", mdata, mlen);
        if (a && archive_write_close(a) != ARCHIVE_OK) ok = 0;
        if (!ok) sq_err_set(&err, SQ_EIO, "%s: cannot write the archive: %s", out, a ? archive_error_string(a) : "out of memory");
        if (a) archive_write_free(a);
        free(mdata);
        if (!ok) goto fail;
    }
    sq_tmpout_abort(&model);
    if (sq_tmpout_commit(&tmp, &err)) goto fail;
    cli_note("%s: %d files + model.squizd\n", out, nf);
    goto done;
fail:
    rc = cli_fail(&err);
    sq_tmpout_abort(&model);
    sq_tmpout_abort(&tmp);
done:
    free(mpath);
    free_embedded(files, nf);
    sq_close(f);
    return rc;
}

/* A Hugging Face model directory in an archive: every tensor kept in its
 * source precision, the known side files embedded. */
static sq_status import_model(sq_model *m, const char *out, sq_err *err) {
    embedded files[MAX_FILES];
    int nf = 0;
    for (uint32_t i = 0; i < m->n_vfs; i++)
        for (size_t k = 0; k < sizeof bundle_names / sizeof bundle_names[0]; k++)
            if (!strcmp(m->vfs[i].name, bundle_names[k]) && nf < MAX_FILES) {
                files[nf].name = strdup(m->vfs[i].name);
                files[nf].data = malloc(m->vfs[i].size ? (size_t)m->vfs[i].size : 1);
                files[nf].size = (size_t)m->vfs[i].size;
                if (files[nf].data) memcpy(files[nf].data, m->vfs[i].data, files[nf].size);
                nf++;
            }
    qsort(files, (size_t)nf, sizeof *files, cmp_embedded);
    uint32_t *order = sq_model_order(m);
    sq_writer *w = sq_writer_open(out, NULL, err);
    sq_status st = (!order || !w) ? (w ? sq_err_set(err, SQ_ENOMEM, "out of memory") : err->status) : SQ_OK;
    if (!st) {
        sq_writer_set_model(w, &m->info);
        json_object *root = json_object_new_object(), *prov = json_object_new_object(), *cfg = json_tokener_parse(m->config_json);
        json_object_object_add(prov, "tool", json_object_new_string("squish-pack import"));
        json_object_object_add(prov, "version", json_object_new_string(SQUISH_VERSION));
        json_object_object_add(root, "provenance", prov);
        json_object_object_add(root, "config", cfg ? cfg : json_object_new_object());
        st = sq_writer_set_metadata(w, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE), err);
        json_object_put(root);
    }
    cli_progress_start("importing", m->n_tensors, "tensors");
    for (uint32_t i = 0; !st && i < m->n_tensors; i++) {
        cli_progress_update(i);
        const sq_model_tensor *t = &m->tensors[order[i]];
        uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1];
        const sq_codec *c = sq_codec_for_dtype(t->dtype);
        uint32_t params[SQ_NPARAMS] = {0};
        float *wf = malloc((size_t)n * sizeof(float));
        sq_encoded e = {0};
        st = wf ? sq_model_tensor_f32(m, t, wf, err) : sq_err_set(err, SQ_ENOMEM, "out of memory");
        if (!st) st = sq_encode(c, params, wf, n / cols, cols, 1, &e, err);
        if (!st) st = sq_writer_begin_tensor(w, t->name, t->ndim, t->dims, t->dtype, c->id, params, err);
        for (int k = 0; !st && k < e.nparts; k++)
            st = sq_writer_add_part(w, e.spec[k].name, e.spec[k].dtype, e.spec[k].ndim, e.spec[k].dims, e.data[k], e.bytes[k],
                                    SQ_COMP_NONE, err);
        if (!st) st = sq_writer_end_tensor(w, err);
        sq_encoded_free(&e);
        free(wf);
    }
    cli_progress_done();
    for (int i = 0; !st && i < nf; i++) st = add_embedded(w, &files[i], 0, err);
    if (w) {
        if (st) sq_writer_abort(w);
        else st = sq_writer_commit(w, err);
    }
    free(order);
    free_embedded(files, nf);
    return st;
}

static int cmd_import(const char *in, const char *out) {
    sq_err err = {0};
    struct stat sb;
    if (stat(in, &sb) == 0 && S_ISDIR(sb.st_mode)) { /* a model directory: GPTQ/AWQ exactly, else as read */
        int rc = pack_import_hf(in, out);
        if (rc >= 0) return rc;
        sq_model *m = sq_model_open(in, &err);
        if (!m || import_model(m, out, &err)) rc = cli_fail(&err);
        else rc = EXIT_OK, cli_note("%s: imported the model directory %s\n", out, in);
        sq_model_close(m);
        return rc;
    }
    struct sq_vfile *m_files;
    uint32_t n;
    if (sq_archive_read(in, &m_files, &n, &err)) return cli_fail(&err);
    int squizd = -1, n_models = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t nl = strlen(m_files[i].name);
        if (nl > 7 && !strcmp(m_files[i].name + nl - 7, ".squizd")) {
            squizd = (int)i;
            n_models++;
        }
    }
    sq_status st = SQ_OK;
    if (n_models > 1) st = sq_err_set(&err, SQ_EUSAGE, "%s holds %d .squizd files; export writes one", in, n_models);
    else if (squizd < 0) { /* a model directory: every tensor kept, side files embedded */
        sq_model *m = sq_model_new(in, &err);
        if (!m) st = err.status;
        else {
            st = sq_model_open_vfs(m, in, m_files, n, &err);
            m_files = NULL; /* owned by the model now */
            if (!st && m->squizd) { /* a GPTQ/AWQ checkpoint: read into exact codecs already (squish/hf_quant.h) */
                embedded files[MAX_FILES];
                int nf = 0;
                if (!(st = read_embedded(m->squizd, files, &nf, &err))) st = rewrite(m->squizd, out, -1, files, nf, -1, &err);
                free_embedded(files, nf);
                if (!st) cli_note("%s: imported the GPTQ/AWQ checkpoint in %s\n", out, in);
            } else if (!st && !(st = import_model(m, out, &err))) cli_note("%s: imported the model directory in %s\n", out, in);
            sq_model_close(m);
        }
    } else if (n - 1 > MAX_FILES) {
        st = sq_err_set(&err, SQ_EUSAGE, "%s: more than %d files besides the model", in, MAX_FILES);
    } else { /* an exported bundle: model.squizd plus its files */
        sq_file *f = sq_open_mem(in, m_files[squizd].data, (size_t)m_files[squizd].size, &err);
        embedded files[MAX_FILES];
        int nf = 0;
        for (uint32_t i = 0; i < n; i++)
            if ((int)i != squizd) files[nf++] = m_files[i];
        if (!f) st = err.status;
        else {
            qsort(files, (size_t)nf, sizeof *files, cmp_embedded);
            st = rewrite(f, out, -1, files, nf, -1, &err);
            sq_close(f);
            if (!st) cli_note("%s: model.squizd + %d embedded files\n", out, nf);
        }
    }
    sq_vfiles_free(m_files, m_files ? n : 0);
    return st ? cli_fail(&err) : EXIT_OK;
}

/* The options each subcommand takes besides -o, -q and -h: any other is a
 * usage error, not silently ignored (--zstd given to split would otherwise
 * look as if it had compressed something). */
enum { OPT_MAX_SIZE = 1u << 1, OPT_ZSTD = 1u << 2, OPT_NONE = 1u << 3, OPT_FROM = 1u << 4, OPT_ADD = 1u << 5, OPT_TO = 1u << 6,
       OPT_REQUANTIZE = 1u << 7, OPT_TCA_TBE = 1u << 20 };
static const struct {
    const char *name;
    unsigned opts;
} commands[] = {{"merge", 0},          {"split", OPT_MAX_SIZE}, {"recompress", OPT_ZSTD | OPT_NONE | OPT_TCA_TBE},
                {"bundle", OPT_FROM | OPT_ADD}, {"export", OPT_TO | OPT_FROM | OPT_REQUANTIZE},      {"import", 0}};

int main(int argc, char **argv) {
    cli_prog = "squish-pack";
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) { usage(stdout); return EXIT_OK; }
    if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) { printf("squish-pack %s\n", SQUISH_VERSION); return EXIT_OK; }
    const char *cmd = argv[1];
    unsigned takes = ~0u;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) takes = commands[i].opts;
    if (takes == ~0u) return cli_usage_error("unknown command '%s' (merge, split, recompress, bundle, export, import)", cmd);
    static const struct option lo[] = {{"output", required_argument, 0, 'o'}, {"max-size", required_argument, 0, 1},
                                       {"zstd", required_argument, 0, 2},     {"none", no_argument, 0, 3},
                                       {"from", required_argument, 0, 4},     {"add", required_argument, 0, 5},
                                       {"to", required_argument, 0, 6},       {"quiet", no_argument, 0, 'q'},
                                       {"requantize", optional_argument, 0, 7},
                                       {"help", no_argument, 0, 'h'},         {"tca-tbe", no_argument, 0, 20},
                                       {0, 0, 0, 0}};
    const char *out = NULL, *from = NULL, *to = NULL, *requant = NULL;
    char *adds[MAX_FILES];
    int n_adds = 0, level = -1, tca_tbe = 0, c, li = 0, requantize = 0;
    uint64_t max = 0;
    double v;
    optind = 2;
    opterr = 0; /* our messages name the subcommand */
    while ((c = getopt_long(argc, argv, ":o:qh", lo, &li)) != -1) {
        if (((c >= 1 && c <= 7) || c == 20) && !(takes & (1u << c)))
            return cli_usage_error("--%s does not apply to %s", lo[li].name, cmd);
        switch (c) {
        case 'o': out = optarg; break;
        case 1: if (parse_size(optarg, &max)) return cli_usage_error("bad --max-size '%s'", optarg); break;
        case 2:
            if (cli_parse_double(optarg, &v) || v < 1 || v > 19 || v != (int)v) return cli_usage_error("--zstd needs 1..19");
            level = (int)v;
            break;
        case 3: level = 0; break;
        case 20: tca_tbe = 1; break;
        case 4: from = optarg; break;
        case 5:
            if (n_adds == MAX_FILES) return cli_usage_error("at most %d --add files", MAX_FILES);
            adds[n_adds++] = optarg;
            break;
        case 6: to = optarg; break;
        case 7: /* hf layouts: a flag; --to gguf: --requantize TYPE (or =TYPE) */
            requantize = 1;
            requant = optarg;
            if (!optarg && optind < argc && pack_gguf_is_type(argv[optind])) requant = argv[optind++];
            break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case ':': return cli_usage_error("%s: option '%s' needs a value", cmd, argv[optind - 1]);
        default:
            if (optopt) return cli_usage_error("%s: unknown option '-%c'", cmd, optopt);
            return cli_usage_error("%s: unknown option '%s'", cmd, argv[optind - 1]);
        }
    }
    if (!out) return cli_usage_error("missing -o OUT");
    if (requantize && !requant && to && !strcmp(to, "gguf"))
        return cli_usage_error("--requantize needs a TYPE for --to gguf: Q8_0, Q4_0, Q4_1, F16, BF16 or F32");
    sq_install_signal_cleanup();
    int nin = argc - optind;
    if (!strcmp(cmd, "merge")) {
        if (nin < 1 || nin > MAX_INPUTS) return cli_usage_error("merge needs the partial files");
        return cmd_merge(argv + optind, nin, out);
    }
    if (nin != 1) return cli_usage_error("%s needs exactly one input", cmd);
    const char *in = argv[optind];
    if (!strcmp(cmd, "split")) {
        if (!max) return cli_usage_error("split needs --max-size SIZE");
        return cmd_split(in, out, max);
    }
    if (!strcmp(cmd, "recompress")) {
        if (level < 0 && !tca_tbe) return cli_usage_error("recompress needs --zstd LEVEL, --none or --tca-tbe");
        return cmd_recompress(in, out, level < 0 ? 0 : level, tca_tbe);
    }
    if (!strcmp(cmd, "bundle")) return cmd_bundle(in, out, from, adds, n_adds);
    if (!strcmp(cmd, "export")) {
        if (!to) return cli_usage_error("export needs --to tar|tar.zst|zip|gguf|hf-gptq|hf-gptq-v2|hf-awq");
        if (!strcmp(to, "gguf")) return pack_export_gguf(in, out, requant, from);
        if (from) return cli_usage_error("--from applies to export --to gguf");
        if (pack_hf_layout(to)) {
            if (requant) return cli_usage_error("--requantize takes no TYPE for --to %s", to);
            return pack_export_hf(in, out, to, requantize);
        }
        if (requantize) return cli_usage_error("--requantize applies to --to gguf, hf-gptq, hf-gptq-v2 and hf-awq");
        return cmd_export(in, out, to);
    }
    return cmd_import(in, out);
}
