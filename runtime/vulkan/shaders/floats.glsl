// Plain float matrices (f32, f16, bf16), element i of the row-major data part.
#include "common.glsl"

layout(constant_id = 1) const uint DT = 0; // 0 f32, 1 f16, 2 bf16

float elem(uint i) {
    if (DT == 0u) return uintBitsToFloat(w[p.codes + i]);
    uint h = (w[p.codes + (i >> 1)] >> ((i & 1u) * 16u)) & 0xFFFFu;
    return DT == 1u ? half_bits(h) : uintBitsToFloat(h << 16);
}

// For GEMV: f16 through the hardware conversion (dequantize keeps the exact
// bit-level path above, whatever the device does with f16 subnormals).
float elem_fast(uint i) {
    if (DT != 1u) return elem(i);
    vec2 h = unpackHalf2x16(w[p.codes + (i >> 1)]);
    return (i & 1u) != 0u ? h.y : h.x;
}
