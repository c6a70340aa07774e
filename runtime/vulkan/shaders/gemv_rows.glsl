// The work split of the GEMVs over codes (gemv_codes.comp with TT = 1,
// gemv_q8.comp): NR rows per invocation (a #define), RPW groups of rows per
// workgroup, and whether the next chunk's words are loaded ahead.
layout(constant_id = 5) const uint RPW = 1;
// 1: an invocation loads the words of its next chunk (k + WG/RPW) before it
// computes chunk k, so that its loads are in flight during the arithmetic;
// 0: it loads each chunk's words when it computes them. Same results.
layout(constant_id = 6) const uint PF = 1;

// Words of chunk k of the NR rows whose chunk 0 starts at cb[] (codes) and sb[] (scale index).
void fetch_rows(uint cb[NR], uint sb[NR], uint k, out chunk_words cw[NR]) {
    [[unroll]] for (uint i = 0u; i < NR; i++) cw[i] = fetch_chunk(cb[i] + k * BITS, sb[i] + (k >> p.gshift));
}
