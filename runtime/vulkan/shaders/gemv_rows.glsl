// The chunk loop of the GEMVs over codes (gemv_codes.comp with TT = 1,
// gemv_q8.comp): NR rows per invocation (a #define), RPW groups of rows per
// workgroup, WG / RPW invocations per row group, and whether the next chunk's
// words are loaded ahead. Each GEMV defines chunk_rows.
layout(constant_id = 5) const uint RPW = 1;
// 1: an invocation loads the words of its next chunk (k + WG/RPW) before it
// computes chunk k, so that its loads are in flight during the arithmetic;
// 0: it loads each chunk's words when it computes them. Same results.
layout(constant_id = 6) const uint PF = 1;

// Words of chunk k of the NR rows whose chunk 0 starts at cb[] (codes) and sb[] (scale index).
void fetch_rows(uint cb[NR], uint sb[NR], uint k, out chunk_words cw[NR]) {
    [[unroll]] for (uint i = 0u; i < NR; i++) cw[i] = fetch_chunk(cb[i] + k * BITS, sb[i] + (k >> p.gshift));
}

// Chunk k's contribution to the NR rows' sums (lanes past NR stay 0), from
// the words in cw, or with PF = 0 from words it loads just before each row's use.
vec4 chunk_rows(chunk_words cw[NR], uint cb[NR], uint sb[NR], uint k);

// This invocation's share of the sums of rows r0 .. r0 + NR - 1 (rows past
// the end repeat the last row: their sums are computed but never stored).
vec4 row_sums(uint r0) {
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, n = p.nchunks;
    uint cb[NR], sb[NR]; // per-row offsets of chunk 0's codes and scale index, outside the loop
    [[unroll]] for (uint i = 0u; i < NR; i++) {
        uint r = min(r0 + i, p.rows - 1u);
        cb[i] = chunk_base(r, 0u);
        sb[i] = r * p.srow;
    }
    vec4 acc = vec4(0.0);
    chunk_words a[NR], b[NR];
    if (PF == 0u)
        for (uint k = lane; k < n; k += TPR) acc += chunk_rows(a, cb, sb, k);
    else if (lane < n) { // chunk k + TPR's words loaded before chunk k is computed, in two register sets (no copies)
        fetch_rows(cb, sb, lane, a);
        for (uint k = lane;; k += 2u * TPR) {
            bool more = k + TPR < n;
            if (more) fetch_rows(cb, sb, k + TPR, b);
            acc += chunk_rows(a, cb, sb, k);
            if (!more) break;
            if (k + 2u * TPR < n) fetch_rows(cb, sb, k + 2u * TPR, a);
            acc += chunk_rows(b, cb, sb, k + TPR);
            if (k + 2u * TPR >= n) break;
        }
    }
    return acc;
}
