/* TCA-TBE streams: sizes, the encoder, the checks a reader runs before
 * decoding (spec/squizd.md §13.3), and the dispatch to the kernels. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tca_tbe/tbe_internal.h"

uint64_t sq_tbe_coded_size(uint64_t n, uint64_t n_escapes) {
    uint64_t nb = n / SQ_TBE_BLOCK + (n % SQ_TBE_BLOCK != 0), s;
    if (!mul_ok(nb, SQ_TBE_RECORD, &s) || !add_ok(s, SQ_TBE_HEADER, &s) || !add_ok(s, n_escapes, &s)) return 0;
    return s;
}

/* The window of block values v[0..m): the smallest first exponent e0 in
 * 0..249 whose window e0..e0+6 holds the most values. */
static unsigned best_base(const uint16_t *v, uint64_t m) {
    uint32_t cnt[256] = {0};
    for (uint64_t j = 0; j < m; j++) cnt[(v[j] >> 7) & 0xff]++;
    uint32_t s = 0, best = 0;
    unsigned e0 = 0;
    for (unsigned e = 0; e < SQ_TBE_WINDOW; e++) s += cnt[e];
    for (unsigned e = 0;; e++) { /* s = values in the window starting at e */
        if (s > best) best = s, e0 = e;
        if (e == SQ_TBE_MAX_BASE) break;
        s += cnt[e + SQ_TBE_WINDOW] - cnt[e];
    }
    return e0;
}

sq_status sq_tbe_encode(const uint16_t *v, uint64_t n, uint8_t **out, uint64_t *out_size, sq_err *err) {
    *out = NULL;
    *out_size = 0;
    uint64_t cap = sq_tbe_coded_size(n, n); /* at most one escape per value */
    if (!cap || cap > SIZE_MAX)
        return sq_err_set(err, SQ_ENOMEM, "TCA-TBE: %llu values do not fit in memory", (unsigned long long)n);
    uint64_t nb = n / SQ_TBE_BLOCK + (n % SQ_TBE_BLOCK != 0);
    uint8_t *o = calloc(1, (size_t)cap);
    if (!o) return sq_err_set(err, SQ_ENOMEM, "TCA-TBE: cannot allocate %llu bytes to code %llu values",
                              (unsigned long long)cap, (unsigned long long)n);
    /* escapes go to the end of the worst case first, then move down */
    uint8_t *esc = o + SQ_TBE_HEADER + nb * SQ_TBE_RECORD;
    uint64_t ne = 0;
    for (uint64_t b = 0; b < nb; b++) {
        const uint16_t *vb = v + b * SQ_TBE_BLOCK;
        uint64_t m = b + 1 < nb ? SQ_TBE_BLOCK : n - b * SQ_TBE_BLOCK;
        unsigned e0 = best_base(vb, m);
        uint8_t *rec = o + SQ_TBE_HEADER + b * SQ_TBE_RECORD;
        put64(rec + SQ_TBE_R_WORD, (uint64_t)e0 | ne << 8);
        uint64_t plane[3][2] = {{0}};
        for (uint64_t j = 0; j < m; j++) {
            unsigned e = (vb[j] >> 7) & 0xff, idx = e - e0 < SQ_TBE_WINDOW ? e - e0 : 7; /* unsigned: e < e0 wraps */
            for (int p = 0; p < 3; p++) plane[p][j >> 6] |= (uint64_t)(idx >> p & 1) << (j & 63);
            rec[SQ_TBE_R_SM + j] = (uint8_t)((vb[j] >> 8 & 0x80) | (vb[j] & 0x7f));
            if (idx == 7) esc[ne++] = (uint8_t)e;
        }
        for (int p = 0; p < 3; p++) {
            put64(rec + SQ_TBE_R_PLANE0 + 16 * p, plane[p][0]);
            put64(rec + SQ_TBE_R_PLANE0 + 16 * p + 8, plane[p][1]);
        }
    }
    memcpy(o, SQ_TBE_MAGIC, 4);
    put64(o + 8, n);
    put64(o + 16, ne);
    uint64_t size = sq_tbe_coded_size(n, ne);
    uint8_t *shrunk = realloc(o, (size_t)size);
    *out = shrunk ? shrunk : o;
    *out_size = size;
    return SQ_OK;
}

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (why && len) vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

static int popcount64(uint64_t x) { return __builtin_popcountll(x); }

int sq_tbe_open(sq_tbe *t, const void *data, uint64_t size, uint64_t n, char *why, size_t why_len) {
    const uint8_t *d = data;
    memset(t, 0, sizeof *t);
    if (size < SQ_TBE_HEADER)
        return fail(why, why_len, "TCA-TBE stream of %llu bytes is shorter than its 32-byte header (T1)",
                    (unsigned long long)size);
    if (memcmp(d, SQ_TBE_MAGIC, 4))
        return fail(why, why_len, "TCA-TBE stream does not start with the magic \"TBE1\" (bytes %02x %02x %02x %02x) (T1)",
                    d[0], d[1], d[2], d[3]);
    if (get32(d + 4) || get64(d + 24))
        return fail(why, why_len, "TCA-TBE header: reserved bytes 4..7 or 24..31 are not zero (T1)");
    uint64_t hn = get64(d + 8), ne = get64(d + 16);
    if (hn != n)
        return fail(why, why_len, "TCA-TBE header: n_values (byte 8) = %llu, the part holds %llu bf16 values (T1)",
                    (unsigned long long)hn, (unsigned long long)n);
    uint64_t want = ne <= n ? sq_tbe_coded_size(n, ne) : 0;
    if (!want)
        return fail(why, why_len, "TCA-TBE header: n_escapes (byte 16) = %llu is more than the %llu values (T2)",
                    (unsigned long long)ne, (unsigned long long)n);
    if (want != size)
        return fail(why, why_len, "TCA-TBE stream is %llu bytes; 32 + 184 x %llu blocks + %llu escapes = %llu (T2)",
                    (unsigned long long)size, (unsigned long long)(n / SQ_TBE_BLOCK + (n % SQ_TBE_BLOCK != 0)),
                    (unsigned long long)ne, (unsigned long long)want);
    t->data = d;
    t->size = size;
    t->n = n;
    t->n_blocks = n / SQ_TBE_BLOCK + (n % SQ_TBE_BLOCK != 0);
    t->n_escapes = ne;
    t->esc = d + size - ne;
    uint64_t seen = 0;
    for (uint64_t b = 0; b < t->n_blocks; b++) {
        const uint8_t *rec = sq_tbe_rec(t, b);
        uint64_t off = (uint64_t)(rec - d), w = get64(rec), m = sq_tbe_block_len(t, b);
        unsigned base = (unsigned)(w & 0xff);
        if (base > SQ_TBE_MAX_BASE)
            return fail(why, why_len, "TCA-TBE block %llu (byte %llu): window base %u is above 249 (T3)",
                        (unsigned long long)b, (unsigned long long)off, base);
        if (w >> 8 != seen)
            return fail(why, why_len, "TCA-TBE block %llu (byte %llu): escape start %llu, but the blocks before it have "
                        "%llu escapes (T3)", (unsigned long long)b, (unsigned long long)off,
                        (unsigned long long)(w >> 8), (unsigned long long)seen);
        uint64_t k = 0;
        for (int h = 0; h < 2; h++) {
            uint64_t p0 = get64(rec + SQ_TBE_R_PLANE0 + 8 * h), p1 = get64(rec + SQ_TBE_R_PLANE1 + 8 * h),
                     p2 = get64(rec + SQ_TBE_R_PLANE2 + 8 * h);
            /* positions past the block's values: every plane bit and the byte zero (T4) */
            uint64_t valid = m >= 64 * (uint64_t)(h + 1) ? ~0ull : m <= 64 * (uint64_t)h ? 0 : (1ull << (m - 64 * h)) - 1;
            if ((p0 | p1 | p2) & ~valid)
                return fail(why, why_len, "TCA-TBE block %llu (byte %llu): a padding position past value %llu has "
                            "index bits set (T4)", (unsigned long long)b, (unsigned long long)off, (unsigned long long)m);
            k += (uint64_t)popcount64(p0 & p1 & p2);
        }
        for (uint64_t j = m; j < SQ_TBE_BLOCK; j++)
            if (rec[SQ_TBE_R_SM + j])
                return fail(why, why_len, "TCA-TBE block %llu (byte %llu): padding position %llu has a non-zero "
                            "sign/mantissa byte (T4)", (unsigned long long)b, (unsigned long long)off,
                            (unsigned long long)j);
        if (k > ne - seen)
            return fail(why, why_len, "TCA-TBE block %llu (byte %llu): %llu escapes run past the %llu of the escape "
                        "area (T3)", (unsigned long long)b, (unsigned long long)off, (unsigned long long)k,
                        (unsigned long long)ne);
        for (uint64_t i = seen; i < seen + k; i++)
            if ((unsigned)t->esc[i] - base < SQ_TBE_WINDOW)
                return fail(why, why_len, "TCA-TBE block %llu: escape byte %llu (stream byte %llu) is exponent %u, "
                            "inside the block's window %u..%u (T5)", (unsigned long long)b, (unsigned long long)i,
                            (unsigned long long)(size - ne + i), t->esc[i], base, base + SQ_TBE_WINDOW - 1);
        seen += k;
    }
    if (seen != ne)
        return fail(why, why_len, "TCA-TBE: the blocks have %llu escapes, the header says %llu (T3)",
                    (unsigned long long)seen, (unsigned long long)ne);
    return 0;
}

/* ---- dispatch ---- */
static int vbmi2;
static pthread_once_t vbmi2_once = PTHREAD_ONCE_INIT;
static void vbmi2_probe(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    vbmi2 = __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("popcnt");
#endif
}
int sq_tbe_cpu_vbmi2(void) {
    pthread_once(&vbmi2_once, vbmi2_probe);
    return vbmi2;
}

sq_isa sq_tbe_isa(sq_isa isa) {
    if (isa >= SQ_ISA_AVX512 && sq_isa_supported(SQ_ISA_AVX512) && sq_tbe_cpu_vbmi2()) return SQ_ISA_AVX512;
    if (isa >= SQ_ISA_AVX2 && sq_isa_supported(SQ_ISA_AVX2)) return SQ_ISA_AVX2;
    return SQ_ISA_PORTABLE;
}

sq_tbe_decode_fn sq_tbe_decode_for(sq_isa isa) {
    switch (sq_tbe_isa(isa)) {
    case SQ_ISA_AVX512: return sq_tbe_decode_avx512;
    case SQ_ISA_AVX2: return sq_tbe_decode_avx2;
    default: return sq_tbe_decode_portable;
    }
}

sq_tbe_gemv_fn sq_tbe_gemv_for(sq_isa isa) {
    switch (sq_tbe_isa(isa)) {
    case SQ_ISA_AVX512: return sq_tbe_gemv_avx512;
    case SQ_ISA_AVX2: return sq_tbe_gemv_avx2;
    default: return sq_tbe_gemv_portable;
    }
}

void sq_tbe_decode_blocks(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out) {
    sq_tbe_decode_for(sq_isa_active())(t, b0, b1, out);
}

sq_status sq_tbe_decode(const void *data, uint64_t size, uint64_t n, uint16_t *out, sq_err *err) {
    sq_tbe t;
    char why[300];
    if (sq_tbe_open(&t, data, size, n, why, sizeof why)) return sq_err_set(err, SQ_ECORRUPT, "%s", why);
    sq_tbe_decode_blocks(&t, 0, t.n_blocks, out);
    return SQ_OK;
}

void sq_tbe_gemv(const sq_tbe *t, uint64_t rows, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1) {
    (void)rows;
    sq_tbe_gemv_for(sq_isa_active())(t, cols, x, y, r0, r1);
}

void sq_tbe_fill(const sq_tbe *t, sq_tbe_decode_fn decode, uint64_t i0, uint64_t len, uint16_t *out) {
    uint16_t tmp[SQ_TBE_BLOCK];
    while (len) {
        uint64_t b = i0 / SQ_TBE_BLOCK, off = i0 % SQ_TBE_BLOCK;
        uint64_t full = off ? 0 : len / SQ_TBE_BLOCK;
        if (full) { /* whole blocks straight into out */
            decode(t, b, b + full, out);
            i0 += full * SQ_TBE_BLOCK, out += full * SQ_TBE_BLOCK, len -= full * SQ_TBE_BLOCK;
            continue;
        }
        decode(t, b, b + 1, tmp);
        uint64_t k = sq_tbe_block_len(t, b) - off;
        if (k > len) k = len;
        memcpy(out, tmp + off, (size_t)k * sizeof *out);
        i0 += k, out += k, len -= k;
    }
}
