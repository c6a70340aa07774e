/* squish-quantize: read a model, write every tensor in a chosen scheme.
 * Argument parsing and printing; the work is sq_quantize_model's. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "quantize_model.h"
#include "squish/codec.h"
#include "squish/container.h"

static void usage(FILE *o) {
    fprintf(o,
            "Usage: squish-quantize [OPTIONS] MODEL -o OUT.squizd --scheme SCHEME\n"
            "       squish-quantize [OPTIONS] MODEL -o OUT.squizd --calib FILE.h5 --target-bpw X\n"
            "Quantize a model (Hugging Face directory, llama2.c .bin, .gguf, or a .squizd to re-quantize)\n"
            "into a .squizd file. The model is first checked against its configuration.\n\n"
            "  -o, --output FILE         output file ('-' = standard output); written atomically\n"
            "  -s, --scheme SCHEME       scheme for linear weights, e.g. int4:g128:asym (see below)\n"
            "  -r, --rule REGEX=SCHEME   scheme for tensors whose name matches REGEX (POSIX extended);\n"
            "                            first match wins; SCHEME 'keep' keeps source precision; a rule\n"
            "                            that selects no tensor is warned about\n"
            "      --output-scheme S     scheme for lm_head.weight (default: keep)\n"
            "      --target-bpw X        choose each tensor's scheme from --candidates so that the stored\n"
            "                            bits per weight over --over's set land within 0.02 of X with the\n"
            "                            least predicted loss (relative output error tr(dW H dW^T)/tr(W H W^T)\n"
            "                            from --calib; lm_head with the file's /output X^T X, its rows\n"
            "                            weighted by the entries' mean probability; embeddings: relative\n"
            "                            weight error, rows weighted by token counts; older files: H = I);\n"
            "                            needs --calib; scalar candidates by GPTQ unless --method rtn\n"
            "      --over all|matrices   the set X counts over and the allocator chooses for: matrices\n"
            "                            (default: the blocks' linear layers; other tensors as --scheme,\n"
            "                            --rule, --output-scheme say) or all (embeddings and lm_head too;\n"
            "                            norms kept, counted)\n"
            "      --candidates LIST     comma-separated schemes to choose from (default: quip:2,\n"
            "                            int3:g128:asym,int3:g64:asym,quip:3,int4:g128:asym,int4:g64:asym,\n"
            "                            int4:g32:asym,quip:4, spqr:wW:bB:r64:sb6:mse:t0 for W 3..6 and B\n"
            "                            64,32 (and 16 at W 3,4), fp6_e2m3:g32,int8); each tensor gets those\n"
            "                            that apply to it; an --alloc-table supplies those it holds\n"
            "      --alloc-weight REGEX=W  multiply the predicted losses of tensors whose name matches REGEX\n"
            "                            by W (first match; default 1): per-layer sensitivity coefficients\n"
            "      --alloc-table R.json  take the candidates' bytes and losses from the --report of an earlier\n"
            "                            --target-bpw run (same model, --calib, --over, options) instead of\n"
            "                            encoding them all (the candidates it lacks are encoded): another\n"
            "                            target costs one encoding per tensor\n"
            "                            (and its probes, when taken with the same probe setting)\n"
            "      --alloc-probe N       measure each allocated tensor's sensitivity: the KL-divergence of\n"
            "                            the model with only that tensor replaced by its cheapest and its\n"
            "                            median candidate, on N windows of 512 tokens of the probe text;\n"
            "                            the losses then follow the probes (see ALLOCATION)\n"
            "      --alloc-probe-text F  the probe text (UTF-8, tokenized with the model's tokenizer): use\n"
            "                            the calibration text, not the text you evaluate on\n"
            "      --alloc-probe-ids F   the probe text as token ids (whitespace-separated)\n"
            "      --method M            rtn (default), gptq or awq; gptq and awq need --calib\n"
            "      --calib FILE.h5       calibration statistics from squish-calibrate (same model); with\n"
            "                            rtn, only adds each linear layer's output error to the report\n"
            "      --sequential[=true|block]  quantize block by block, as the GPTQ and SpQR reference code do:\n"
            "                            each block's X^T X (and |x| statistics) come from the calibration\n"
            "                            windows passed through the already-quantized earlier blocks (decoded\n"
            "                            weights); true (default): within a block q/k/v, then o, then\n"
            "                            gate/up, then down, each on the outputs of those before it; block:\n"
            "                            the block's four inputs from one pass before any is quantized; for\n"
            "                            gptq and the calibrated codecs (spqr, quip, aqlm); needs --calib-text;\n"
            "                            with --target-bpw the choice is made on --calib's statistics and\n"
            "                            only the final encoding is sequential\n"
            "      --calib-text FILE     the calibration text --calib was made from (each --text given to\n"
            "                            squish-calibrate, in order; checked against the file's text_sha256)\n"
            "      --sequential-stats F  also write the statistics the sequential pass gathered (HDF5, as\n"
            "                            squish-calibrate writes)\n"
            "      --damp X              GPTQ relative damping (default 0.01; raised x10 up to 1.0 when\n"
            "                            the Cholesky factorization fails, and reported)\n"
            "      --act-order           GPTQ: columns in order of decreasing Hessian diagonal\n"
            "      --static-groups       GPTQ with --act-order: group scales fitted before, original order\n"
            "      --gptq-cd N           GPTQ: passes of coordinate descent on the codes after the sweep\n"
            "                            (scalar codecs; default 4, 0 = the reference's GPTQ)\n"
            "      --awq-duo             AWQ: AutoAWQ's duo scaling (activation and weight means)\n"
            "      --awq-no-clip         AWQ: skip the clipping-range search\n"
            "      --hessian full|diag   diag: GPTQ and the calibrated codecs see only the diagonal of\n"
            "                            each layer's X^T X (an importance vector); default full\n"
            "      --quip-no-refit       quip: keep the initial per-row scales (no least-squares refit)\n"
            "      --quip-no-rht         quip: no randomized Hadamard transforms\n"
            "                            (--method rtn given with quip: nearest rounding after the\n"
            "                            transforms, no BlockLDLQ; these three are ablations)\n"
            "      --shard K/N           only the K-th of N parts (blocks by layer ranges); 'squish-pack\n"
            "                            merge' joins the N partial files into the unsharded file\n"
            "      --report FILE.json    write the per-tensor error report as JSON ('-' = standard output);\n"
            "                            with --target-bpw also the allocation (candidates, bytes, losses)\n"
            "      --zstd LEVEL          zstd-compress every part (1..19; default: off)\n"
            "      --no-bundle           do not embed the model's config.json, generation_config.json,\n"
            "                            tokenizer (tokenizer.json, tokenizer.model or llama2.c tok*.bin),\n"
            "                            tokenizer_config.json and special_tokens_map.json (embedded by\n"
            "                            default, so the file evaluates, generates and exports on its own)\n"
            "      --tca-tbe             code every bf16 part (tensors kept in bf16, bf16 scales) with\n"
            "                            TCA-TBE, lossless (other parts as --zstd says); a part it\n"
            "                            would not make smaller is stored raw\n"
            "  -T, --threads N           worker threads (default or 0: all cores; output does not depend on it)\n"
            "  -q, --quiet               no report or progress on stderr\n"
            "      --list-schemes        list codecs and their options\n"
            "  -h, --help                this help\n"
            "  -V, --version             print the version\n\n"
            "SCHEME is CODEC[:gN|:pc|:pt][:sym|:asym][:dq][:s16|:sbf16|:s32].\n"
            "Embeddings, norms and other 1-D tensors keep their source precision unless a rule says otherwise.\n\n"
            "Exit status: 0 ok, 2 usage, 3 I/O error, 4 corrupt or non-finite input or tensors that do not\n"
            "match the model's configuration, 5 unsupported input, 6 out of memory.\n");
}

static void list_schemes(void) {
    const sq_codec *const *l = sq_codec_list();
    printf("%-12s %-9s %-24s %s\n", "CODEC", "ID", "DEFAULT", "BPW (4096x4096)");
    for (int i = 0; l[i]; i++) {
        uint32_t p[SQ_NPARAMS];
        const sq_codec *c;
        char s[64];
        sq_scheme_parse(l[i]->name, &c, p, NULL);
        sq_scheme_format(c, p, s, sizeof s);
        /* parts sized by the data (SpQR's outliers) count as empty here: say so rather than guess */
        sq_part_spec sp[SQ_CODEC_MAX_PARTS];
        int np = sq_layout(c, p, 4096, 4096, sp), data_sized = 0;
        for (int k = 0; k < np; k++) data_sized |= (sp[k].flags & SQ_PART_DATA_DIM0) != 0;
        printf("%-12s %-9u %-24s %.4f%s\n", c->name, c->id, s, sq_layout_bpw(c, p, 4096, 4096),
               data_sized ? " + outliers (32 bits each) + act-order perm (32/rows); needs --calib" : "");
    }
}

#define MAX_RULES 64
#define MAX_CALIB_TEXTS 64 /* squish-calibrate's limit on --text */

/* Whether --scheme, --output-scheme or a rule names the codec. */
static int uses_codec(const sq_scheme_rules *sc, const char *name) {
    if ((sc->codec && !strcmp(sc->codec->name, name)) || (sc->out_codec && !strcmp(sc->out_codec->name, name))) return 1;
    for (int i = 0; i < sc->n_rules; i++)
        if (sc->rules[i].codec && !strcmp(sc->rules[i].codec->name, name)) return 1;
    return 0;
}

static int parse_scheme_or_keep(const char *s, const sq_codec **c, uint32_t *p) {
    sq_err err;
    if (sq_scheme_parse_or_keep(s, c, p, &err)) {
        fprintf(stderr, "%s: %s\n", cli_prog, err.msg);
        return -1;
    }
    return 0;
}

/* ---- what the library reports, printed ---- */

static void on_message(void *ctx, sq_quantize_level level, const char *text) {
    cli_progress_clear(); /* messages go where the progress line is */
    if (level == SQ_QUANTIZE_NOTE && cli_quiet) return;
    fprintf(stderr, "%s: %s: %s\n", cli_prog, level == SQ_QUANTIZE_NOTE ? "note" : "warning", text);
}

static void on_begin(void *ctx, uint64_t weights) {
    if (!cli_quiet)
        fprintf(stderr, "%-48s %-22s %7s %11s %11s %9s %8s\n", "TENSOR", "SCHEME", "BPW", "RMSE", "MAX_ABS", "COSINE", "SNR_DB");
    cli_progress_start("quantizing", weights, NULL);
}

static void on_tensor(void *ctx, const sq_quantize_tensor_report *r) {
    cli_progress_clear(); /* the report line goes where the progress line is */
    if (!cli_quiet)
    {
        fprintf(stderr, "%-48s %-22s %7.3f %11.4e %11.4e %9.6f %8.2f", r->name, r->scheme, r->bpw, r->rmse, r->max_abs,
                r->cosine, isinf(r->snr_db) ? 999.99 : r->snr_db);
        if (r->alloc_loss >= 0) fprintf(stderr, " %10llu bytes, predicted loss %.4e", (unsigned long long)r->bytes, r->alloc_loss);
        fputc('\n', stderr);
    }
}

static void on_progress(void *ctx, uint64_t done, uint64_t total) { cli_progress_update(done); }
static void on_end(void *ctx) { cli_progress_done(); }

int main(int argc, char **argv) {
    cli_prog = "squish-quantize";
    static const struct option lo[] = {{"output", required_argument, 0, 'o'},  {"scheme", required_argument, 0, 's'},
                                       {"rule", required_argument, 0, 'r'},    {"output-scheme", required_argument, 0, 1},
                                       {"report", required_argument, 0, 2},    {"zstd", required_argument, 0, 3},
                                       {"list-schemes", no_argument, 0, 4},    {"threads", required_argument, 0, 'T'},
                                       {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},       {"method", required_argument, 0, 5},
                                       {"calib", required_argument, 0, 6},     {"damp", required_argument, 0, 7},
                                       {"act-order", no_argument, 0, 8},       {"static-groups", no_argument, 0, 9},
                                       {"awq-duo", no_argument, 0, 10},        {"awq-no-clip", no_argument, 0, 11},
                                       {"shard", required_argument, 0, 12},    {"no-bundle", no_argument, 0, 13},
                                       {"hessian", required_argument, 0, 16},  {"quip-no-refit", no_argument, 0, 14},
                                       {"quip-no-rht", no_argument, 0, 15},
                                       {"tca-tbe", no_argument, 0, 40},        {"target-bpw", required_argument, 0, 41},
                                       {"over", required_argument, 0, 42},     {"candidates", required_argument, 0, 43},
                                       {"alloc-table", required_argument, 0, 44},
                                       {"alloc-weight", required_argument, 0, 45},
                                       {"alloc-probe", required_argument, 0, 46},
                                       {"alloc-probe-text", required_argument, 0, 47},
                                       {"alloc-probe-ids", required_argument, 0, 48},
                                       {"sequential", optional_argument, 0, 50},
                                       {"calib-text", required_argument, 0, 51},
                                       {"sequential-stats", required_argument, 0, 52},
                                       {"gptq-cd", required_argument, 0, 53},
                                       {0, 0, 0, 0}};
    sq_quantize_opts o;
    sq_quantize_opts_init(&o);
    sq_scheme_rule rules[MAX_RULES];
    sq_scheme_rules *sc = &o.scheme;
    sc->rules = rules;
    int c, rc = EXIT_OK, method_rtn_given = 0, method_given = 0, over_given = 0, cd_given = 0;
    const char *candidates = NULL;
    const char *calib_texts[MAX_CALIB_TEXTS];
    while ((c = getopt_long(argc, argv, "o:s:r:T:qhV", lo, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case 's':
            if (parse_scheme_or_keep(optarg, &sc->codec, sc->params) || !sc->codec)
                return cli_usage_error("bad --scheme '%s'", optarg);
            break;
        case 'r': {
            char *eq = strrchr(optarg, '=');
            if (!eq || eq == optarg) return cli_usage_error("--rule needs REGEX=SCHEME, got '%s'", optarg);
            if (sc->n_rules == MAX_RULES) return cli_usage_error("at most %d rules", MAX_RULES);
            sq_scheme_rule *r = &rules[sc->n_rules];
            r->text = optarg;
            *eq = 0;
            int e = regcomp(&r->re, optarg, REG_EXTENDED | REG_NOSUB);
            if (e) {
                char msg[256];
                regerror(e, &r->re, msg, sizeof msg);
                return cli_usage_error("--rule: bad regex '%s': %s", optarg, msg);
            }
            if (parse_scheme_or_keep(eq + 1, &r->codec, r->params)) return cli_usage_error("bad scheme in --rule");
            *eq = '=';
            sc->n_rules++;
            break;
        }
        case 1:
            if (parse_scheme_or_keep(optarg, &sc->out_codec, sc->out_params)) return cli_usage_error("bad --output-scheme");
            break;
        case 2: o.report = optarg; break;
        case 3: {
            double z;
            if (cli_parse_double(optarg, &z) || z < 1 || z > 19 || z != (int)z) return cli_usage_error("--zstd needs 1..19");
            o.zstd = (int)z;
            break;
        }
        case 4: list_schemes(); return EXIT_OK;
        case 5:
            method_given = 1;
            method_rtn_given = !strcmp(optarg, "rtn");
            if (!strcmp(optarg, "rtn")) o.method = SQ_METHOD_RTN;
            else if (!strcmp(optarg, "gptq")) o.method = SQ_METHOD_GPTQ;
            else if (!strcmp(optarg, "awq")) o.method = SQ_METHOD_AWQ;
            else return cli_usage_error("--method needs rtn, gptq or awq");
            break;
        case 6: o.calib = optarg; break;
        case 7:
            if (cli_parse_double(optarg, &o.gptq.damp) || !(o.gptq.damp > 0) || o.gptq.damp > 1)
                return cli_usage_error("--damp needs a number in (0, 1]");
            break;
        case 8: o.gptq.act_order = 1; break;
        case 9: o.gptq.static_groups = 1; break;
        case 10: o.awq.duo = 1; break;
        case 11: o.awq.clip = 0; break;
        case 12: {
            if (cli_parse_shard(optarg, &o.shard_k, &o.shard_n)) return cli_usage_error("--shard needs K/N with 1 <= K <= N <= 4096");
            break;
        }
        case 13: o.no_bundle = 1; break;
        case 16:
            if (strcmp(optarg, "full") && strcmp(optarg, "diag")) return cli_usage_error("--hessian needs full or diag");
            o.hessian_diag = !strcmp(optarg, "diag");
            break;
        case 14: o.enc_flags |= SQ_ENC_NO_REFIT; break;
        case 15: o.enc_flags |= SQ_ENC_NO_RHT; break;
        case 40: o.tca_tbe = 1; break;
        case 41:
            if (cli_parse_double(optarg, &o.alloc.target_bpw) || !(o.alloc.target_bpw > 0) || o.alloc.target_bpw > 32)
                return cli_usage_error("--target-bpw needs a number of bits per weight in (0, 32]");
            break;
        case 42:
            if (strcmp(optarg, "all") && strcmp(optarg, "matrices")) return cli_usage_error("--over needs all or matrices");
            o.alloc.over_all = !strcmp(optarg, "all");
            over_given = 1;
            break;
        case 43: candidates = optarg; break;
        case 44: o.alloc.table = optarg; break;
        case 45: {
            char *eq = strrchr(optarg, '=');
            double wt;
            if (!eq || eq == optarg || cli_parse_double(eq + 1, &wt) || !(wt > 0) || !isfinite(wt))
                return cli_usage_error("--alloc-weight needs REGEX=W with W > 0, got '%s'", optarg);
            if (o.alloc.n_weights == 16) return cli_usage_error("at most 16 --alloc-weight rules");
            *eq = 0;
            int e = regcomp(&o.alloc.weights[o.alloc.n_weights].re, optarg, REG_EXTENDED | REG_NOSUB);
            *eq = '=';
            if (e) return cli_usage_error("--alloc-weight: bad regex in '%s'", optarg);
            o.alloc.weights[o.alloc.n_weights].text = optarg;
            o.alloc.weights[o.alloc.n_weights++].w = wt;
            break;
        }
        case 46: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > 100000 || optarg[0] == '-')
                return cli_usage_error("--alloc-probe needs a number of windows in 1..100000, got '%s'", optarg);
            o.alloc.probe_windows = (uint32_t)v;
            break;
        }
        case 47: o.alloc.probe_text = optarg; break;
        case 48: o.alloc.probe_ids = optarg; break;
        case 50:
            if (!optarg || !strcmp(optarg, "true")) o.sequential = SQ_SEQUENTIAL_TRUE;
            else if (!strcmp(optarg, "block")) o.sequential = SQ_SEQUENTIAL_BLOCK;
            else return cli_usage_error("--sequential takes =true (the default) or =block, not '%s'", optarg);
            break;
        case 51:
            if (o.n_calib_texts == MAX_CALIB_TEXTS) return cli_usage_error("at most %d --calib-text files", MAX_CALIB_TEXTS);
            calib_texts[o.n_calib_texts++] = optarg;
            o.calib_texts = calib_texts;
            break;
        case 52: o.seq_stats = optarg; break;
        case 53: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v > 100 || optarg[0] == '-')
                return cli_usage_error("--gptq-cd needs a number of passes in 0..100, got '%s'", optarg);
            o.gptq.refine = v ? (int)v : -1;
            cd_given = 1;
            break;
        }
        case 'T': if (cli_parse_threads(optarg, &o.threads)) return cli_usage_error("--threads needs 0..1024 (0: all cores)"); break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("squish-quantize %s\n", SQUISH_VERSION); return EXIT_OK;
        default: return cli_usage_error("invalid option");
        }
    }
    if (optind != argc - 1) return cli_usage_error("expected exactly one MODEL");
    if (!o.out) return cli_usage_error("missing -o OUT");
    if (!strcmp(o.out, "-") && isatty(STDOUT_FILENO))
        return cli_usage_error("refusing to write a binary .squizd to a terminal (redirect standard output)");
    if (o.report && !strcmp(o.report, "-") && !strcmp(o.out, "-"))
        return cli_usage_error("-o - and --report - cannot share standard output; name a file for one of them");
    if (!sc->codec && !o.alloc.target_bpw) return cli_usage_error("missing --scheme (or --target-bpw)");
    if ((over_given || candidates || o.alloc.table || o.alloc.n_weights || o.alloc.probe_windows || o.alloc.probe_text ||
         o.alloc.probe_ids) && !o.alloc.target_bpw)
        return cli_usage_error("--over, --candidates, --alloc-table, --alloc-weight and --alloc-probe* apply to --target-bpw");
    if (o.alloc.probe_windows && !o.alloc.probe_text == !o.alloc.probe_ids)
        return cli_usage_error("--alloc-probe needs one of --alloc-probe-text FILE (the calibration text) or --alloc-probe-ids FILE");
    if ((o.alloc.probe_text || o.alloc.probe_ids) && !o.alloc.probe_windows)
        return cli_usage_error("--alloc-probe-text and --alloc-probe-ids need --alloc-probe N");
    if (o.alloc.target_bpw) {
        if (!o.calib) return cli_usage_error("--target-bpw needs --calib FILE.h5 (each candidate's loss is measured with the layers' X^T X)");
        if (o.method == SQ_METHOD_AWQ) return cli_usage_error("--target-bpw takes --method gptq (default) or rtn, not awq");
        if (o.shard_n) return cli_usage_error("--target-bpw allocates over the whole model; it cannot take --shard");
        if (!method_given) o.method = SQ_METHOD_GPTQ; /* the scalar candidates by GPTQ where a layer has X^T X */
        sq_err e2;
        if (candidates) {
            if (sq_alloc_parse_candidates(candidates, &o.alloc, &e2)) return cli_usage_error("%s", e2.msg);
        } else {
            sq_alloc_default_candidates(&o.alloc);
        }
    }
    if (o.method != SQ_METHOD_RTN && !o.calib) return cli_usage_error("--method %s needs --calib FILE.h5", sq_method_name(o.method));
    if ((o.gptq.act_order || o.gptq.static_groups) && o.method != SQ_METHOD_GPTQ)
        return cli_usage_error("--act-order and --static-groups apply to --method gptq");
    if (o.gptq.static_groups && !o.gptq.act_order) return cli_usage_error("--static-groups needs --act-order");
    if (cd_given && o.method != SQ_METHOD_GPTQ) return cli_usage_error("--gptq-cd applies to --method gptq");
    if ((o.awq.duo || !o.awq.clip) && o.method != SQ_METHOD_AWQ) return cli_usage_error("--awq-* options apply to --method awq");
    if (o.sequential && (!o.calib || !o.n_calib_texts))
        return cli_usage_error("--sequential needs --calib FILE.h5 and --calib-text FILE (the text squish-calibrate read)");
    if ((o.n_calib_texts || o.seq_stats) && !o.sequential)
        return cli_usage_error("--calib-text and --sequential-stats apply to --sequential");
    if (o.sequential && o.method == SQ_METHOD_AWQ)
        return cli_usage_error("--sequential takes --method gptq or rtn (and the calibrated codecs), not awq");
    if (o.sequential && o.shard_n) return cli_usage_error("--sequential cannot take --shard (each block's inputs come through all earlier blocks)");
    if (o.hessian_diag && !o.calib) return cli_usage_error("--hessian diag needs --calib FILE.h5");
    if (o.enc_flags && !uses_codec(sc, "quip")) return cli_usage_error("--quip-* options apply to quip schemes");
    if (method_rtn_given && uses_codec(sc, "quip")) o.enc_flags |= SQ_ENC_NO_FEEDBACK;
    o.model = argv[optind];
    o.sink = (sq_quantize_sink){NULL, on_message, on_begin, on_tensor, on_progress, on_end};
    sq_install_signal_cleanup();
    sq_err err = {0};
    if (sq_quantize_model(&o, NULL, &err)) rc = cli_fail(&err);
    for (int i = 0; i < sc->n_rules; i++) regfree(&rules[i].re);
    for (int i = 0; i < o.alloc.n_weights; i++) regfree(&o.alloc.weights[i].re);
    return rc;
}
