#version 450
// Reads p.T 16-byte words of binding 0 (a tensor's buffer: the bytes a GEMV
// reads), grid-stride, and stores nothing unless an invocation's xor equals
// p.pad0 (practically never; the store keeps the loads): the ceiling for a
// GEMV of that size, dispatched the same way, that the benchmark shows.
#include "common.glsl"

layout(std430, binding = 3) writeonly buffer Dst { uint d[]; };

void main() {
    uint n = p.T, id = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x, stride = p.grid_x * WG;
    uvec4 a = uvec4(0u);
    // up to four words per invocation and pass, all four loads issued before any is used
    for (uint i = id; i < n; i += 4u * stride) {
        uvec4 b = i + stride < n ? w4[i + stride] : uvec4(0u);
        uvec4 c = i + 2u * stride < n ? w4[i + 2u * stride] : uvec4(0u);
        uvec4 e = i + 3u * stride < n ? w4[i + 3u * stride] : uvec4(0u);
        a ^= w4[i] ^ b ^ c ^ e;
    }
    uint v = a.x ^ a.y ^ a.z ^ a.w;
    if (v == p.pad0) d[0] = v;
}
