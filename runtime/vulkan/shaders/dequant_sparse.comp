#version 450
// Decodes rows [row_base, row_base + rows) of a SpQR matrix to f32 in stored
// column order, one invocation per value, with the CPU decoder's arithmetic
// (bit-exact); an outlier at the position (found by binary search in the
// row's increasing CSR columns) replaces the dense value.
#include "sparse.glsl"

layout(std430, binding = 3) writeonly buffer Out { float o[]; };

void main() {
    const uint id = flat_group() * WG + gl_LocalInvocationID.x;
    const uint r = id / p.cols, j = id % p.cols; // r: row of this slice
    if (r >= p.rows) return;
    const uint R = p.row_base + r;
    float S, Z;
    group_stats(R, j / G1, S, Z);
    float d = S * (float(code_at(R * code_stride(), j)) - Z);
    const uint end = w[OFF_ROW_PTR + R + 1u];
    uint lo = w[OFF_ROW_PTR + R], hi = end;
    while (lo < hi) {
        const uint mid = (lo + hi) >> 1;
        if (u16_at(OFF_OCOLS, mid) < j) lo = mid + 1u;
        else hi = mid;
    }
    if (lo < end && u16_at(OFF_OCOLS, lo) == j) d = half_bits(u16_at(OFF_OVALS, lo));
    o[r * p.cols + j] = d;
}
