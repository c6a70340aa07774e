#version 450
// Decodes rows [row_base, row_base + rows) of a codec-coded matrix to f32: one invocation per chunk
// of 32 values, with the same arithmetic as the CPU decoder (bit-exact).
#include "codes.glsl"

layout(std430, binding = 3) writeonly buffer Out { float o[]; };

void main() {
    load_lut();
    uint id = flat_group() * WG + gl_LocalInvocationID.x;
    uint r = id / p.nchunks, k = id % p.nchunks; // r: row of this slice, R: row of the tensor
    if (r >= p.rows) return;
    uint R = p.row_base + r, si = scale_index(R, k);
    float s = group_scale(si), v[32];
    decode_chunk(R, k, zero_point(si), v);
    uint c0 = k * 32u, n = min(32u, p.cols - c0);
    for (uint i = 0u; i < n; i++) o[r * p.cols + c0 + i] = v[i] * s;
}
