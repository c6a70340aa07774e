#!/usr/bin/env python3
"""Test vectors for squish's GGUF import of ggml's quantized blocks
(libformat/src/readers/ggml_decode.c), computed without squish's C code and
without ggml's: written from the block layouts in docs/gguf-import.md.

For each type, blocks are built from chosen field values (scales, mins and
codes: random, extreme, subnormal, zero and patterned): the fields are packed
into the type's bytes, and the expected values are computed from the fields
themselves (never by unpacking the bytes), exactly, with rationals, then
rounded once to float32 (nearest, ties to even). That is what a decoder
must produce: each value is one rounding of an exact expression.

Output (committed; read by tests/test_gguf_quant.c), little-endian:
  "SQGGMLV1", u32 case count, then per case:
  char name[8] (NUL-padded), u32 ggml type, u32 values per block,
  u32 bytes per block, u32 blocks, the blocks' bytes, the expected f32 values.
Standard library only. Run: python3 testdata/ggml/gen_ggml_blocks.py
"""
import os
import random
import struct
import sys
from fractions import Fraction

GRID = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]


def f16_value(bits):
    """Exact value of an IEEE half from its bits."""
    return Fraction(struct.unpack('<e', struct.pack('<H', bits))[0])


def f32_round(x):
    """x (a Fraction) rounded to the nearest float32, ties to even."""
    if x == 0:
        return 0.0
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, -126)  # below 2^-126 the spacing stays 2^-149
    quantum = Fraction(2) ** (e - 23)
    q = a / quantum
    n = q.numerator // q.denominator
    rem = q - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2):
        n += 1
    v = n * quantum
    assert v < Fraction(2) ** 128
    return float(v) if x > 0 else -float(v)


def h16(bits):
    return struct.pack('<H', bits)


def nibbles32(q):
    """32 four-bit codes: code j in the low nibble of byte j, code j+16 in its high nibble."""
    return bytes((q[j] & 15) | (q[j + 16] & 15) << 4 for j in range(16))


# ---- scale choice: one f16 bit pattern per "mode" ----
def scale_bits(rng, mode, allow_negative=True):
    if mode == 'random':
        bits = rng.randrange(0x1400, 0x3c00)      # 2^-10 .. 1, typical of weights
    elif mode == 'max':
        bits = 0x7bff                              # 65504
    elif mode == 'subnormal':
        bits = rng.randrange(1, 0x400)
    elif mode == 'zero':
        bits = 0
    else:  # 'pattern'
        bits = 0x3555                              # 1.333...
    if allow_negative and mode in ('random', 'subnormal') and rng.random() < 0.5:
        bits |= 0x8000
    return bits


def codes(rng, mode, n, lo, hi, k=0):
    """n codes in [lo, hi]: random, all hi ('max'), all lo ('subnormal'), or position-patterned."""
    if mode == 'max':
        return [hi] * n
    if mode == 'subnormal':
        return [lo] * n
    if mode == 'pattern':
        return [lo + (i * 7 + k) % (hi - lo + 1) for i in range(n)]
    return [rng.randint(lo, hi) for _ in range(n)]


# ---- one generator per type: (bytes, exact values) ----
def q4_0(rng, mode):
    d = scale_bits(rng, mode)
    q = codes(rng, mode, 32, 0, 15)
    return h16(d) + nibbles32(q), [f16_value(d) * (c - 8) for c in q]


def q4_1(rng, mode):
    d, m = scale_bits(rng, mode), scale_bits(rng, mode)
    q = codes(rng, mode, 32, 0, 15)
    return h16(d) + h16(m) + nibbles32(q), [f16_value(d) * c + f16_value(m) for c in q]


def q5_bits(q):
    qh = sum(((c >> 4) & 1) << j for j, c in enumerate(q))
    return struct.pack('<I', qh) + nibbles32(q)


def q5_0(rng, mode):
    d = scale_bits(rng, mode)
    q = codes(rng, mode, 32, 0, 31)
    return h16(d) + q5_bits(q), [f16_value(d) * (c - 16) for c in q]


def q5_1(rng, mode):
    d, m = scale_bits(rng, mode), scale_bits(rng, mode)
    q = codes(rng, mode, 32, 0, 31)
    return h16(d) + h16(m) + q5_bits(q), [f16_value(d) * c + f16_value(m) for c in q]


def q8_0(rng, mode):
    d = scale_bits(rng, mode)
    q = codes(rng, mode, 32, -128, 127)
    return h16(d) + struct.pack('<32b', *q), [f16_value(d) * c for c in q]


def q2_k(rng, mode):
    d, dmin = scale_bits(rng, mode), scale_bits(rng, mode)
    sc, mn = codes(rng, mode, 16, 0, 15, 1), codes(rng, mode, 16, 0, 15, 2)
    q = codes(rng, mode, 256, 0, 3)
    qs = [0] * 64
    for h in range(2):
        for s in range(4):
            for l in range(32):
                qs[32 * h + l] |= q[128 * h + 32 * s + l] << (2 * s)
    raw = bytes(sc[k] | mn[k] << 4 for k in range(16)) + bytes(qs) + h16(d) + h16(dmin)
    vals = [f16_value(d) * sc[e // 16] * q[e] - f16_value(dmin) * mn[e // 16] for e in range(256)]
    return raw, vals


def q3_k(rng, mode):
    d = scale_bits(rng, mode)
    s6 = codes(rng, mode, 16, 0, 63, 3)           # stored scales; the value is s6 - 32
    c3 = codes(rng, mode, 256, 0, 7)               # stored 3-bit codes; the value is c3 - 4
    hmask, qs = [0] * 32, [0] * 64
    for h in range(2):
        for s in range(4):
            for l in range(32):
                c = c3[128 * h + 32 * s + l]
                qs[32 * h + l] |= (c & 3) << (2 * s)
                hmask[l] |= (c >> 2) << (4 * h + s)
    sb = [0] * 12
    for i in range(8):
        sb[i] = (s6[i] & 15) | (s6[i + 8] & 15) << 4
    for i in range(16):
        sb[8 + i % 4] |= (s6[i] >> 4) << (2 * (i // 4))
    raw = bytes(hmask) + bytes(qs) + bytes(sb) + h16(d)
    vals = [f16_value(d) * (s6[e // 16] - 32) * (c3[e] - 4) for e in range(256)]
    return raw, vals


def k_scales(sc, mn):
    """Eight 6-bit (scale, min) pairs into 12 bytes (Q4_K, Q5_K)."""
    b = [0] * 12
    for j in range(4):
        b[j] = (sc[j] & 63) | (sc[j + 4] >> 4) << 6
        b[j + 4] = (mn[j] & 63) | (mn[j + 4] >> 4) << 6
        b[j + 8] = (sc[j + 4] & 15) | (mn[j + 4] & 15) << 4
    return bytes(b)


def q45_k(rng, mode, bits):
    d, dmin = scale_bits(rng, mode), scale_bits(rng, mode)
    sc, mn = codes(rng, mode, 8, 0, 63, 4), codes(rng, mode, 8, 0, 63, 5)
    q = codes(rng, mode, 256, 0, (1 << bits) - 1)
    qs, qh = [0] * 128, [0] * 32
    for e in range(256):
        sb, l = e // 32, e % 32
        qs[32 * (sb // 2) + l] |= (q[e] & 15) << (4 * (sb % 2))
        qh[l] |= (q[e] >> 4) << sb
    raw = h16(d) + h16(dmin) + k_scales(sc, mn) + (bytes(qh) if bits == 5 else b'') + bytes(qs)
    vals = [f16_value(d) * sc[e // 32] * q[e] - f16_value(dmin) * mn[e // 32] for e in range(256)]
    return raw, vals


def q4_k(rng, mode):
    return q45_k(rng, mode, 4)


def q5_k(rng, mode):
    return q45_k(rng, mode, 5)


def q6_k(rng, mode):
    d = scale_bits(rng, mode)
    sc = codes(rng, mode, 16, -128, 127, 6)
    q = codes(rng, mode, 256, 0, 63)
    ql, qh = [0] * 128, [0] * 64
    for h in range(2):
        for s in range(4):
            for l in range(32):
                c = q[128 * h + 32 * s + l]
                ql[64 * h + 32 * (s % 2) + l] |= (c & 15) << (4 * (s // 2))
                qh[32 * h + l] |= (c >> 4) << (2 * s)
    raw = bytes(ql) + bytes(qh) + struct.pack('<16b', *sc) + h16(d)
    vals = [f16_value(d) * sc[e // 16] * (q[e] - 32) for e in range(256)]
    return raw, vals


def iq4_nl(rng, mode):
    d = scale_bits(rng, mode)
    q = codes(rng, mode, 32, 0, 15)
    return h16(d) + nibbles32(q), [f16_value(d) * GRID[c] for c in q]


def iq4_xs(rng, mode):
    d = scale_bits(rng, mode)
    ls = codes(rng, mode, 8, 0, 63, 7)
    q = codes(rng, mode, 256, 0, 15)
    sh = sum((ls[sb] >> 4) << (2 * sb) for sb in range(8))
    sl = [0] * 4
    for sb in range(8):
        sl[sb // 2] |= (ls[sb] & 15) << (4 * (sb % 2))
    qs = b''.join(nibbles32(q[32 * sb:32 * sb + 32]) for sb in range(8))
    raw = h16(d) + struct.pack('<H', sh) + bytes(sl) + qs
    vals = [f16_value(d) * (ls[e // 32] - 32) * GRID[q[e]] for e in range(256)]
    return raw, vals


# name, ggml type id, values per block, bytes per block, generator
TYPES = [('Q4_0', 2, 32, 18, q4_0), ('Q4_1', 3, 32, 20, q4_1), ('Q5_0', 6, 32, 22, q5_0),
         ('Q5_1', 7, 32, 24, q5_1), ('Q8_0', 8, 32, 34, q8_0), ('Q2_K', 10, 256, 84, q2_k),
         ('Q3_K', 11, 256, 110, q3_k), ('Q4_K', 12, 256, 144, q4_k), ('Q5_K', 13, 256, 176, q5_k),
         ('Q6_K', 14, 256, 210, q6_k), ('IQ4_NL', 20, 32, 18, iq4_nl), ('IQ4_XS', 23, 256, 136, iq4_xs)]

MODES = ['random', 'max', 'subnormal', 'zero', 'pattern', 'random']


def main():
    rng = random.Random(20261206)
    out = [b'SQGGMLV1', struct.pack('<I', len(TYPES) * 2)]
    for name, tid, elems, nbytes, gen in TYPES:
        # two cases per type: one block of each mode in a row, and a single random block
        for modes in (MODES, ['random']):
            raw, vals = b'', []
            for mode in modes:
                r, v = gen(rng, mode)
                assert len(r) == nbytes and len(v) == elems, (name, len(r), len(v))
                raw += r
                vals += v
            out.append(struct.pack('<8sIIII', name.encode(), tid, elems, nbytes, len(modes)))
            out.append(raw)
            out.append(struct.pack('<%df' % len(vals), *[f32_round(x) for x in vals]))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ggml-blocks.bin')
    with open(path, 'wb') as f:
        f.write(b''.join(out))
    print('wrote', path, file=sys.stderr)


if __name__ == '__main__':
    main()
