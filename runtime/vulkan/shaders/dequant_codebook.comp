#version 450
// Decodes rows [row_base, row_base + rows) of an AQLM matrix to f32, one
// invocation per group of 8 values, with the CPU decoder's arithmetic
// (codewords added in codebook order, then times the row's scale): bit-exact.
#include "codebook.glsl"

layout(std430, binding = 3) writeonly buffer Out { float o[]; };

void main() {
    const uint id = flat_group() * WG + gl_LocalInvocationID.x, G = groups();
    const uint r = id / G, j = id % G; // r: row of this slice
    if (r >= p.rows) return;
    const uint R = p.row_base + r;
    vec4 a, b;
    codeword_sum(R, j, a, b);
    const float s = row_scale(R);
    const float v[8] = float[8](a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
    const uint c0 = 8u * j, n = min(8u, p.cols - c0); // the last group may be partial
    for (uint i = 0u; i < n; i++) o[r * p.cols + c0 + i] = s * v[i];
}
