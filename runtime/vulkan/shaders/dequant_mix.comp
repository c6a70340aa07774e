#version 450
// Decodes rows [row_base, row_base + rows) of a mix matrix to f32 in stored
// column order, one invocation per value, with the CPU decoder's arithmetic
// (s q + m, no fused multiply-add: bit-exact).
#include "mix.glsl"

layout(std430, binding = 3) writeonly buffer Out { float o[]; };

void main() {
    const uint id = flat_group() * WG + gl_LocalInvocationID.x;
    const uint r = id / p.cols, j = id % p.cols; // r: row of this slice
    if (r >= p.rows) return;
    const uint R = p.row_base + r, jb = j / B;
    const uint off = w[OFF_ROW_PTR + R] + (B / 8u) * width_sum(R, 0u, jb); // blocks before jb are whole
    const uint b = width_of(R, jb);
    precise float prod = scale_of(R, jb) * float(code_at(off, b, j - jb * B));
    precise float d = prod + min_of(R, jb);
    o[r * p.cols + j] = d;
}
