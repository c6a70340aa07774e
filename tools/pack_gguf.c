/* squish-pack export --to gguf: the command-line side of sq_gguf_export
 * (libformat/src/writers/gguf_export.h): one line per tensor, the error of
 * every re-encoded tensor, a summary. */
#include "pack_gguf.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "writers/ggml_blocks.h"
#include "writers/gguf_export.h"

static const char *how_name(sq_gguf_how h) {
    switch (h) {
    case SQ_GGUF_COPIED: return "copied";
    case SQ_GGUF_WIDENED: return "exact (decoded to F32)";
    case SQ_GGUF_REPACKED: return "exact (codes repacked)";
    default: return "re-encoded";
    }
}

typedef struct report_ctx {
    double worst_rel;
    const char *worst;
    char worst_name[256];
} report_ctx;

static void on_tensor(void *vctx, const sq_gguf_tensor_report *r) {
    report_ctx *c = vctx;
    if (r->how == SQ_GGUF_REQUANTIZED) { /* the price of --requantize, always shown unless -q */
        cli_note("%-28s %-22s -> %-5s re-encoded: rmse %.4e, max abs %.4e, relative rmse %.4e\n", r->gguf_name, r->scheme,
                 sq_ggml_type_name(r->type), r->rmse, r->max_abs, r->rel_rmse);
        if (r->rel_rmse >= c->worst_rel) {
            c->worst_rel = r->rel_rmse;
            snprintf(c->worst_name, sizeof c->worst_name, "%s", r->gguf_name);
            c->worst = c->worst_name;
        }
    } else
        cli_note("%-28s %-22s -> %-5s %s\n", r->gguf_name, r->scheme, sq_ggml_type_name(r->type), how_name(r->how));
}

int pack_gguf_is_type(const char *s) {
    uint32_t t;
    return sq_ggml_type_parse(s, &t) == 0;
}

int pack_export_gguf(const char *in, const char *out, const char *requantize, const char *model_dir) {
    sq_gguf_export_opts o;
    memset(&o, 0, sizeof o);
    if (requantize) {
        if (sq_ggml_type_parse(requantize, &o.requant_type))
            return cli_usage_error("--requantize needs Q8_0, Q4_0, Q4_1, F16, BF16 or F32, got '%s'", requantize);
        o.requantize = 1;
    }
    report_ctx ctx = {0, NULL, ""};
    o.model_dir = model_dir;
    o.tensor = on_tensor;
    o.ctx = &ctx;
    sq_gguf_export_result r;
    sq_err err = {0};
    if (sq_gguf_export(in, out, &o, &r, &err)) return cli_fail(&err);
    char sz[32];
    cli_human_bytes(r.file_size, sz, sizeof sz);
    cli_note("%s: GGUF, %u tensors, %s (%llu bytes), general.file_type %u, vocabulary %s from %s\n", out, r.tensors, sz,
             (unsigned long long)r.file_size, r.file_type, r.vocab, r.tokenizer);
    if (r.requantized)
        cli_note("%s: %u tensors re-encoded as %s; largest relative rmse %.4e (%s)\n", out, r.requantized, requantize,
                 ctx.worst_rel, ctx.worst ? ctx.worst : "");
    return EXIT_OK;
}
