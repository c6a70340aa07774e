#version 450
// The second pass of the split lookup-table GEMV (gemv_codebook.comp, LUT = 1):
// y[o] = scale[o] * (part[0][o] + part[1][o] + ... + part[p.pad1 - 1][o]),
// the slabs' partial sums added in slab order (one invocation per row).
#include "codebook.glsl"

layout(std430, binding = 2) readonly buffer Part { float part[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

void main() {
    const uint o = flat_group() * WG + gl_LocalInvocationID.x;
    if (o >= p.rows) return;
    float s = 0.0;
    for (uint k = 0u; k < p.pad1; k++) s += part[k * p.rows + o];
    y[o] = row_scale(o) * s;
}
