/* squish-inspect: show what is inside a .squizd file. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "describe.h"
#include "squish/bundle.h"
#include "squish/codec.h"
#include "squish/container.h"
#include "squish/hash.h"

/* The name of an embedded file (appendix type 4: u16 name_len, name, bytes); "" otherwise. */
static void embedded_name(const sq_file *f, const sq_appendix *a, char *out, size_t cap) {
    *out = 0;
    const char *name;
    size_t nl;
    const uint8_t *data;
    uint64_t size;
    void *owned;
    sq_err err;
    if (a->type != SQ_APPX_FILE || sq_appendix_file(f, a, &name, &nl, &data, &size, &owned, &err)) return;
    if (nl < cap) {
        for (size_t i = 0; i < nl; i++) out[i] = ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) ? '?' : name[i];
        out[nl] = 0;
    }
    free(owned);
}

/* The bundled files (config, tokenizer...: squish/bundle.h) as one line, or
 * as JSON [{name, bytes, sha256, tokenizer}]; a malformed block is left to
 * the appendix listing and squish-verify. */
static void bundle_sha256(const struct sq_vfile *e, char hex[65]) {
    sq_sha256 sh;
    uint8_t d[32];
    sq_sha256_init(&sh);
    sq_sha256_update(&sh, e->data, (size_t)e->size);
    sq_sha256_final(&sh, d);
    sq_hex32(d, hex);
}

static void print_bundle(const sq_file *f) {
    sq_bundle b = {0};
    sq_err err;
    if (sq_bundle_from_file(f, &b, &err)) return;
    const struct sq_vfile *tk = sq_bundle_tokenizer(&b, NULL);
    if (!b.n) printf("bundled:       nothing (--eval/--prompt/export need --tokenizer or the model directory)\n");
    for (uint32_t i = 0; i < b.n; i++) {
        char sz[32];
        cli_human_bytes(b.files[i].size, sz, sizeof sz);
        printf("%s%s (%s)%s", i ? ", " : "bundled:       ", b.files[i].name, sz, &b.files[i] == tk ? " [tokenizer]" : "");
    }
    if (b.n) printf("\n");
    sq_bundle_free(&b);
}

static json_object *bundle_json(const sq_file *f) {
    sq_bundle b = {0};
    sq_err err;
    json_object *arr = json_object_new_array();
    if (sq_bundle_from_file(f, &b, &err)) return arr;
    const struct sq_vfile *tk = sq_bundle_tokenizer(&b, NULL);
    for (uint32_t i = 0; i < b.n; i++) {
        char hex[65];
        bundle_sha256(&b.files[i], hex);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(b.files[i].name));
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)b.files[i].size));
        json_object_object_add(o, "sha256", json_object_new_string(hex));
        json_object_object_add(o, "tokenizer", json_object_new_boolean(&b.files[i] == tk));
        json_object_array_add(arr, o);
    }
    sq_bundle_free(&b);
    return arr;
}

/* 1 when a tensor's JSON shows a checksum mismatch (read back, not computed twice). */
static int json_mismatch(json_object *t) {
    json_object *c;
    return json_object_object_get_ex(t, "checksum", &c) && strcmp(json_object_get_string(c), "ok") != 0;
}

static void usage(FILE *o) {
    fprintf(o,
            "Usage: squish-inspect [OPTIONS] FILE\n"
            "Show the header, metadata and tensor table of a .squizd file (FILE '-' reads stdin).\n\n"
            "  -j, --json           machine-readable JSON on stdout (schema: squish-inspect(1))\n"
            "  -t, --tensor NAME    show one tensor and its parts\n"
            "  -m, --metadata       print only the metadata JSON\n"
            "      --no-checksums   do not verify part checksums (faster on large files)\n"
            "  -h, --help           this help\n"
            "  -V, --version        print the version\n\n"
            "Exit status: 0 ok, 2 usage, 3 I/O error, 4 corrupt file (also when a checksum MISMATCH\n"
            "is shown), 5 unsupported version, 6 resource limit. Full checks are done by squish-verify(1).\n");
}

/* Tensors by scheme (as described, transforms included), in order of first
 * appearance: how many, their elements and stored bytes before compression
 * (the bytes the bpw column counts). */
typedef struct scheme_sum {
    char scheme[64];
    uint32_t tensors;
    uint64_t elements, bytes;
} scheme_sum;

static int sum_schemes(const sq_file *f, scheme_sum **out) {
    uint32_t n = sq_file_ntensors(f);
    scheme_sum *s = calloc(n ? n : 1, sizeof *s);
    int k = 0;
    if (!s) return -1;
    for (uint32_t i = 0; i < n; i++) {
        const sq_tensor *t = sq_file_tensor(f, i);
        char scheme[64];
        describe_scheme(t, scheme, sizeof scheme);
        int j = 0;
        while (j < k && strcmp(s[j].scheme, scheme)) j++;
        if (j == k) snprintf(s[k++].scheme, sizeof s->scheme, "%s", scheme);
        s[j].tensors++;
        s[j].elements += tensor_elems(t);
        s[j].bytes += tensor_raw_bytes(t);
    }
    *out = s;
    return k;
}

static void print_schemes(const sq_file *f) {
    scheme_sum *s;
    int k = sum_schemes(f, &s);
    if (k < 0) return;
    uint64_t all = 0;
    for (int j = 0; j < k; j++) all += s[j].bytes;
    printf("\n%-28s %7s %12s %14s %7s %6s\n", "SCHEME", "TENSORS", "ELEMENTS", "BYTES", "BPW", "SHARE");
    for (int j = 0; j < k; j++)
        printf("%-28s %7u %12llu %14llu %7.3f %5.1f%%\n", s[j].scheme, s[j].tensors, (unsigned long long)s[j].elements,
               (unsigned long long)s[j].bytes, s[j].elements ? 8.0 * (double)s[j].bytes / (double)s[j].elements : 0.0,
               all ? 100.0 * (double)s[j].bytes / (double)all : 0.0);
    free(s);
}

static json_object *schemes_json(const sq_file *f) {
    scheme_sum *s;
    json_object *arr = json_object_new_array();
    int k = sum_schemes(f, &s);
    for (int j = 0; j < k; j++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "scheme", json_object_new_string(s[j].scheme));
        json_object_object_add(o, "tensors", json_object_new_int64(s[j].tensors));
        json_object_object_add(o, "elements", json_object_new_int64((int64_t)s[j].elements));
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)s[j].bytes));
        json_object_object_add(o, "bpw", json_object_new_double(s[j].elements ? 8.0 * (double)s[j].bytes / (double)s[j].elements : 0));
        json_object_array_add(arr, o);
    }
    if (k >= 0) free(s);
    return arr;
}

/* mix (spec/codecs.md §14): how many blocks took each width of the set
 * (params[5]), from the widths part; nothing for other codecs or a tensor
 * whose parts do not pass the codec's checks. */
static void print_width_histogram(const sq_file *f, const sq_tensor *t) {
    const sq_codec *c = sq_codec_by_id(t->codec);
    if (!c || c->family != SQ_FAMILY_MIXED) return;
    sq_tview v;
    void *owned[SQ_CODEC_MAX_PARTS];
    sq_err err;
    if (sq_tview_open(f, t, 1, &v, owned, &err)) return;
    const uint8_t *wd = sq_tview_part(&v, "widths");
    const uint64_t B = v.params[SQ_P_GROUP], nb = B ? (v.cols + B - 1) / B : 0, wb = (nb + 3) / 4;
    uint64_t h[4] = {0};
    for (uint64_t r = 0; wd && r < v.rows; r++)
        for (uint64_t j = 0; j < nb; j++) h[wd[r * wb + j / 4] >> (2 * (j % 4)) & 3]++;
    printf("\nblock widths:");
    for (int k = 0; k < 4; k++)
        printf(" %u bits %llu (%.1f%%)%s", v.params[5] >> (4 * k) & 15u, (unsigned long long)h[k],
               (nb * v.rows) != 0 ? 100.0 * (double)h[k] / (double)(nb * v.rows) : 0.0, k < 3 ? "," : "\n");
    sq_tview_close(&v, owned);
}

/* Each printer returns how many checksum mismatches it showed. */
static int print_tensor_parts(const sq_file *f, const sq_tensor *t, int check) {
    int bad = 0;
    char shape[128], scheme[128];
    describe_shape(t->dims, t->ndim, shape, sizeof shape);
    describe_scheme(t, scheme, sizeof scheme);
    uint64_t e = tensor_elems(t), raw = tensor_raw_bytes(t);
    printf("tensor:       %s\n", t->name);
    printf("shape:        %s\n", shape);
    printf("source dtype: %s\n", sq_dtype_name(t->src_dtype));
    printf("scheme:       %s (codec id %u)\n", scheme, t->codec);
    printf("params:      ");
    for (int i = 0; i < SQ_NPARAMS; i++) printf(" %u", t->params[i]);
    printf("\nbpw:          %.4f\n", e ? 8.0 * (double)raw / (double)e : 0.0);
    printf("index record: byte %llu\n\n", (unsigned long long)t->rec_offset);
    printf("%-14s %-5s %-18s %12s %12s %12s %-7s %-16s %s\n", "PART", "DTYPE", "SHAPE", "OFFSET", "STORED", "RAW", "COMP",
           "XXH64", check ? "CHECK" : "");
    uint64_t size;
    const uint8_t *base = sq_file_bytes(f, &size);
    for (uint32_t i = 0; i < t->n_parts; i++) {
        const sq_part *p = &t->parts[i];
        describe_shape(p->dims, p->ndim, shape, sizeof shape);
        const char *st = "";
        if (check) st = sq_xxh64(base + p->offset, (size_t)p->stored_size, 0) == p->checksum ? "ok" : "MISMATCH";
        bad += !strcmp(st, "MISMATCH");
        printf("%-14s %-5s %-18s %12llu %12llu %12llu %-7s %016llx %s\n", p->name, sq_dtype_name(p->dtype), shape,
               (unsigned long long)p->offset, (unsigned long long)p->stored_size, (unsigned long long)p->raw_size,
               sq_compression_name(p->compression), (unsigned long long)p->checksum, st);
    }
    print_width_histogram(f, t);
    return bad;
}

static int print_text(sq_file *f, int check) {
    int bad = 0;
    const sq_header *h = sq_file_header(f);
    char b[512], sz[32];
    cli_human_bytes(h->file_size, sz, sizeof sz);
    printf("file:          %s\n", sq_file_path(f));
    printf("format:        squizd %u.%u, %s (%llu bytes), alignment %u\n", h->major, h->minor, sz,
           (unsigned long long)h->file_size, h->alignment);
    printf("architecture:  %s\n", sq_arch_name(h->arch));
    printf("model:         %u layers, hidden %u, %u heads (%u kv), vocab %u, intermediate %u\n", h->n_layers, h->hidden_size,
           h->n_heads, h->n_kv_heads, h->vocab_size, h->intermediate_size);
    printf("average bpw:   %.4f\n", (double)h->avg_bpw);
    printf("sparsity:      %.4f\n", (double)h->sparsity);
    describe_flags(h->flags, b, sizeof b);
    printf("flags:         %s\n", b);
    static const uint8_t zero[32];
    if (memcmp(h->calib_hash, zero, 32)) sq_hex32(h->calib_hash, b);
    else snprintf(b, sizeof b, "none");
    printf("calibration:   %s\n", b);
    cli_human_bytes(h->meta_raw_size, sz, sizeof sz);
    printf("metadata:      %s JSON%s\n", sz, h->meta_compression ? " (zstd)" : "");
    printf("tensors:       %u\n", h->n_tensors);
    printf("appendix:      %u block%s\n", h->n_appendix, h->n_appendix == 1 ? "" : "s");
    for (uint32_t i = 0; i < sq_file_nappendix(f); i++) {
        const sq_appendix *a = sq_file_appendix(f, i);
        char name[1100];
        embedded_name(f, a, name, sizeof name);
        printf("  type %u%s%s%s, %llu bytes%s\n", a->type, *name ? " file " : "", name,
               (a->flags & SQ_APPX_F_REQUIRED) ? " (required)" : "", (unsigned long long)a->raw_size,
               a->stored_size != a->raw_size ? " (zstd)" : "");
    }
    print_bundle(f);
    printf("\n%-48s %-16s %-6s %-22s %7s %12s %-7s %s\n", "NAME", "SHAPE", "SRC", "SCHEME", "BPW", "BYTES", "COMP",
           check ? "CHECKSUM" : "");
    for (uint32_t i = 0; i < sq_file_ntensors(f); i++) {
        const sq_tensor *t = sq_file_tensor(f, i);
        char shape[64], scheme[64];
        describe_shape(t->dims, t->ndim, shape, sizeof shape);
        describe_scheme(t, scheme, sizeof scheme);
        uint64_t e = tensor_elems(t), raw = tensor_raw_bytes(t), stored = tensor_stored_bytes(t);
        unsigned kinds = 0; /* the compressions its parts use: none, one name, or "mixed" */
        for (uint32_t k = 0; k < t->n_parts; k++)
            if (t->parts[k].compression) kinds |= 1u << (t->parts[k].compression & 31);
        const char *comp = !kinds ? "none" : !(kinds & (kinds - 1)) ? sq_compression_name((uint32_t)__builtin_ctz(kinds)) : "mixed";
        int sum_ok = !check || tensor_checksums_ok(f, t);
        bad += !sum_ok;
        printf("%-48s %-16s %-6s %-22s %7.3f %12llu %-7s %s\n", t->name, shape, sq_dtype_name(t->src_dtype), scheme,
               e ? 8.0 * (double)raw / (double)e : 0.0, (unsigned long long)stored, comp,
               check ? (sum_ok ? "ok" : "MISMATCH") : "");
    }
    print_schemes(f);
    return bad;
}

int main(int argc, char **argv) {
    cli_prog = "squish-inspect";
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},       {"tensor", required_argument, 0, 't'},
                                         {"metadata", no_argument, 0, 'm'},   {"no-checksums", no_argument, 0, 'C'},
                                         {"help", no_argument, 0, 'h'},       {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    int json = 0, meta_only = 0, check = 1, c;
    const char *tensor = NULL;
    while ((c = getopt_long(argc, argv, "jt:mhV", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 't': tensor = optarg; break;
        case 'm': meta_only = 1; break;
        case 'C': check = 0; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("squish-inspect %s\n", SQUISH_VERSION); return EXIT_OK;
        default: return cli_usage_error("invalid option");
        }
    }
    if (optind != argc - 1) return cli_usage_error("expected exactly one FILE");
    sq_err err = {0};
    sq_file *f = sq_open(argv[optind], &err);
    if (!f) return cli_fail(&err);
    int rc = EXIT_OK;
    const char *meta = sq_file_metadata(f, &err);
    if (!meta) {
        rc = cli_fail(&err);
        goto out;
    }
    if (meta_only) {
        printf("%s\n", meta);
        goto out;
    }
    const sq_tensor *one = NULL;
    if (tensor && !(one = sq_file_find(f, tensor))) {
        fprintf(stderr, "%s: no tensor named '%s' in %s\n", cli_prog, tensor, argv[optind]);
        rc = EXIT_USAGE;
        goto out;
    }
    int bad = 0; /* tensors (or parts, with --tensor) shown with a checksum mismatch */
    if (json) {
        json_object *root;
        if (one) {
            root = describe_tensor_json(f, one, 1, check);
            bad += json_mismatch(root);
        } else {
            root = json_object_new_object();
            json_object_object_add(root, "schema", json_object_new_string("squish-inspect/1"));
            json_object_object_add(root, "file", json_object_new_string(argv[optind]));
            json_object_object_add(root, "header", describe_header_json(sq_file_header(f)));
            json_object *mo = json_tokener_parse(meta);
            json_object_object_add(root, "metadata", mo);
            json_object *ts = json_object_new_array();
            for (uint32_t i = 0; i < sq_file_ntensors(f); i++) {
                json_object *to = describe_tensor_json(f, sq_file_tensor(f, i), 1, check);
                bad += json_mismatch(to);
                json_object_array_add(ts, to);
            }
            json_object_object_add(root, "tensors", ts);
            json_object_object_add(root, "schemes", schemes_json(f));
            json_object *ap = json_object_new_array();
            for (uint32_t i = 0; i < sq_file_nappendix(f); i++) {
                const sq_appendix *a = sq_file_appendix(f, i);
                json_object *ao = json_object_new_object();
                json_object_object_add(ao, "type", json_object_new_int64(a->type));
                json_object_object_add(ao, "required", json_object_new_boolean(a->flags & SQ_APPX_F_REQUIRED));
                json_object_object_add(ao, "raw_size", json_object_new_int64((int64_t)a->raw_size));
                json_object_object_add(ao, "stored_size", json_object_new_int64((int64_t)a->stored_size));
                char name[1100];
                embedded_name(f, a, name, sizeof name);
                if (*name) json_object_object_add(ao, "file", json_object_new_string(name));
                json_object_array_add(ap, ao);
            }
            json_object_object_add(root, "appendix", ap);
            json_object_object_add(root, "bundled", bundle_json(f));
        }
        printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
    } else if (one) {
        bad = print_tensor_parts(f, one, check);
    } else {
        bad = print_text(f, check);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "%s: error writing to standard output\n", cli_prog);
        rc = EXIT_IO;
    } else if (bad) { /* shown, and also an error: scripts must not take a damaged file for a good one */
        fprintf(stderr, "%s: %s: checksum MISMATCH in %d %s (squish-verify names each damaged part)\n", cli_prog,
                argv[optind], bad, one && !json ? (bad == 1 ? "part" : "parts") : (bad == 1 ? "tensor" : "tensors"));
        rc = EXIT_CORRUPT;
    }
out:
    sq_close(f);
    return rc;
}
