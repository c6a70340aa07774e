#version 450
// Decodes rows [row_base, row_base + rows) of a QuIP# lattice matrix to f32 in
// the stored basis: one invocation per group of 8 weights, with the CPU
// decoder's arithmetic (bit-exact).
#include "lattice.glsl"

layout(std430, binding = 3) writeonly buffer Out { float o[]; };

void main() {
    load_tables();
    const uint G = groups_per_row(), id = flat_group() * WG + gl_LocalInvocationID.x;
    const uint r = id / G, g = id % G; // r: row of this slice
    if (r >= p.rows) return;
    const uint R = p.row_base + r;
    vec4 lo, hi;
    group_values(R, g, scale_bits(R), lo, hi);
    const uint o0 = r * p.cols + 8u * g;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        o[o0 + i] = lo[i];
        o[o0 + 4u + i] = hi[i];
    }
}
