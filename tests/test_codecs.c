/* Codecs: golden vectors computed independently (testdata/gen_vectors.py),
 * exhaustive mini-float tables, scheme strings, and tests generated from
 * the registry: every registered codec in every variant its descriptor
 * admits runs the round trip (error bound from the descriptor, thread-count
 * independence), every kernel slot of its CPU traits against the portable
 * path, the transform chain and random part bytes. What a codec must have
 * besides (golden vectors, a spec section, a Vulkan path) is checked by
 * test_codecs_required.c. */
#include <math.h>

#include "squish/codec.h"
#include "squish/fp.h"
#include "testutil.h"
#include "codec_encode.h"
#include "codec_variants.h"


static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

/* One vector of codec-vectors.txt: the scheme and shape, the parts as
 * stored (in the file's order), the input (when given: encoding it must
 * give those bytes) and the decoded values (when given: decoding those
 * bytes must give them, bit for bit). */
typedef struct golden {
    char scheme[64];
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    uint64_t rows, cols;
    float *input, *output;
    int nparts;
    char name[SQ_CODEC_MAX_PARTS][32];
    uint8_t *data[SQ_CODEC_MAX_PARTS];
    size_t bytes[SQ_CODEC_MAX_PARTS];
} golden;

static float *read_f32_hex(const char *q, uint64_t n) {
    float *v = malloc(n * sizeof(float));
    char *end = (char *)q;
    for (uint64_t i = 0; i < n; i++) v[i] = sq_bits_f32((uint32_t)strtoul(end, &end, 16));
    return v;
}

static void golden_check(golden *g) {
    const uint64_t rows = g->rows, cols = g->cols;
    sq_err err;
    if (g->input) { /* encoding the input gives the stored bytes, for 1 and 3 threads */
        sq_encoded e[2];
        ck_assert_msg(codec_encode(g->c, g->p, g->input, rows, cols, 1, &e[0], &err) == 0, "%s: %s", g->scheme, err.msg);
        ck_assert_msg(codec_encode(g->c, g->p, g->input, rows, cols, 3, &e[1], &err) == 0, "%s: %s", g->scheme, err.msg);
        ck_assert_msg(e[0].nparts == g->nparts, "%s: %d parts encoded, %d in the vector", g->scheme, e[0].nparts, g->nparts);
        for (int j = 0; j < g->nparts; j++) {
            int i = 0;
            while (i < e[0].nparts && strcmp(e[0].spec[i].name, g->name[j])) i++;
            ck_assert_msg(i < e[0].nparts, "%s: no part %s", g->scheme, g->name[j]);
            ck_assert_msg(g->bytes[j] == e[0].bytes[i], "%s part %s: %zu bytes expected, %llu written", g->scheme,
                          g->name[j], g->bytes[j], (unsigned long long)e[0].bytes[i]);
            const uint8_t *got = e[0].data[i];
            for (size_t k = 0; k < g->bytes[j]; k++)
                ck_assert_msg(got[k] == g->data[j][k], "%s part %s byte %zu: got %02x want %02x", g->scheme, g->name[j], k,
                              got[k], g->data[j][k]);
            ck_assert_int_eq(memcmp(e[0].data[i], e[1].data[i], g->bytes[j]), 0); /* thread count */
        }
        sq_encoded_free(&e[0]);
        sq_encoded_free(&e[1]);
    }
    if (g->output) { /* decoding the stored bytes gives the values the spec computes */
        sq_part_spec sp[SQ_CODEC_MAX_PARTS];
        int n = g->c->layout(g->c, g->p, rows, cols, sp);
        ck_assert_msg(n == g->nparts, "%s: the layout has %d parts, the vector %d", g->scheme, n, g->nparts);
        sq_tview v = {0};
        v.codec = g->c;
        memcpy(v.params, g->p, sizeof v.params);
        v.rows = rows;
        v.cols = cols;
        v.nparts = n;
        for (int i = 0; i < n; i++) {
            int j = 0;
            while (j < g->nparts && strcmp(sp[i].name, g->name[j])) j++;
            ck_assert_msg(j < g->nparts, "%s: the vector has no part %s", g->scheme, sp[i].name);
            uint64_t per = sq_dtype_size(sp[i].dtype); /* bytes per first-dim entry */
            for (uint32_t k = 1; k < sp[i].ndim; k++) per *= sp[i].dims[k];
            v.part[i] = g->data[j];
            v.dim0[i] = (sp[i].flags & SQ_PART_DATA_DIM0) && per ? g->bytes[j] / per : sp[i].dims[0];
            ck_assert_msg((sp[i].flags & SQ_PART_DATA_DIM0) || g->bytes[j] == sq_part_spec_bytes(&sp[i]),
                          "%s part %s: %zu bytes, the layout says %llu", g->scheme, sp[i].name, g->bytes[j],
                          (unsigned long long)sq_part_spec_bytes(&sp[i]));
        }
        char why[256] = "";
        if (g->c->check) ck_assert_msg(g->c->check(&v, why, sizeof why) == 0, "%s: check() refuses the vector: %s", g->scheme, why);
        float *d = malloc(rows * cols * sizeof(float));
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!sq_isa_supported((sq_isa)isa)) continue;
            sq_decode_for(g->c, (sq_isa)isa)(&v, 0, rows, d);
            for (uint64_t i = 0; i < rows * cols; i++)
                ck_assert_msg(sq_f32_bits(d[i]) == sq_f32_bits(g->output[i]), "%s on %s: value %llu decodes to %a, the spec "
                              "to %a", g->scheme, sq_isa_name((sq_isa)isa), (unsigned long long)i, d[i], g->output[i]);
        }
        free(d);
    }
}

START_TEST(golden_vectors) {
    size_t len;
    char *text = (char *)read_all(src_path("testdata/vectors/codec-vectors.txt"), &len);
    ck_assert_ptr_nonnull(text);
    text[len] = 0;
    int n_vectors = 0, n_decoded = 0;
    char *save = NULL;
    golden g;
    memset(&g, 0, sizeof g);
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "vector ", 7)) {
            unsigned long long r, cc;
            memset(&g, 0, sizeof g);
            ck_assert_int_eq(sscanf(line + 7, "%63s %llu %llu", g.scheme, &r, &cc), 3);
            g.rows = r;
            g.cols = cc;
            sq_err err;
            ck_assert_msg(sq_scheme_parse(g.scheme, &g.c, g.p, &err) == 0, "%s", err.msg);
        } else if (!strncmp(line, "input ", 6)) {
            g.input = read_f32_hex(line + 6, g.rows * g.cols);
        } else if (!strncmp(line, "output ", 7)) {
            g.output = read_f32_hex(line + 7, g.rows * g.cols);
        } else if (!strncmp(line, "part ", 5)) {
            char *name = line + 5, *hex = strchr(name, ' ');
            *hex++ = 0;
            ck_assert_int_lt(g.nparts, SQ_CODEC_MAX_PARTS);
            snprintf(g.name[g.nparts], sizeof g.name[0], "%s", name);
            g.bytes[g.nparts] = strlen(hex) / 2;
            g.data[g.nparts] = malloc(g.bytes[g.nparts] + 1);
            for (size_t k = 0; k < g.bytes[g.nparts]; k++)
                g.data[g.nparts][k] = (uint8_t)(hexval(hex[2 * k]) << 4 | hexval(hex[2 * k + 1]));
            g.nparts++;
        } else if (!strcmp(line, "end")) {
            ck_assert_msg(g.input || g.output, "%s: a vector needs an input or an output", g.scheme);
            golden_check(&g);
            n_decoded += g.output != NULL;
            for (int i = 0; i < g.nparts; i++) free(g.data[i]);
            free(g.input);
            free(g.output);
            memset(&g, 0, sizeof g);
            n_vectors++;
        }
    }
    ck_assert_int_ge(n_vectors, 26);
    ck_assert_int_eq(n_decoded, n_vectors);
    free(text);
}
END_TEST

START_TEST(minifloat_tables_exhaustive) {
    size_t len;
    char *text = (char *)read_all(src_path("testdata/vectors/minifloat-tables.txt"), &len);
    ck_assert_ptr_nonnull(text);
    text[len] = 0;
    const char *names[SQ_MF_COUNT] = {"e4m3", "e5m2", "e3m2", "e2m3", "e2m1"};
    int seen[SQ_MF_COUNT] = {0};
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char fmt[8], val[64];
        int code;
        ck_assert_int_eq(sscanf(line, "%7s %d %63s", fmt, &code, val), 3);
        int f = -1;
        for (int i = 0; i < SQ_MF_COUNT; i++)
            if (!strcmp(fmt, names[i])) f = i;
        ck_assert_int_ge(f, 0);
        float got = sq_mf_decode((sq_minifloat)f, (uint8_t)code);
        if (!strcmp(val, "nan")) {
            ck_assert(isnan(got));
        } else {
            double want = strtod(val, NULL);
            ck_assert_msg(got == (float)want && !!signbit(got) == !!signbit(want), "%s code %d: %g != %s", fmt, code, got, val);
            ck_assert(sq_mf_table((sq_minifloat)f)[code] == got);
            /* encode(decode(c)) == c, except -0 which encodes as the canonical +0 */
            uint8_t back = sq_mf_encode((sq_minifloat)f, got);
            if (got == 0) ck_assert_uint_eq(back, 0);
            else if (!isinf(got)) ck_assert_msg(back == code, "%s: encode(%g) = %d, want %d", fmt, got, back, code);
        }
        seen[f]++;
    }
    for (int i = 0; i < SQ_MF_COUNT; i++) ck_assert_int_eq(seen[i], 1 << sq_mf((sq_minifloat)i)->bits);
    free(text);
    /* saturation and NaN rules */
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E4M3, 1000.0f), 0x7e);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E4M3, -1e30f), 0xfe);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E4M3, 464.0f), 0x7e); /* just above max: saturates, no NaN */
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E4M3, NAN), 0x7f);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E5M2, 1e9f), 0x7b);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E2M1, 5.0f), 0x6); /* tie 4|6 -> even mantissa: 4 */
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E2M1, 0.25f), 0x0);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E2M1, 0.26f), 0x1);
}
END_TEST

/* ---- tests generated from the registry ----
 * Every registered codec, in every variant its descriptor admits
 * (tests/codec_variants.h), with nothing to add here for a new codec: the
 * round trip within a bound derived from the descriptor, every kernel slot
 * of its CPU traits against the portable path, and random part bytes. */
#define MAX_ALL_VARIANTS 1024
static codec_variant variants[MAX_ALL_VARIANTS];

static int load_variants(void) {
    char bad[96] = "";
    int n = all_codec_variants(variants, MAX_ALL_VARIANTS, bad, sizeof bad);
    ck_assert_msg(n > 0, "scheme '%s', which a codec's descriptor (group_ok, opts) allows, does not parse", bad);
    ck_assert_int_lt(n, MAX_ALL_VARIANTS);
    return n;
}

/* Every variant's canonical text parses back to the same codec and params. */
START_TEST(variants_parse_back) {
    int n = load_variants(), codecs = 0;
    for (int i = 0; i < n; i++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        ck_assert_msg(sq_scheme_parse(variants[i].scheme, &c, p, &err) == 0, "%s: %s", variants[i].scheme, err.msg);
        ck_assert_ptr_eq(c, variants[i].codec);
        ck_assert_msg(!memcmp(p, variants[i].params, sizeof p), "%s: params differ after format/parse", variants[i].scheme);
        codecs += variants[i].is_default;
    }
    int registered = 0;
    for (const sq_codec *const *l = sq_codec_list(); *l; l++) registered++;
    ck_assert_int_eq(codecs, registered);
    fprintf(stderr, "codecs: %d registered, %d variants generated from their descriptors\n", registered, n);
}
END_TEST

/* Relative rounding of a scale stored in dtype dt (half an ulp). */
static double scale_eps(uint32_t dt) {
    return dt == SQ_DT_F16 ? ldexp(1, -11) : dt == SQ_DT_BF16 ? ldexp(1, -8) : ldexp(1, -24);
}
static float round_to_dtype(uint32_t dt, float v) {
    if (dt == SQ_DT_F16) return sq_f16_to_f32(sq_f32_to_f16(v));
    if (dt == SQ_DT_BF16) return sq_bf16_to_f32(sq_f32_to_bf16(v));
    return v;
}

/* Distance from v to the nearest of the n sorted values t[] (the error of
 * rounding v to the table, saturating at its ends). */
static double table_dist(const double *t, int n, double v) {
    if (v <= t[0]) return t[0] - v;
    if (v >= t[n - 1]) return v - t[n - 1];
    int i = 0;
    while (v > t[i + 1]) i++;
    return fmin(v - t[i], t[i + 1] - v);
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* bound[i] = the largest |decode - w[i]| the codec's family allows for w
 * (rows x cols, stored order), derived from the descriptor alone:
 *   float: half an ulp of value_dtype (f32: exact);
 *   int:   half a step (range / (2^bits - 1)) for asym, a step (amax /
 *          2^(bits-1)) for sym, whose most negative value clamps, plus
 *          2^bits times the scale dtype's rounding of the step;
 *   lut:   scale s = group amax / max|table| rounded to the scale dtype,
 *          error s * (distance of w/s to the nearest table value); with dq
 *          the group scale is itself coded in 8 bits (127 steps of the
 *          spread of the tensor's group scales): max|table| times half a step;
 *   mx:    s = 2^(floor(log2 amax) - floor(log2 max|table|)), then as lut.
 * Returns 0 (and a reason) for a family without a rule here yet. */
static int family_bound(const sq_codec *c, const uint32_t *p, const float *w, uint64_t rows, uint64_t cols, double *bound,
                        char *why, size_t nwhy) {
    const double slack = ldexp(1, -21); /* float arithmetic of the encoder and decoder, relative to |w| */
    if (c->family == SQ_FAMILY_FLOAT) {
        int mbits = c->value_dtype == SQ_DT_F16 ? 10 : c->value_dtype == SQ_DT_BF16 ? 7 : 23;
        int emin = c->value_dtype == SQ_DT_F16 ? -14 : -126;
        for (uint64_t i = 0; i < rows * cols; i++)
            bound[i] = c->value_dtype == SQ_DT_F32 ? 0 : fmax(fabs(w[i]) * ldexp(1, -mbits - 1), ldexp(1, emin - mbits - 1));
        return 1;
    }
    if (c->family == SQ_FAMILY_LATTICE) {
        /* QuIP# (spec §11): E8P codes of groups of 8 in a Hadamard-rotated basis with error feedback, so an
         * element's error is not local; bounded by 2^(3-bits) times 8 RMS of the tensor (a decode that loses
         * the signs, a stage or the transforms lands far outside it) */
        double ss = 0;
        for (uint64_t i = 0; i < rows * cols; i++) ss += (double)w[i] * w[i];
        const double b = 8 * sqrt(ss / (double)(rows * cols)) * ldexp(1, 2 - (int)p[4]);
        for (uint64_t i = 0; i < rows * cols; i++) bound[i] = b;
        return 1;
    }
    const uint64_t gl = sq_codec_group_len(p, cols), ng = (cols + gl - 1) / gl;
    const int per_tensor = p[SQ_P_GROUP] == SQ_GROUP_TENSOR;
    const uint32_t sdt = (c->opts & SQ_OPT_SCALE_DTYPE) ? p[SQ_P_SCALE_DTYPE] : SQ_DT_F32;
    double tensor_amax = 0;
    for (uint64_t i = 0; i < rows * cols; i++) tensor_amax = fmax(tensor_amax, fabs(w[i]));
    if (c->family == SQ_FAMILY_INT) {
        const int b = (int)c->bits;
        const int asym = (p[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t g = 0; g < ng; g++) {
                uint64_t c0 = g * gl, c1 = c0 + gl < cols ? c0 + gl : cols;
                double lo = 0, hi = 0, amax = 0;
                for (uint64_t i = c0; i < c1; i++) {
                    lo = fmin(lo, w[r * cols + i]);
                    hi = fmax(hi, w[r * cols + i]);
                    amax = fmax(amax, fabs(w[r * cols + i]));
                }
                double step = asym ? (hi - lo) / (ldexp(1, b) - 1) : amax / ldexp(1, b - 1);
                double e = step * ((asym ? 0.5 : 1.0) + ldexp(1, b) * scale_eps(sdt));
                for (uint64_t i = c0; i < c1; i++) bound[r * cols + i] = e * (1 + slack) + fabs(w[r * cols + i]) * slack;
            }
        return 1;
    }
    if (c->family == SQ_FAMILY_LUT || c->family == SQ_FAMILY_MX) {
        int bits = 0;
        const float *tab = sq_codec_value_table(c, &bits);
        if (!tab) {
            snprintf(why, nwhy, "a %s codec without a value table (sq_codec_value_table is NULL)", sq_codec_family_name(c->family));
            return 0;
        }
        double t[256];
        int n = 0;
        for (int i = 0; i < 1 << bits && n < 256; i++)
            if (isfinite(tab[i])) t[n++] = tab[i];
        qsort(t, (size_t)n, sizeof t[0], cmp_double);
        const double tmax = fmax(fabs(t[0]), fabs(t[n - 1]));
        int temax;
        frexp(tmax, &temax);
        temax -= 1; /* floor(log2 max|table|) */
        /* group scales (the spread of the tensor's scales bounds dq's 8-bit scale code) */
        double *s = malloc(rows * ng * sizeof(double)), smin = INFINITY, smax = 0;
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t g = 0; g < ng; g++) {
                uint64_t c0 = g * gl, c1 = c0 + gl < cols ? c0 + gl : cols;
                double amax = 0;
                for (uint64_t i = c0; i < c1; i++) amax = fmax(amax, fabs(w[r * cols + i]));
                if (per_tensor) amax = tensor_amax;
                double sc;
                if (c->family == SQ_FAMILY_MX) {
                    int e;
                    frexp(amax, &e);
                    sc = amax > 0 ? ldexp(1, e - 1 - temax) : 0;
                } else {
                    sc = round_to_dtype(sdt, (float)amax / (float)tmax);
                }
                s[r * ng + g] = sc;
                smin = fmin(smin, sc);
                smax = fmax(smax, sc);
            }
        const double dq = (p[SQ_P_FLAGS] & SQ_PF_DQ) ? tmax * ((smax - smin) / 254 + smax * ldexp(1, -22)) : 0;
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t i = 0; i < cols; i++) {
                double sc = s[r * ng + i / gl], x = w[r * cols + i];
                double e = sc > 0 ? sc * table_dist(t, n, x / sc) : fabs(x);
                bound[r * cols + i] = e * (1 + slack) + dq + fabs(x) * slack;
            }
        free(s);
        return 1;
    }
    if (c->family == SQ_FAMILY_CODEBOOK) {
        /* aqlm (spec/codecs.md §12): with at least as many codewords 2^B as groups, residual k-means gives
         * every group its own codeword f16(w / s), s = f16(row norm), and the later steps keep only what
         * lowers the XᵀX-weighted error (a full-rank XᵀX here), so what is left is f16 rounding of the
         * normalized values (2^-11 relative, 2^-24 absolute below the normal range) and of s: bounded by
         * 2^-9 |w| + 2^-20 x the row norm. Fewer codewords than groups: no element-wise bound exists. */
        const uint64_t G = (cols + 7) / 8, K = p[5] < 32 ? 1ull << p[5] : 0;
        if (rows * G > K) {
            snprintf(why, nwhy, "aqlm: %llu groups but %llu codewords: the round trip is element-wise bounded only "
                     "when every group can have its own codeword", (unsigned long long)(rows * G), (unsigned long long)K);
            return 0;
        }
        for (uint64_t r = 0; r < rows; r++) {
            double nrm = 0;
            for (uint64_t i = 0; i < cols; i++) nrm += (double)w[r * cols + i] * w[r * cols + i];
            nrm = sqrt(nrm);
            for (uint64_t i = 0; i < cols; i++) bound[r * cols + i] = fabs(w[r * cols + i]) * ldexp(1, -9) + nrm * ldexp(1, -20);
        }
        return 1;
    }
    if (c->family == SQ_FAMILY_MIXED) {
        /* mix (spec §14): the GPTQ sweep feeds earlier errors into each weight and then clamps it to its
         * block's range, so the bound is that of a weight within the matrix's range: half of it (a wrong
         * width, offset or permutation lands far outside) */
        double lo = 0, hi = 0;
        for (uint64_t i = 0; i < rows * cols; i++) {
            lo = fmin(lo, w[i]);
            hi = fmax(hi, w[i]);
        }
        for (uint64_t i = 0; i < rows * cols; i++) bound[i] = 0.5 * (hi - lo);
        return 1;
    }
    if (c->family == SQ_FAMILY_SPARSE_DENSE) {
        /* spqr: a GPTQ sweep rounds each weight after earlier errors were fed
         * into it, so no group step bounds the error of one weight; what
         * holds is that the decoded row stays near the row: within half the
         * row's range of w (measured on these inputs: at most 0.13 of it; a
         * wrong permutation or scale gives errors near the whole range). */
        /* the statistics' own codes are shared by blocks of β₂ = 16 rows, so a
         * row's zero point (and a zero row's values) carry its block's
         * rounding: the range is taken over the block, i.e. the whole test matrix */
        double lo = 0, hi = 0;
        for (uint64_t i = 0; i < rows * cols; i++) {
            lo = fmin(lo, w[i]);
            hi = fmax(hi, w[i]);
        }
        for (uint64_t r = 0; r < rows; r++) {
            for (uint64_t i = 0; i < cols; i++) bound[r * cols + i] = 0.5 * (hi - lo);
        }
        return 1;
    }
    snprintf(why, nwhy, "family %s has no round-trip bound in tests/test_codecs.c (family_bound): add one derived from "
                        "the descriptor (codebook size, lattice scale, outlier threshold...)",
             sq_codec_family_name(c->family));
    return 0;
}

/* Encode, decode and compare, for every variant of every codec: within the
 * family's bound; the same parts for 1 and 3 threads; parts sized as the
 * layout says; bits per weight as the layout predicts; the codec's own
 * check() accepts what its encoder wrote; row ranges decode alike; lossless
 * codecs reproduce their own output exactly. A zero row decodes within the
 * bound of zero (exactly zero for every scalar family). */
START_TEST(roundtrip_every_variant) {
    int nv = load_variants();
    const uint64_t rows = 7, cols = 200; /* ragged: last chunk of 8 values, last group shorter */
    for (int k = 0; k < nv; k++) {
        const codec_variant *cv = &variants[k];
        const sq_codec *c = cv->codec;
        float *w = random_matrix(rows * cols, 1), *d = malloc(rows * cols * sizeof(float));
        double *bound = malloc(rows * cols * sizeof(double));
        for (uint64_t i = 0; i < rows * cols; i++) w[i] *= (float)(1 + (urand() - 0.5) * 0x1p-8); /* full f32 mantissas */
        memset(w + 2 * cols, 0, cols * sizeof(float));
        char why[256] = "";
        ck_assert_msg(family_bound(c, cv->params, w, rows, cols, bound, why, sizeof why), "codec %s: %s", c->name, why);
        sq_encoded e, e3;
        sq_err err;
        ck_assert_msg(codec_encode(c, cv->params, w, rows, cols, 1, &e, &err) == 0, "%s: %s", cv->scheme, err.msg);
        ck_assert_msg(codec_encode(c, cv->params, w, rows, cols, 3, &e3, &err) == 0, "%s: %s", cv->scheme, err.msg);
        sq_part_spec sp[SQ_CODEC_MAX_PARTS];
        int np = sq_layout(c, e.params, rows, cols, sp), fixed = 1; /* with the links the encoder added (quip, spqr) */
        ck_assert_int_eq(e.nparts, np);
        for (int i = 0; i < np; i++) {
            ck_assert_str_eq(e.spec[i].name, sp[i].name);
            if (sp[i].flags & SQ_PART_DATA_DIM0) fixed = 0;
            else ck_assert_msg(e.bytes[i] == sq_part_spec_bytes(&sp[i]), "%s part %s: %llu bytes, layout says %llu",
                               cv->scheme, sp[i].name, (unsigned long long)e.bytes[i],
                               (unsigned long long)sq_part_spec_bytes(&sp[i]));
            ck_assert_msg(e.bytes[i] == e3.bytes[i] && !memcmp(e.data[i], e3.data[i], (size_t)e.bytes[i]),
                          "%s part %s differs between 1 and 3 threads", cv->scheme, sp[i].name);
        }
        if (fixed) ck_assert(fabs(sq_encoded_bpw(&e) - sq_layout_bpw(c, e.params, rows, cols)) < 1e-12);
        sq_tview v;
        sq_tview_from_encoded(&e, &v);
        char cwhy[256] = "";
        if (c->check) ck_assert_msg(c->check(&v, cwhy, sizeof cwhy) == 0, "%s: check() refuses the encoder's output: %s",
                                    cv->scheme, cwhy);
        ck_assert_int_eq(sq_decode_rows(&v, 0, rows, d), SQ_OK);
        for (uint64_t i = 0; i < rows * cols; i++)
            ck_assert_msg(isfinite(d[i]) && fabs((double)d[i] - w[i]) <= bound[i] + 1e-30,
                          "%s: value %llu (row %llu): w = %a decodes to %a, |err| %g > bound %g", cv->scheme,
                          (unsigned long long)i, (unsigned long long)(i / cols), w[i], d[i], fabs((double)d[i] - w[i]),
                          bound[i]);
        float *d2 = malloc(rows * cols * sizeof(float));
        ck_assert_int_eq(sq_decode_rows(&v, 3, rows, d2), SQ_OK);
        ck_assert_msg(!memcmp(d2, d + 3 * cols, (rows - 3) * cols * sizeof(float)), "%s: rows 3.. decode differently alone",
                      cv->scheme);
        if (c->lossless) { /* its own output is representable: encoding it again is exact */
            sq_encoded e2;
            ck_assert_int_eq(codec_encode(c, cv->params, d, rows, cols, 1, &e2, &err), 0);
            sq_tview v2;
            sq_tview_from_encoded(&e2, &v2);
            ck_assert_int_eq(sq_decode_rows(&v2, 0, rows, d2), SQ_OK);
            ck_assert_msg(!memcmp(d2, d, rows * cols * sizeof(float)), "%s: lossless, yet its output changes", cv->scheme);
            sq_encoded_free(&e2);
        }
        sq_encoded_free(&e);
        sq_encoded_free(&e3);
        free(w); free(d); free(d2); free(bound);
    }
}
END_TEST

/* The rounded activations a fast kernel's form stands for (what the exact
 * GEMV is compared with); 0 for a form without a reference here. */
static int act_values(const sq_act *a, const float *x, uint64_t n, float *xr) {
    if (a->kind == SQ_ACT_F32) {
        memcpy(xr, x, n * sizeof(float));
        return 1;
    }
    if (a->kind == SQ_ACT_Q8) { /* blocks of 32: d = max|x| / 127, |x - d q| <= d / 2 */
        for (uint64_t i = 0; i < n; i++) {
            float dd = a->q8.d[i / 32];
            xr[i] = dd * a->q8.q[i];
            ck_assert_msg(fabs((double)x[i] - xr[i]) <= dd * 0.5 * (1 + 1e-6) + fabs(x[i]) * ldexp(1, -22), "q8 activation %llu: %g -> %g (d %g)",
                          (unsigned long long)i, x[i], xr[i], dd);
        }
        return 1;
    }
    return 0;
}

/* Runs kernel k (the slot of isa, or the one sq_fast_kernel_for picks) and
 * compares it with the exact portable GEMV of the activations in its form:
 * within 1e-5 sum|w x| for the portable path and f32 kernels, 1e-4 for
 * SIMD integer-activation kernels (they subtract the zero-point term once
 * per row, a cancellation). */
static void check_fast(const codec_variant *cv, sq_cpu_kernel k, int isa, const char *which, const sq_tview *v,
                       const float *ref, const float *x, uint64_t rows, uint64_t cols) {
    sq_act a;
    ck_assert_int_eq(sq_act_prepare(k.act, x, cols, &a, NULL), SQ_OK);
    float *xr = malloc(cols * sizeof(float)), *y = malloc(rows * sizeof(float)), *yx = malloc(rows * sizeof(float));
    ck_assert_msg(act_values(&a, x, cols, xr), "%s: fast kernel on %s takes activations '%s', which this test has no "
                  "reference for: add it to act_values() in tests/test_codecs.c", cv->scheme, sq_isa_name((sq_isa)isa),
                  sq_act_kind_name(k.act));
    sq_kernel_run(k, v, &a, y, 0, rows);
    cv->codec->cpu->gemv[SQ_ISA_PORTABLE](v, xr, yx, 0, rows);
    const double tol = (isa == SQ_ISA_PORTABLE || k.act == SQ_ACT_F32) ? 1e-5 : 1e-4;
    for (uint64_t r = 0; r < rows; r++) {
        double mag = 0;
        for (uint64_t i = 0; i < cols; i++) mag += fabs((double)ref[r * cols + i] * xr[i]);
        ck_assert_msg(fabs((double)y[r] - yx[r]) <= tol * mag + 1e-30, "%s %llux%llu: %s %s kernel (%s) row %llu: %g vs %g",
                      cv->scheme, (unsigned long long)rows, (unsigned long long)cols, sq_isa_name((sq_isa)isa), which,
                      sq_act_kind_name(k.act), (unsigned long long)r, y[r], yx[r]);
    }
    sq_act_release(&a);
    free(xr); free(y); free(yx);
}

static int slots_run, slots_not_here;

/* The width a test shape takes for codec c: lattice codecs (quip, spec §11) store whole groups of 8. */
static uint64_t codec_cols(const sq_codec *c, uint64_t cols) { return c->family == SQ_FAMILY_LATTICE ? (cols + 7) / 8 * 8 : cols; }

/* Drops the transform links an encoder added (quip's rht_in/rht_out), so a test can attach its own chain. */
static void drop_links(sq_encoded *e) {
    while (e->nparts > 0 && e->params[SQ_P_XFORM]) {
        const sq_xform_desc *xf = sq_xform_list();
        int link = 0;
        for (int k = 0; k < SQ_XFORM_KINDS; k++)
            if (!strcmp(xf[k].part, e->spec[e->nparts - 1].name)) {
                e->params[SQ_P_XFORM] &= ~xf[k].flag;
                link = 1;
            }
        if (!link) break;
        e->nparts--;
        free(e->data[e->nparts]);
        e->data[e->nparts] = NULL;
        e->bytes[e->nparts] = 0;
    }
}

/* One variant, one shape: every decode, GEMV and fast slot of the codec's
 * CPU traits that this CPU can run against the portable ones (decode bit
 * for bit; GEMV within 1e-5 sum|w x|), the portable GEMV against decode
 * then dot, and the threaded helpers. */
static void check_kernels(const codec_variant *cv, uint64_t rows, uint64_t cols) {
    const sq_codec *c = cv->codec;
    cols = codec_cols(c, cols);
    const sq_codec_cpu *cpu = c->cpu;
    ck_assert_msg(cpu && cpu->decode[SQ_ISA_PORTABLE] && cpu->gemv[SQ_ISA_PORTABLE],
                  "codec %s: its CPU traits must set the portable decode and gemv", c->name);
    float *w = random_matrix(rows * cols, 1), *x = random_matrix(cols, 0);
    sq_encoded e;
    sq_err err;
    ck_assert_msg(codec_encode(c, cv->params, w, rows, cols, 2, &e, &err) == 0, "%s: %s", cv->scheme, err.msg);
    sq_tview v;
    sq_tview_from_encoded(&e, &v);
    /* kernels compare in the stored basis: links an encoder adds (quip's rht_in/rht_out) are left out of the
     * view here; transforms_on_every_codec tests the chain */
    memset(v.xf, 0, sizeof v.xf);
    v.params[SQ_P_XFORM] = 0;
    float *ref = malloc(rows * cols * sizeof(float)), *dec = malloc(rows * cols * sizeof(float));
    float *y0 = malloc(rows * sizeof(float)), *y = malloc(rows * sizeof(float));
    double *mag = malloc(rows * sizeof(double));
    cpu->decode[SQ_ISA_PORTABLE](&v, 0, rows, ref);
    cpu->gemv[SQ_ISA_PORTABLE](&v, x, y0, 0, rows);
    for (uint64_t r = 0; r < rows; r++) { /* portable GEMV = decode then dot (in double) */
        double d = 0;
        mag[r] = 0;
        for (uint64_t i = 0; i < cols; i++) {
            d += (double)ref[r * cols + i] * x[i];
            mag[r] += fabs((double)ref[r * cols + i] * x[i]);
        }
        ck_assert_msg(fabs(y0[r] - d) <= 1e-5 * mag[r] + 1e-30, "%s %llux%llu row %llu: gemv %g vs dot %g", cv->scheme,
                      (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)r, y0[r], d);
    }
    for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
        const int filled = !!cpu->decode[isa] + !!cpu->gemv[isa] + !!cpu->fast[isa].fn.f32;
        if (!sq_isa_supported((sq_isa)isa)) {
            slots_not_here += filled;
            continue;
        }
        slots_run += filled;
        sq_decode_fn dfs[2] = {cpu->decode[isa], sq_decode_for(c, (sq_isa)isa)};
        for (int j = 0; j < 2; j++) {
            if (!dfs[j]) continue;
            dfs[j](&v, 0, rows, dec);
            ck_assert_msg(!memcmp(dec, ref, rows * cols * sizeof(float)), "%s: decode on %s differs", cv->scheme,
                          sq_isa_name((sq_isa)isa));
        }
        sq_gemv_fn gfs[2] = {cpu->gemv[isa], sq_gemv_for(c, (sq_isa)isa)};
        for (int j = 0; j < 2; j++) {
            if (!gfs[j]) continue;
            gfs[j](&v, x, y, 0, rows);
            for (uint64_t r = 0; r < rows; r++)
                ck_assert_msg(fabs((double)y[r] - y0[r]) <= 1e-5 * mag[r] + 1e-30, "%s on %s row %llu: %g vs %g",
                              cv->scheme, sq_isa_name((sq_isa)isa), (unsigned long long)r, y[r], y0[r]);
        }
        if (cpu->fast[isa].fn.f32) check_fast(cv, cpu->fast[isa], isa, "fast slot", &v, ref, x, rows, cols);
        check_fast(cv, sq_fast_kernel_for(c, (sq_isa)isa), isa, "sq_fast_kernel_for", &v, ref, x, rows, cols);
        check_fast(cv, sq_best_kernel(&v, (sq_isa)isa), isa, "sq_best_kernel", &v, ref, x, rows, cols); /* the runtime's pick */
    }
    /* the active path (SQUISH_ISA may force portable) and the threaded helpers, which apply the links an
     * encoder may have added (spqr's perm): against the portable kernels on x mapped by them */
    float *xs = malloc(cols * sizeof(float)), *tmp = malloc(cols * sizeof(float));
    sq_xform_input(&v, x, 1, xs);
    cpu->gemv[SQ_ISA_PORTABLE](&v, xs, y0, 0, rows);
    for (uint64_t r = 0; r < rows; r++) {
        mag[r] = 0;
        for (uint64_t i = 0; i < cols; i++) mag[r] += fabs((double)ref[r * cols + i] * xs[i]);
    }
    ck_assert_int_eq(sq_gemv_mt(&v, x, y, 3), SQ_OK);
    for (uint64_t r = 0; r < rows; r++) ck_assert(fabs((double)y[r] - y0[r]) <= 1e-5 * mag[r] + 1e-30);
    sq_xform_unapply_rows(&v, rows, ref, tmp); /* ref in the original column order */
    ck_assert_int_eq(sq_decode_mt(&v, dec, 3), SQ_OK);
    ck_assert(!memcmp(dec, ref, rows * cols * sizeof(float)));
    free(xs);
    free(tmp);
    free(ref); free(dec); free(y0); free(y); free(mag); free(w); free(x);
    sq_encoded_free(&e);
}

START_TEST(kernels_agree_on_every_path) {
    const uint64_t shapes[][2] = {{37, 200}, {8, 256}, {3, 33}, {1, 7}};
    int nv = load_variants();
    slots_run = slots_not_here = 0;
    for (int k = 0; k < nv; k++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) check_kernels(&variants[k], shapes[s][0], shapes[s][1]);
        const int fam = variants[k].codec->family; /* scalar codes: 1056 columns pass through many blocks of each kernel and a tail */
        if (fam == SQ_FAMILY_INT || fam == SQ_FAMILY_LUT || fam == SQ_FAMILY_MX) check_kernels(&variants[k], 5, 1056);
        if (fam == SQ_FAMILY_INT) check_kernels(&variants[k], 2, 4128); /* the bit-plane kernels' width, with tails */
    }
    ck_assert_int_gt(slots_run, 0);
    fprintf(stderr, "kernels: %d kernel slots run on %d variants x 4 shapes (scalar codecs 5); %d slots need an ISA this CPU lacks "
            "(active: %s)\n", slots_run, nv, slots_not_here, sq_isa_name(sq_isa_active()));
}
END_TEST

/* The transform chain around every codec's kernels, for each codec's
 * default variant: the GEMV of a tensor with links equals its decode (in
 * the original order) times x. With perm and in_scale (input links that do
 * not mix columns) within 2e-5 sum|w x| per row; with all four links
 * (perm, in_scale, rht_in, rht_out: the Hadamard links mix columns and
 * rows, and 9 and 70 (184 for lattice codecs) have no Hadamard construction, so the blocked
 * fallback runs) within 2e-5 times the row's sum|w x| plus the root sum of
 * squares of the stored rows' sums |D x'|, what an orthonormal output
 * transform can spread. The threaded decode equals the row decode. */
START_TEST(transforms_on_every_codec) {
    int nv = load_variants();
    const uint64_t rows = 9;
    for (int k = 0; k < nv; k++) {
        if (!variants[k].is_default) continue;
        const codec_variant *cv = &variants[k];
        /* 70 columns; lattice codecs take 184 = 8·23, which has no Hadamard construction either */
        const uint64_t cols = cv->codec->family == SQ_FAMILY_LATTICE ? 184 : 70;
        for (int all = 0; all < 2; all++) {
            float *w = random_matrix(rows * cols, 1), *x = random_matrix(cols, 0), *d = malloc(rows * cols * sizeof(float));
            float *d2 = malloc(rows * cols * sizeof(float)), *raw = malloc(rows * cols * sizeof(float)), xs[184], y[9];
            uint32_t perm[184];
            float sc[184];
            uint8_t s_in[23], s_out[2];
            for (uint64_t j = 0; j < cols; j++) perm[j] = (uint32_t)j;
            for (uint64_t j = cols - 1; j > 0; j--) {
                uint64_t t = (uint64_t)(urand() * (double)(j + 1));
                uint32_t tmp = perm[j]; perm[j] = perm[t]; perm[t] = tmp;
            }
            for (uint64_t j = 0; j < cols; j++) sc[j] = (float)(0.5 + urand());
            for (size_t j = 0; j < sizeof s_in; j++) s_in[j] = (uint8_t)(urand() * 256);
            if (cols % 8) s_in[cols / 8] &= (uint8_t)((1u << (cols % 8)) - 1); /* the bits past the signs are zero */
            s_out[0] = (uint8_t)(urand() * 256);
            s_out[1] = 1;
            sq_encoded e;
            sq_err err;
            ck_assert_msg(codec_encode(cv->codec, cv->params, w, rows, cols, 1, &e, &err) == 0, "%s: %s", cv->scheme, err.msg);
            /* a codec may take fewer links (spqr: only perm, which its encoder adds: its 7 parts and perm are the
             * 8 a tensor can have); it is then tested with the links its encoder wrote */
            uint32_t q[SQ_NPARAMS];
            memcpy(q, e.params, sizeof q);
            q[SQ_P_XFORM] = SQ_XF_PERM | SQ_XF_IN_SCALE | (all ? SQ_XF_RHT_IN | SQ_XF_RHT_OUT : 0);
            char qwhy[160];
            const int takes = !cv->codec->check_params || !cv->codec->check_params(cv->codec, q, qwhy, sizeof qwhy);
            if (takes) {
                drop_links(&e);
                ck_assert_msg(sq_encoded_set_xform(&e, perm, sc, &err) == 0, "%s: %s", cv->scheme, err.msg);
            }
            if (all && takes) {
                ck_assert_msg(sq_encoded_add_xform(&e, SQ_XFORM_RHT_IN, s_in, &err) == 0, "%s: %s", cv->scheme, err.msg);
                ck_assert_msg(sq_encoded_add_xform(&e, SQ_XFORM_RHT_OUT, s_out, &err) == 0, "%s: %s", cv->scheme, err.msg);
            }
            sq_tview v;
            sq_tview_from_encoded(&e, &v);
            ck_assert_int_eq(sq_decode_rows(&v, 0, rows, d), SQ_OK);
            ck_assert_int_eq(sq_decode_mt(&v, d2, 3), SQ_OK);
            ck_assert_msg(!memcmp(d, d2, rows * cols * sizeof(float)), "%s: threaded decode differs with links", cv->scheme);
            ck_assert_int_eq(sq_gemv(&v, x, y, 0, rows), SQ_OK);
            cv->codec->cpu->decode[SQ_ISA_PORTABLE](&v, 0, rows, raw); /* stored order and basis */
            sq_xform_input(&v, x, 1, xs);
            double spread = 0;
            for (uint64_t r = 0; r < rows; r++) {
                double m = 0;
                for (uint64_t i = 0; i < cols; i++) m += fabs((double)raw[r * cols + i] * xs[i]);
                spread += m * m;
            }
            spread = all ? sqrt(spread) : 0;
            for (uint64_t r = 0; r < rows; r++) {
                double dot = 0, mag = 0;
                for (uint64_t i = 0; i < cols; i++) {
                    dot += (double)d[r * cols + i] * x[i];
                    mag += fabs((double)d[r * cols + i] * x[i]);
                }
                ck_assert_msg(fabs(y[r] - dot) <= 2e-5 * (mag + spread) + 1e-30, "%s%s row %llu: gemv %g vs decode.x %g",
                              cv->scheme, all ? "+perm+in_scale+rht_in+rht_out" : "+perm+in_scale", (unsigned long long)r,
                              y[r], dot);
            }
            sq_encoded_free(&e);
            free(w); free(x); free(d); free(d2); free(raw);
        }
    }
}
END_TEST

START_TEST(forced_portable_path) {
    const char *e = getenv("SQUISH_ISA");
    if (e && !strcmp(e, "portable")) ck_assert_int_eq(sq_isa_active(), SQ_ISA_PORTABLE);
    else ck_assert_int_ge(sq_isa_active(), SQ_ISA_PORTABLE);
}
END_TEST

/* f16 and bf16 conversion: exact for representable values, and RNE. */
START_TEST(float_conversions) {
    for (uint32_t h = 0; h < 0x7c00; h++) ck_assert_uint_eq(sq_f32_to_f16(sq_f16_to_f32((uint16_t)h)), h);
    ck_assert_uint_eq(sq_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);                 /* tie -> even */
    ck_assert_uint_eq(sq_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);             /* tie -> even (up) */
    ck_assert_uint_eq(sq_f32_to_f16(65520.0f), 0x7c00);                              /* rounds to inf */
    ck_assert_uint_eq(sq_f32_to_f16(ldexpf(1, -25)), 0x0000);                        /* tie -> even (0) */
    ck_assert_uint_eq(sq_f32_to_f16(3 * ldexpf(1, -25)), 0x0002);
    ck_assert_uint_eq(sq_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);
    ck_assert_uint_eq(sq_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)), 0x3f82);
}
END_TEST

START_TEST(scheme_strings) {
    const char *good[] = {"int4", "int4:g128:asym", "int8:pc:sym", "int3:g64", "int2:g32:sym:s32", "nf4", "nf4:dq",
                          "nf4:g128:dq", "fp8_e4m3", "fp8_e4m3:pt", "fp4_e2m1:g32:sbf16", "mxfp4", "mxfp8_e5m2:g32",
                          "f16", NULL};
    for (int i = 0; good[i]; i++) {
        const sq_codec *c, *c2;
        uint32_t p[SQ_NPARAMS], p2[SQ_NPARAMS];
        sq_err err;
        ck_assert_msg(sq_scheme_parse(good[i], &c, p, &err) == 0, "%s: %s", good[i], err.msg);
        char s[64];
        sq_scheme_format(c, p, s, sizeof s);
        ck_assert_int_eq(sq_scheme_parse(s, &c2, p2, &err), 0); /* canonical text parses back the same */
        ck_assert_ptr_eq(c, c2);
        ck_assert_int_eq(memcmp(p, p2, sizeof p), 0);
    }
    const char *bad[] = {"", "int5", "int4:g100", "int4:g128:g64", "nf4:asym", "mxfp4:g64", "int4:pt", "f16:g32",
                         "int4:sym:asym", "fp8_e4m3:dq", "int4:g0", "int4:g128x", "nf4:pc", NULL};
    for (int i = 0; bad[i]; i++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        ck_assert_msg(sq_scheme_parse(bad[i], &c, p, &err) == SQ_EUSAGE, "'%s' was accepted", bad[i]);
    }
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_scheme_parse("int4", &c, p, NULL);
    ck_assert_uint_eq(p[SQ_P_GROUP], 128);
    ck_assert_uint_eq(p[SQ_P_FLAGS], 0);
    ck_assert_uint_eq(p[SQ_P_SCALE_DTYPE], SQ_DT_F16);
    ck_assert(fabs(sq_layout_bpw(c, p, 4096, 4096) - 4.125) < 1e-9);
    sq_scheme_parse("int4:g128:asym", &c, p, NULL);
    ck_assert(fabs(sq_layout_bpw(c, p, 4096, 4096) - 4.1875) < 1e-9);
    sq_scheme_parse("mxfp4", &c, p, NULL);
    ck_assert(fabs(sq_layout_bpw(c, p, 4096, 4096) - 4.25) < 1e-9);
    sq_scheme_parse("nf4:dq", &c, p, NULL);
    ck_assert(fabs(sq_layout_bpw(c, p, 4096, 4096) - (4 + 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / (4096.0 * 4096))) < 1e-9);
}
END_TEST

/* Random bytes as parts, for every variant: decoding and every kernel slot
 * stay in bounds (ASan catches it if not). A part whose first dimension
 * depends on the data gets a random one, and the kernels run only when the
 * codec's check() accepts the parts, as sq_tview_open would. The fuzz target
 * tests/fuzz/fuzz_codecs.c does the same over its corpus. */
START_TEST(random_parts_decode_safely) {
    int nv = load_variants(), checked = 0;
    for (int k = 0; k < nv; k++) {
        const sq_codec *c = variants[k].codec;
        const uint32_t *p = variants[k].params;
        uint64_t rows = 5, cols = 70;
        sq_part_spec sp[SQ_CODEC_MAX_PARTS];
        int n = sq_layout(c, p, rows, cols, sp);
        sq_tview v = {0};
        v.codec = c;
        memcpy(v.params, p, sizeof v.params);
        v.rows = rows;
        v.cols = cols;
        v.nparts = n;
        void *bufs[SQ_CODEC_MAX_PARTS] = {0};
        for (int i = 0; i < n; i++) {
            if (sp[i].flags & SQ_PART_DATA_DIM0) sp[i].dims[0] = (uint64_t)(urand() * 40);
            uint64_t b = sq_part_spec_bytes(&sp[i]);
            uint8_t *m = malloc(b ? b : 1);
            for (uint64_t j = 0; j < b; j++) m[j] = (uint8_t)(urand() * 256);
            bufs[i] = m;
            v.part[i] = m;
            v.dim0[i] = sp[i].dims[0];
        }
        char why[256];
        if (!c->check || !c->check(&v, why, sizeof why)) {
            float *out = malloc(rows * cols * sizeof(float)), *x = random_matrix(cols, 0), y[5];
            for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
                if (!sq_isa_supported((sq_isa)isa)) continue;
                sq_decode_for(c, (sq_isa)isa)(&v, 0, rows, out);
                sq_gemv_for(c, (sq_isa)isa)(&v, x, y, 0, rows);
                sq_cpu_kernel kk = sq_fast_kernel_for(c, (sq_isa)isa);
                sq_act a;
                ck_assert_int_eq(sq_act_prepare(kk.act, x, cols, &a, NULL), SQ_OK);
                sq_kernel_run(kk, &v, &a, y, 0, rows);
                sq_act_release(&a);
            }
            free(out);
            free(x);
            checked++;
        }
        for (int i = 0; i < n; i++) free(bufs[i]);
    }
    ck_assert_int_gt(checked, 0);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("codecs");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, golden_vectors);
    tcase_add_test(tc, minifloat_tables_exhaustive);
    tcase_add_test(tc, variants_parse_back);
    tcase_add_test(tc, roundtrip_every_variant);
    tcase_add_test(tc, kernels_agree_on_every_path);
    tcase_add_test(tc, transforms_on_every_codec);
    tcase_add_test(tc, forced_portable_path);
    tcase_add_test(tc, float_conversions);
    tcase_add_test(tc, scheme_strings);
    tcase_add_test(tc, random_parts_decode_safely);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
