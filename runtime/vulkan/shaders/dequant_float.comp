#version 450
// f32/f16/bf16 matrix to f32, one value per invocation (exact).
#include "floats.glsl"

layout(std430, binding = 3) writeonly buffer Out { float o[]; };

void main() {
    uint i = flat_group() * WG + gl_LocalInvocationID.x;
    if (i < p.rows * p.cols) o[i] = elem(p.row_base * p.cols + i); // rows [row_base, row_base + rows)
}
