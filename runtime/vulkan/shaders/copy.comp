#version 450
// Plain copy of p.T 16-byte words (binding 2 to binding 3), grid-stride: the
// bandwidth baseline the GEMV benchmark is compared with.
#include "common.glsl"

layout(std430, binding = 2) readonly buffer Src { uvec4 s[]; };
layout(std430, binding = 3) writeonly buffer Dst { uvec4 d[]; };

void main() {
    uint n = p.T, stride = p.grid_x * WG;
    for (uint i = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x; i < n; i += stride) d[i] = s[i];
}
