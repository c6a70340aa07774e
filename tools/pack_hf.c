/* squish-pack export --to hf-gptq|hf-gptq-v2|hf-awq and import of a GPTQ/AWQ
 * directory (see pack_hf.h). */
#include "pack_hf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "squish/codec.h"
#include "squish/fileio.h"
#include "squish/hf_quant.h"
#include "squish/model.h"

int pack_hf_layout(const char *to) { return sq_hf_layout_parse(to) != SQ_HF_NONE; }

static void print_note(void *ctx, const char *text) {
    (void)ctx;
    cli_progress_clear();
    fprintf(stderr, "%s: note: %s\n", cli_prog, text);
}

int pack_export_hf(const char *in, const char *dir, const char *to, int requantize) {
    sq_err err = {0};
    sq_file *f = sq_open(in, &err);
    if (!f) return cli_fail(&err);
    sq_hf_export_opts o = {sq_hf_layout_parse(to), requantize, 0, print_note, NULL};
    o.n_threads = sq_default_threads();
    sq_hf_export_result r;
    sq_status st = sq_hf_export(f, dir, &o, &r, &err);
    sq_close(f);
    if (st) return cli_fail(&err);
    char size[32];
    cli_human_bytes(r.bytes, size, sizeof size);
    cli_note("%s: %s, quantization_config %s: %u modules packed, %u re-quantized, %u tensors in floating point "
             "(%u copied, %u decoded), %u side files; model.safetensors %s\n",
             dir, to, r.scheme, r.packed, r.requantized, r.copied + r.dequantized, r.copied, r.dequantized, r.files, size);
    return EXIT_OK;
}

int pack_import_hf(const char *dir, const char *out) {
    sq_err err = {0};
    sq_model *m = sq_model_new(dir, &err);
    if (!m) return cli_fail(&err);
    char *cpath = malloc(strlen(dir) + 16), *text = NULL, method[64];
    size_t len;
    sq_status st = SQ_OK;
    if (!cpath) st = sq_err_set(&err, SQ_ENOMEM, "out of memory");
    else {
        sprintf(cpath, "%s/config.json", dir);
        st = sq_read_file(cpath, 16u << 20, &text, &len, &err);
    }
    if (!st) st = sq_model_parse_config(m, cpath, text, len, &err);
    int rc = -1;
    if (!st && sq_hf_quant_method(m, dir, method, sizeof method)) {
        sq_hf_import_result r;
        if ((st = sq_hf_import(m, dir, out, &r, &err))) rc = cli_fail(&err);
        else {
            cli_note("%s: %s imported: %u modules as %s (%u with act-order), %u tensors in floating point, %u embedded files\n",
                     out, sq_hf_layout_name(r.layout), r.packed, r.scheme, r.permuted, r.copied, r.files);
            rc = EXIT_OK;
        }
    } else if (st) {
        rc = cli_fail(&err);
    }
    free(cpath);
    free(text);
    sq_model_close(m);
    return rc;
}
