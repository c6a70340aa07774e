/* Measures QuIP# (2/3/4 bits, with and without the scale refit) beside
 * GPTQ int2/int3/int4 over the 56 linear matrices of the 34M model: the
 * proxy loss tr(ΔW H ΔWᵀ)/tr(W H Wᵀ) with the calibrated XᵀX, bits per
 * weight and wall time per matrix. Not a test; run by hand:
 *   measure_quip MODEL_DIR CALIB.h5 [n_threads] [max_layers]
 * For experiments: QUIP_BITS=b runs only that width, QUIP_NO_GPTQ=1 skips
 * the GPTQ columns; QUIP_RVQ=1 (quip-sharp's residual stages), QUIP_OS=x
 * (opt_scale), QUIP_PASSES=n, QUIP_BEAM=k, QUIP_NOFB=1 (no error feedback),
 * QUIP_DAMP=x, QUIP_NOREFIT=1, QUIP_NORHT=1, QUIP_DIAG=1 (diagonal of XᵀX only) set the
 * encoder's options. QUIP_SCALE_BLOCK=B also prints the proxy the same codes
 * would give with every stage's scale refitted per row and block of B
 * columns (finer scales; not a stored form), and their extra bits per weight. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awq.h"
#include "calib.h"
#include "gptq.h"
#include "quip.h"
#include "codecs/quip/e8p.h"
#include "squish/fp.h"
#include "squish/model.h"
#include "xform/hadamard.h"

/* Solves the n x n system M x = b (Gaussian elimination, partial pivoting); 0 when singular. */
static int solve(double *M, double *b, int n) {
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int i = c + 1; i < n; i++)
            if (fabs(M[i * n + c]) > fabs(M[p * n + c])) p = i;
        if (!(fabs(M[p * n + c]) > 1e-300)) return 0;
        for (int k = 0; k < n; k++) {
            double t = M[c * n + k];
            M[c * n + k] = M[p * n + k];
            M[p * n + k] = t;
        }
        double t = b[c];
        b[c] = b[p];
        b[p] = t;
        for (int i = c + 1; i < n; i++) {
            const double f = M[i * n + c] / M[c * n + c];
            for (int k = c; k < n; k++) M[i * n + k] -= f * M[c * n + k];
            b[i] -= f * b[c];
        }
    }
    for (int c = n - 1; c >= 0; c--) {
        for (int k = c + 1; k < n; k++) b[c] -= M[c * n + k] * b[k];
        b[c] /= M[c * n + c];
    }
    return 1;
}

/* Proxy of r's codes with the stage scales refitted per row and block of B
 * columns (f16-rounded), in the transformed basis. */
static double block_scale_proxy(const sq_quip_result *r, const float *w, const double *H, uint64_t B) {
    const uint64_t rows = r->rows, cols = r->cols, nb = cols / B, G = cols / 8;
    const uint32_t S = sq_quip_stages(r->bits, r->nested);
    const int P = (int)(S * nb);
    sq_had_plan pin, pout;
    sq_had_plan_init(&pin, cols, NULL);
    sq_had_plan_init(&pout, rows, NULL);
    float *Wt = malloc(rows * cols * 4), *col = malloc(rows * 4);
    double *Ht = malloc(cols * cols * 8), *u = malloc(cols * 8), *hw = malloc(cols * 8), *Q = malloc(S * cols * 8);
    double *M = malloc((size_t)P * P * 8), *b = malloc(P * 8), *g = malloc(P * 8), *th = malloc(P * 8);
    memcpy(Wt, w, rows * cols * 4);
    for (uint64_t c = 0; c < cols; c++)
        if (H[c * cols + c] == 0)
            for (uint64_t i = 0; i < rows; i++) Wt[i * cols + c] = 0;
    memcpy(Ht, H, cols * cols * 8);
    if (r->su) {
        for (uint64_t i = 0; i < rows; i++) sq_rht_apply_plan(&pin, r->su, Wt + i * cols);
        for (uint64_t c = 0; c < cols; c++) {
            for (uint64_t i = 0; i < rows; i++) col[i] = Wt[i * cols + c];
            sq_rht_apply_plan(&pout, r->sv, col);
            for (uint64_t i = 0; i < rows; i++) Wt[i * cols + c] = col[i];
        }
        for (uint64_t i = 0; i < cols; i++) sq_rht_apply_plan_f64(&pin, r->su, Ht + i * cols);
        for (uint64_t i = 0; i < cols; i++)
            for (uint64_t j = i + 1; j < cols; j++) {
                double t = Ht[i * cols + j];
                Ht[i * cols + j] = Ht[j * cols + i];
                Ht[j * cols + i] = t;
            }
        for (uint64_t i = 0; i < cols; i++) sq_rht_apply_plan_f64(&pin, r->su, Ht + i * cols);
    }
    const sq_e8p_tables *t = sq_e8p_tables_get();
    double tw = 0, te = 0;
    for (uint64_t row = 0; row < rows; row++) {
        const float *wr = Wt + row * cols;
        for (uint32_t k = 0; k < S; k++) /* unit-scale stage values */
            for (uint64_t gi = 0; gi < G; gi++) {
                const sq_quip_book book = sq_quip_stage_book(r->bits, r->nested, k);
                const void *cd = k == 0 ? (const void *)r->codes : k == 1 ? r->codes2 : (const void *)r->codes3;
                for (int j = 0; j < 8; j++) {
                    double v;
                    if (book == SQ_QUIP_E8P) {
                        const uint16_t c = ((const uint16_t *)cd)[row * G + gi];
                        v = t->base[c >> 8][j] * t->sign[c & 0xFF][j] + t->shift[c & 0xFF];
                    } else {
                        const uint8_t c = ((const uint8_t *)cd)[row * G + gi];
                        v = book == SQ_QUIP_E81B ? t->e81b[c][j] : t->e8r[c][j];
                    }
                    Q[k * cols + 8 * gi + j] = v;
                }
            }
        double ww = 0;
        for (uint64_t i = 0; i < cols; i++) {
            double a = 0;
            for (uint64_t l = 0; l < cols; l++) a += Ht[i * cols + l] * wr[l];
            hw[i] = a;
            ww += a * wr[i];
        }
        for (uint32_t j = 0; j < S; j++)
            for (uint64_t c = 0; c < nb; c++) { /* u = H̃ q_jc; column (j,c) of the Gram matrix */
                for (uint64_t i = 0; i < cols; i++) {
                    double a = 0;
                    for (uint64_t l = c * B; l < (c + 1) * B; l++) a += Ht[i * cols + l] * Q[j * cols + l];
                    u[i] = a;
                }
                for (uint32_t k = 0; k < S; k++)
                    for (uint64_t bb = 0; bb < nb; bb++) {
                        double a = 0;
                        for (uint64_t i = bb * B; i < (bb + 1) * B; i++) a += Q[k * cols + i] * u[i];
                        M[(k * nb + bb) * P + j * nb + c] = a;
                    }
            }
        for (uint32_t k = 0; k < S; k++)
            for (uint64_t bb = 0; bb < nb; bb++) {
                double a = 0;
                for (uint64_t i = bb * B; i < (bb + 1) * B; i++) a += Q[k * cols + i] * hw[i];
                g[k * nb + bb] = b[k * nb + bb] = a;
            }
        double *Mc = malloc((size_t)P * P * 8);
        memcpy(Mc, M, (size_t)P * P * 8);
        double e = ww;
        if (solve(Mc, b, P)) {
            for (int i = 0; i < P; i++) th[i] = sq_f16_to_f32(sq_f32_to_f16((float)b[i]));
            for (int i = 0; i < P; i++) {
                e -= 2 * th[i] * g[i];
                for (int j = 0; j < P; j++) e += th[i] * th[j] * M[i * P + j];
            }
        }
        free(Mc);
        tw += ww;
        te += e;
    }
    free(Wt); free(col); free(Ht); free(u); free(hw); free(Q); free(M); free(b); free(g); free(th);
    return tw > 0 ? te / tw : 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *const lin[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                   "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
static const char *const gschemes[] = {"int2:g64", "int2:g128", "int3:g64", "int3:g128", "int4:g64", "int4:g128"};
#define NG 6

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR CALIB.h5 [n_threads] [max_layers]\n", argv[0]);
        return 2;
    }
    const int nthr = argc > 3 ? atoi(argv[3]) : 2;
    sq_err err;
    sq_model *m = sq_model_open(argv[1], &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    sq_calib_file *f = sq_calib_open(argv[2], &err);
    if (!f) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    uint32_t L = sq_calib_file_info(f)->n_layers;
    if (argc > 4 && (uint32_t)atoi(argv[4]) < L) L = (uint32_t)atoi(argv[4]);
    /* sums over matrices: proxy (mean of the relative figures), weights, bits, time */
    double q_norefit[3] = {0}, q_refit[3] = {0}, q_bits[3] = {0}, q_time[3] = {0}, q_blk[3] = {0}, q_blkbits[3] = {0};
    double g_proxy[NG] = {0}, g_bits[NG] = {0}, g_time[NG] = {0}, nw = 0;
    int nmat = 0;
    printf("%-36s %4s %5s | %-26s %-26s %-26s | GPTQ", "matrix", "rows", "cols", "quip:2 norefit/refit bpw s",
           "quip:3", "quip:4");
    for (int g = 0; g < NG; g++) printf(" %s", gschemes[g]);
    printf("\n");
    for (uint32_t l = 0; l < L; l++)
        for (int k = 0; k < 7; k++) {
            char name[128];
            snprintf(name, sizeof name, "model.layers.%u.%s.weight", l, lin[k]);
            const sq_model_tensor *t = sq_model_find(m, name);
            if (!t) {
                fprintf(stderr, "%s: missing\n", name);
                return 1;
            }
            const uint64_t cols = t->dims[t->ndim - 1], rows = sq_model_tensor_elems(t) / cols;
            float *w = malloc(rows * cols * 4), *dec = malloc(rows * cols * 4), *zero = calloc(rows * cols, 4);
            if (sq_model_tensor_f32(m, t, w, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            uint32_t layer;
            sq_site site;
            sq_calib_site s;
            sq_calib_site_of(name, &layer, &site);
            if (sq_calib_read_site(f, layer, site, &s, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            /* the encoder's XᵀX: the site's, or its diagonal (QUIP_DIAG); proxies always use the full one */
            double *xtx = s.xtx;
            if (getenv("QUIP_DIAG")) {
                xtx = calloc(cols * cols, sizeof(double));
                for (uint64_t i = 0; i < cols; i++) xtx[i * cols + i] = s.xtx[i * cols + i];
            }
            float *Hf = malloc(cols * cols * 4);
            for (uint64_t i = 0; i < cols * cols; i++) Hf[i] = (float)s.xtx[i];
            const double den = sq_hessian_err(w, zero, rows, cols, Hf);
            printf("%-36s %4llu %5llu |", name, (unsigned long long)rows, (unsigned long long)cols);
            for (uint32_t bits = 2; bits <= 4; bits++) {
                if (getenv("QUIP_BITS") && (uint32_t)atoi(getenv("QUIP_BITS")) != bits) continue;
                sq_quip_opts o = {.bits = bits, .nested = bits > 2 && !getenv("QUIP_RVQ"), .seed = 1, .n_threads = nthr};
                if (getenv("QUIP_OS")) o.opt_scale = atof(getenv("QUIP_OS"));
                if (getenv("QUIP_DAMP")) o.damp = atof(getenv("QUIP_DAMP"));
                if (getenv("QUIP_PASSES")) o.passes = atoi(getenv("QUIP_PASSES"));
                if (getenv("QUIP_BEAM")) o.beam = atoi(getenv("QUIP_BEAM"));
                if (getenv("QUIP_TUNE")) o.tune_iters = atoi(getenv("QUIP_TUNE"));
                if (getenv("QUIP_TUNE_DAMP")) o.tune_damp = atof(getenv("QUIP_TUNE_DAMP"));
                o.no_feedback = getenv("QUIP_NOFB") != NULL;
                o.free_passes = getenv("QUIP_FREE") != NULL;
                o.no_refit = getenv("QUIP_NOREFIT") != NULL;
                o.no_rht = getenv("QUIP_NORHT") != NULL;
                sq_quip_result r;
                double t0 = now();
                if (sq_quip_quantize(w, rows, cols, xtx, &o, &r, &err)) {
                    fprintf(stderr, "%s: %s\n", name, err.msg);
                    return 1;
                }
                double dt = now() - t0, bpw = sq_quip_bpw(rows, cols, bits, o.nested);
                if (xtx != s.xtx) { /* the encoder's figures are under diag(XᵀX): measure the stored result */
                    sq_quip_view qv;
                    sq_quip_view_of(&r, &qv);
                    if (sq_quip_decode(&qv, dec, &err)) {
                        fprintf(stderr, "%s: %s\n", name, err.msg);
                        return 1;
                    }
                    r.proxy = r.proxy_refit = r.proxy_norefit = sq_hessian_err(dec, w, rows, cols, Hf) / den;
                }
                printf(" %.5f/%.5f/%.5f %.3f %5.2f", r.proxy_norefit, r.proxy_refit, r.proxy, bpw, dt);
                if (getenv("QUIP_SCALE_BLOCK")) {
                    const uint64_t B = (uint64_t)atoi(getenv("QUIP_SCALE_BLOCK"));
                    const double pb = cols % B ? -1 : block_scale_proxy(&r, w, s.xtx, B);
                    const double xb = 16.0 * sq_quip_stages(bits, o.nested) * (double)(cols / B - 1) / (double)cols;
                    printf(" [B%llu %.5f +%.3f bpw]", (unsigned long long)B, pb, xb);
                    q_blk[bits - 2] += pb;
                    q_blkbits[bits - 2] += xb * (double)(rows * cols);
                }
                q_norefit[bits - 2] += r.proxy_norefit;
                q_refit[bits - 2] += r.proxy;
                q_bits[bits - 2] += bpw * (double)(rows * cols);
                q_time[bits - 2] += dt;
                sq_quip_result_free(&r);
            }
            printf(" |");
            for (int g = 0; g < NG && !getenv("QUIP_NO_GPTQ"); g++) {
                const sq_codec *c;
                uint32_t p[SQ_NPARAMS];
                sq_scheme_parse(gschemes[g], &c, p, &err);
                sq_encoded e;
                sq_gptq_info info;
                sq_gptq_opts go = {.damp = 0.01, .act_order = 0, .static_groups = 0, .block = 128, .n_threads = nthr};
                double t0 = now();
                if (sq_gptq_quantize(name, c, p, w, rows, cols, s.xtx, &go, &e, &info, &err)) {
                    fprintf(stderr, "%s\n", err.msg);
                    return 1;
                }
                double dt = now() - t0;
                sq_tview tv;
                sq_tview_from_encoded(&e, &tv);
                sq_decode_mt(&tv, dec, nthr);
                double px = sq_hessian_err(dec, w, rows, cols, Hf) / den;
                printf(" %.5f", px);
                g_proxy[g] += px;
                g_bits[g] += sq_layout_bpw(c, p, rows, cols) * (double)(rows * cols);
                g_time[g] += dt;
                sq_encoded_free(&e);
            }
            printf("\n");
            fflush(stdout);
            nw += (double)(rows * cols);
            nmat++;
            if (xtx != s.xtx) free(xtx);
            sq_calib_site_free(&s);
            free(w);
            free(dec);
            free(zero);
            free(Hf);
        }
    printf("\nover %d matrices (%.0f weights), mean relative proxy loss, bpw (weighted), total seconds:\n", nmat, nw);
    for (int b = 0; b < 3; b++)
        printf("  quip:%d  first pass, no refit %.5f  stored %.5f  %.4f bpw  %.1f s\n", b + 2, q_norefit[b] / nmat, q_refit[b] / nmat,
               q_bits[b] / nw, q_time[b]);
    if (getenv("QUIP_SCALE_BLOCK"))
        for (int b = 0; b < 3; b++)
            printf("  quip:%d  scales per %s columns: %.5f  +%.4f bpw\n", b + 2, getenv("QUIP_SCALE_BLOCK"), q_blk[b] / nmat,
                   q_blkbits[b] / nw);
    for (int g = 0; g < NG; g++)
        printf("  gptq %-10s %.5f  %.4f bpw  %.1f s\n", gschemes[g], g_proxy[g] / nmat, g_bits[g] / nw, g_time[g]);
    sq_calib_close(f);
    sq_model_close(m);
    return 0;
}
