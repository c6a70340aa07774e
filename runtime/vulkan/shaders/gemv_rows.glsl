// The chunk loop of the GEMVs over codes (gemv_codes.comp with TT = 1,
// gemv_q8.comp, gemv_lattice.comp): NR rows per invocation (a #define), RPW
// groups of rows per workgroup, WG / RPW invocations per row group, and what
// is loaded ahead. Each GEMV defines, before including this file, the type
// xchunk (a chunk's activations) with load_xchunk(k), and after it
// chunk_rows.
layout(constant_id = 5) const uint RPW = 1;
// What an invocation loads before it computes chunk k: 0 nothing (each
// chunk's words are loaded when they are computed); 1 the code words of its
// next chunk (k + WG/RPW), so that they are in flight during the arithmetic;
// 2 the same with that chunk's activations too (one more register set, no
// wait on x at the start of a chunk). Same results.
layout(constant_id = 6) const uint PF = 1;

// Words of chunk k of the NR rows whose chunk 0 starts at cb[] (codes) and sb[] (scale index).
void fetch_rows(uint cb[NR], uint sb[NR], uint k, out chunk_words cw[NR]) {
    [[unroll]] for (uint i = 0u; i < NR; i++) cw[i] = fetch_chunk(cb[i] + k * BITS, sb[i] + (k >> p.gshift));
}

// Adds chunk k's contribution to the NR rows' sums acc[], from the code
// words in cw (with PF = 0 from words it loads just before each row's use)
// and the activations x.
void chunk_rows(chunk_words cw[NR], xchunk x, uint cb[NR], uint sb[NR], uint k, inout float acc[NR]);

// This invocation's share of the sums of rows r0 .. r0 + NR - 1 (rows past
// the end repeat the last row: their sums are computed but never stored).
void row_sums(uint r0, out float acc[NR]) {
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, n = p.nchunks;
    uint cb[NR], sb[NR]; // per-row offsets of chunk 0's codes and scale index, outside the loop
    [[unroll]] for (uint i = 0u; i < NR; i++) {
        uint r = min(r0 + i, p.rows - 1u);
        cb[i] = chunk_base(r, 0u);
        sb[i] = r * p.srow;
        acc[i] = 0.0;
    }
    chunk_words a[NR], b[NR];
    if (PF == 0u)
        for (uint k = lane; k < n; k += TPR) chunk_rows(a, load_xchunk(k), cb, sb, k, acc);
    else if (lane < n) { // chunk k + TPR's words loaded before chunk k is computed, in two register sets (no copies)
        xchunk xa, xb;
        fetch_rows(cb, sb, lane, a);
        if (PF == 2u) xa = load_xchunk(lane);
        for (uint k = lane;; k += 2u * TPR) {
            bool more = k + TPR < n;
            if (more) {
                fetch_rows(cb, sb, k + TPR, b);
                if (PF == 2u) xb = load_xchunk(k + TPR);
            }
            chunk_rows(a, PF == 2u ? xa : load_xchunk(k), cb, sb, k, acc);
            if (!more) break;
            if (k + 2u * TPR < n) {
                fetch_rows(cb, sb, k + 2u * TPR, a);
                if (PF == 2u) xa = load_xchunk(k + 2u * TPR);
            }
            chunk_rows(b, PF == 2u ? xb : load_xchunk(k + TPR), cb, sb, k + TPR, acc);
            if (k + 2u * TPR >= n) break;
        }
    }
}

// Stores acc[] for reduce_rows (red[n * WG + me] = acc[n]).
void store_sums(float acc[NR], uint me) {
    [[unroll]] for (uint n = 0u; n < NR; n++) red[n * WG + me] = acc[n];
}
