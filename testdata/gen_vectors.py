#!/usr/bin/env python3
"""Golden test vectors for the squish codecs, computed from the definitions in
spec/codecs.md without using squish's C code. Run by hand; the output files in
testdata/vectors/ are committed and checked by tests/test_codecs.c.

float32 arithmetic is emulated by rounding each double result to float32
(exact for one +, -, *, / since double has more than 2*24+2 bits).
Mini-float encoding here is a nearest-value search over every code (ties to
the even code), a different method from the C encoder's exponent arithmetic.
"""
import math
import struct
import sys

def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]

def f32_bits(x):
    return struct.unpack('<I', struct.pack('<f', x))[0]

def f16_round(x):
    return struct.unpack('<e', struct.pack('<e', x))[0]

def f16_bytes(x):
    return struct.pack('<e', x)

def bf16_bits(x):
    b = f32_bits(x)
    return ((b + 0x7fff + ((b >> 16) & 1)) >> 16) & 0xffff

def bf16_round(x):
    return struct.unpack('<f', struct.pack('<I', bf16_bits(x) << 16))[0]

def scale_round(dt, x):
    return {'f16': f16_round, 'bf16': bf16_round, 'f32': f32}[dt](x)

def scale_bytes(dt, x):
    if dt == 'f16':
        return f16_bytes(x)
    if dt == 'bf16':
        return struct.pack('<H', bf16_bits(x))
    return struct.pack('<f', x)

# ---- mini-floats, from the bit layouts ----
FORMATS = {  # name: (bits, ebits, mbits, bias)
    'e4m3': (8, 4, 3, 7), 'e5m2': (8, 5, 2, 15), 'e3m2': (6, 3, 2, 3),
    'e2m3': (6, 2, 3, 1), 'e2m1': (4, 2, 1, 1)}
EMAX = {'e4m3': 8, 'e5m2': 15, 'e3m2': 4, 'e2m3': 2, 'e2m1': 2}

def mf_value(fmt, code):
    bits, eb, mb, bias = FORMATS[fmt]
    s = (code >> (bits - 1)) & 1
    e = (code >> mb) & ((1 << eb) - 1)
    m = code & ((1 << mb) - 1)
    if fmt == 'e4m3' and e == 15 and m == 7:
        return math.nan
    if fmt == 'e5m2' and e == 31:
        v = math.nan if m else math.inf
    elif e == 0:
        v = m * 2.0 ** (1 - bias - mb)
    else:
        v = (1 + m / 2.0 ** mb) * 2.0 ** (e - bias)
    return -v if s else v

def mf_encode(fmt, x):
    bits = FORMATS[fmt][0]
    pos = [(mf_value(fmt, c), c) for c in range(1 << (bits - 1))]
    pos = [(v, c) for v, c in pos if math.isfinite(v)]
    a = abs(x)
    best = None
    for v, c in pos:
        d = abs(v - a)
        if best is None or d < best[0] or (d == best[0] and c % 2 == 0 and best[1] % 2 == 1):
            best = (d, c)
    c = best[1]
    if c == 0:
        return 0  # canonical +0
    return c | ((1 << (bits - 1)) if x < 0 else 0)

# ---- code chunk packing (spec/codecs.md "Code chunks") ----
def pack_chunk(bits, q):
    q = list(q) + [0] * (32 - len(q))
    if bits == 8:
        return bytes(q)
    if bits == 4:
        return bytes(q[j] | q[j + 16] << 4 for j in range(16))
    if bits == 2:
        return bytes(q[j] | q[j + 8] << 2 | q[j + 16] << 4 | q[j + 24] << 6 for j in range(8))
    if bits == 3:
        lo = bytes((q[j] & 3) | (q[j + 8] & 3) << 2 | (q[j + 16] & 3) << 4 | (q[j + 24] & 3) << 6 for j in range(8))
        hi = sum((q[i] >> 2) << i for i in range(32))
        return lo + struct.pack('<I', hi)
    if bits == 6:
        out = b''
        for k in range(8):
            v = q[4 * k] | q[4 * k + 1] << 6 | q[4 * k + 2] << 12 | q[4 * k + 3] << 18
            out += bytes([v & 255, (v >> 8) & 255, v >> 16])
        return out
    raise ValueError(bits)

def pack_row(bits, codes, pad):
    out = b''
    for i in range(0, len(codes), 32):
        chunk = codes[i:i + 32]
        out += pack_chunk(bits, chunk + [pad] * (32 - len(chunk)))
    return out

def groups(cols, g):
    return [(c, min(c + g, cols)) for c in range(0, cols, g)]

# ---- codecs ----
def enc_int(bits, g, asym, sdt, w, rows, cols):
    maxq, mid = (1 << bits) - 1, 1 << (bits - 1)
    g = g or cols
    codes, scales, zeros = b'', b'', b''
    for r in range(rows):
        row = w[r * cols:(r + 1) * cols]
        q = []
        for c0, c1 in groups(cols, g):
            seg = row[c0:c1]
            if asym:
                mn, mx = min(min(seg), 0.0), max(max(seg), 0.0)
                s = scale_round(sdt, f32(f32(mx - mn) / maxq))
                z = min(max(round(f32(-mn / s)), 0), maxq) if s != 0 else 0
                zeros += bytes([z])
            else:
                m = 0.0
                for v in seg:
                    if abs(v) > abs(m):
                        m = v
                s = scale_round(sdt, f32(m / -mid))
                z = mid
            scales += scale_bytes(sdt, s)
            for v in seg:
                q.append(min(max(round(f32(v / s)) + z, 0), maxq) if s != 0 else z)
        codes += pack_row(bits, q, 0)
    parts = [('codes', codes), ('scales', scales)]
    if asym:
        parts.append(('zeros', zeros))
    return parts

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
       0.7229568362236023, 1.0]
NF4 = [f32(v) for v in NF4]
NF4_MIDS = [f32(f32(NF4[i] + NF4[i + 1]) * 0.5) for i in range(15)]

def enc_nf4(block, dq, w, rows, cols):
    codes, absmax = b'', []
    for r in range(rows):
        row = w[r * cols:(r + 1) * cols]
        q = []
        for c0, c1 in groups(cols, block):
            a = max(abs(v) for v in row[c0:c1])
            absmax.append(a)
            for v in row[c0:c1]:
                q.append(sum(1 for m in NF4_MIDS if f32(v / a) > m) if a > 0 else 7)
        codes += pack_row(4, q, 7)
    if not dq:
        return [('codes', codes), ('absmax', b''.join(struct.pack('<f', a) for a in absmax))]
    off = f32(sum(absmax) / len(absmax))
    aq, sc = b'', b''
    for b0 in range(0, len(absmax), 256):
        blk = absmax[b0:b0 + 256]
        m = max(abs(f32(a - off)) for a in blk)
        s2 = f32(m / 127.0)
        sc += struct.pack('<f', s2)
        for a in blk:
            v = round(f32(f32(a - off) / s2)) if s2 > 0 else 0
            aq += struct.pack('<b', max(-127, min(127, v)))
    return [('codes', codes), ('absmax_q', aq), ('absmax_scale', sc), ('absmax_offset', struct.pack('<f', off))]

MAXN = {'e4m3': 448.0, 'e5m2': 57344.0, 'e3m2': 28.0, 'e2m3': 7.5, 'e2m1': 6.0}

def enc_fp(fmt, g, sdt, w, rows, cols):
    bits = FORMATS[fmt][0]
    codes, scales = b'', b''
    if g == 'pt':
        s = scale_round(sdt, f32(max(abs(v) for v in w) / MAXN[fmt]))
        scales = scale_bytes(sdt, s)
    for r in range(rows):
        row = w[r * cols:(r + 1) * cols]
        q = []
        for c0, c1 in groups(cols, cols if g in ('pt', 0) else g):
            if g != 'pt':
                s = scale_round(sdt, f32(max(abs(v) for v in row[c0:c1]) / MAXN[fmt]))
                scales += scale_bytes(sdt, s)
            q += [mf_encode(fmt, f32(v / s)) if s != 0 else 0 for v in row[c0:c1]]
        codes += pack_row(bits, q, 0)
    return [('codes', codes), ('scales', scales)]

def enc_mx(fmt, w, rows, cols):
    bits = FORMATS[fmt][0]
    codes, scales = b'', b''
    for r in range(rows):
        row = w[r * cols:(r + 1) * cols]
        q = []
        for c0, c1 in groups(cols, 32):
            a = max(abs(v) for v in row[c0:c1])
            e = -127
            if a > 0:
                e = max(-127, min(127, math.frexp(a)[1] - 1 - EMAX[fmt]))
            scales += bytes([e + 127])
            q += [mf_encode(fmt, math.ldexp(v, -e)) for v in row[c0:c1]]
        codes += pack_row(bits, q, 0)
    return [('codes', codes), ('scales', scales)]

def enc_float(codec, w):
    if codec == 'f32':
        return [('data', b''.join(struct.pack('<f', v) for v in w))]
    if codec == 'f16':  # struct's 'e' rounds to nearest even, subnormals included
        return [('data', b''.join(f16_bytes(v) for v in w))]
    return [('data', b''.join(struct.pack('<H', bf16_bits(v)) for v in w))]

# ---- decoding, from the stored bytes (spec §3-§8), for the "output" lines ----
def unpack_chunk(bits, b):
    if bits == 8:
        return list(b[:32])
    if bits == 4:
        return [b[j] & 15 for j in range(16)] + [b[j] >> 4 for j in range(16)]
    if bits == 2:
        return [(b[j % 8] >> (2 * (j // 8))) & 3 for j in range(32)]
    if bits == 3:
        hi = struct.unpack('<I', b[8:12])[0]
        return [((b[j % 8] >> (2 * (j // 8))) & 3) | (((hi >> j) & 1) << 2) for j in range(32)]
    if bits == 6:
        q = []
        for k in range(8):
            v = b[3 * k] | b[3 * k + 1] << 8 | b[3 * k + 2] << 16
            q += [(v >> (6 * i)) & 63 for i in range(4)]
        return q
    raise ValueError(bits)

def unpack_codes(bits, data, rows, cols):
    c = 32 * bits // 8
    nch = (cols + 31) // 32
    out = []
    for r in range(rows):
        q = []
        for k in range(nch):
            off = (r * nch + k) * c
            q += unpack_chunk(bits, data[off:off + c])
        out.append(q[:cols])
    return out

def load_scales(dt, data):
    if dt == 'f16':
        return [struct.unpack('<e', data[i:i + 2])[0] for i in range(0, len(data), 2)]
    if dt == 'bf16':
        return [struct.unpack('<f', struct.pack('<I', struct.unpack('<H', data[i:i + 2])[0] << 16))[0]
                for i in range(0, len(data), 2)]
    return list(struct.unpack('<%df' % (len(data) // 4), data))

def decode_aqlm(M, B, p, rows, cols):
    """spec/codecs.md §12: code i at stream bits [iB, iB+B), LSB first; acc = e_0, acc += e_m; w = s * acc."""
    G, K = (cols + 7) // 8, 1 << B
    stream = int.from_bytes(p['codes'], 'little')
    cb = load_scales('f16', p['codebooks'])
    sc = load_scales('f16', p['scales'])
    out = []
    for o in range(rows):
        row = []
        for j in range(G):
            acc = None
            for m in range(M):
                i = (o * G + j) * M + m
                c = (stream >> (i * B)) & (K - 1)
                e = cb[(m * K + c) * 8:(m * K + c) * 8 + 8]
                acc = list(e) if acc is None else [f32(a + x) for a, x in zip(acc, e)]
            row += [f32(sc[o] * a) for a in acc]
        out += row[:cols]
    return out

def decode(scheme, parts, rows, cols):
    """The float32 values a reader computes from the parts, row-major."""
    p = dict(parts)
    codec, opts = scheme.split(':')[0], scheme.split(':')[1:]
    if codec == 'aqlm':
        M, B = (int(v) for v in (opts[0] if opts else '2x8').split('x'))
        return decode_aqlm(M, B, p, rows, cols)
    if codec in ('f32', 'f16', 'bf16'):
        return load_scales(codec, p['data'])
    g, sdt = None, None
    for o in opts:
        if o.startswith('g'):
            g = int(o[1:])
        elif o == 'pc':
            g = 0
        elif o == 'pt':
            g = 'pt'
        elif o in ('s16', 'sbf16', 's32'):
            sdt = {'s16': 'f16', 'sbf16': 'bf16', 's32': 'f32'}[o]
    out = []
    if codec.startswith('int'):
        bits = int(codec[3:])
        g = g if g is not None else {8: 0, 4: 128, 3: 128, 2: 64}[bits]
        gl = g or cols
        ng = (cols + gl - 1) // gl
        sc = load_scales(sdt or 'f16', p['scales'])
        q = unpack_codes(bits, p['codes'], rows, cols)
        for r in range(rows):
            for i in range(cols):
                k = r * ng + i // gl
                z = p['zeros'][k] if 'zeros' in p else 1 << (bits - 1)
                out.append(f32(sc[k] * (q[r][i] - z)))
        return out
    if codec == 'nf4':
        gl = g or 64
        ng = (cols + gl - 1) // gl
        if 'absmax' in p:
            am = load_scales('f32', p['absmax'])
        else:
            s2 = load_scales('f32', p['absmax_scale'])
            o = load_scales('f32', p['absmax_offset'])[0]
            aq = struct.unpack('<%db' % len(p['absmax_q']), p['absmax_q'])
            am = [f32(f32(a * s2[n // 256]) + o) for n, a in enumerate(aq)]  # two roundings
        q = unpack_codes(4, p['codes'], rows, cols)
        return [f32(NF4[q[r][i]] * am[r * ng + i // gl]) for r in range(rows) for i in range(cols)]
    if codec.startswith('mx'):
        fmt = {'mxfp8_e4m3': 'e4m3', 'mxfp8_e5m2': 'e5m2', 'mxfp6_e3m2': 'e3m2', 'mxfp6_e2m3': 'e2m3', 'mxfp4': 'e2m1'}[codec]
        q = unpack_codes(FORMATS[fmt][0], p['codes'], rows, cols)
        ng = (cols + 31) // 32
        return [f32(mf_value(fmt, q[r][i]) * 2.0 ** (p['scales'][r * ng + i // 32] - 127))
                for r in range(rows) for i in range(cols)]
    fmt = codec.split('_')[1]
    if g is None:
        g = {'fp8': 0, 'fp6': 128, 'fp4': 32}[codec.split('_')[0]]
    sc = load_scales(sdt or ('f32' if g == 'pt' else 'f16'), p['scales'])
    gl = cols if g in ('pt', 0) else g
    ng = (cols + gl - 1) // gl
    q = unpack_codes(FORMATS[fmt][0], p['codes'], rows, cols)
    return [f32(mf_value(fmt, q[r][i]) * sc[0 if g == 'pt' else r * ng + i // gl]) for r in range(rows) for i in range(cols)]

# ---- inputs ----
class Rng:
    def __init__(self, seed):
        self.s = seed
    def u(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.s >> 11) / float(1 << 53)

def inputs(seed, n, kind):
    r = Rng(seed)
    out = []
    for i in range(n):
        v = (r.u() - 0.5) * 0.2
        if kind == 'outliers' and i % 37 == 5:
            v *= 25
        if kind == 'ties':  # values on exact half steps of small grids
            v = (int(r.u() * 33) - 16) / 8.0
        if kind == 'zeros' and (i // 32) % 2 == 0:
            v = 0.0
        if kind == 'raw':  # full float32 values, for the float codecs' rounding
            out.append(f32(v))
        else:
            out.append(bf16_round(f32(v)))  # bf16-representable, like checkpoint weights
    return out

CASES = [
    # (scheme, rows, cols, input kind, seed)
    ('int8:pc:sym', 2, 40, 'plain', 1), ('int8:g32:asym', 2, 64, 'outliers', 2),
    ('int4:g32:sym', 3, 64, 'ties', 3), ('int4:g128:asym', 2, 172, 'outliers', 4),
    ('int4:pc:asym:sbf16', 2, 48, 'zeros', 5), ('int3:g64:asym', 2, 96, 'plain', 6),
    ('int3:g32:sym:s32', 2, 40, 'outliers', 7), ('int2:g64:asym', 2, 130, 'plain', 8),
    ('int2:g32:sym', 2, 64, 'zeros', 9),
    ('nf4', 2, 128, 'outliers', 10), ('nf4:g32', 3, 72, 'zeros', 11), ('nf4:dq', 40, 512, 'plain', 12),
    ('fp8_e4m3', 2, 64, 'outliers', 13), ('fp8_e5m2:g32', 2, 64, 'plain', 14),
    ('fp6_e3m2', 2, 160, 'plain', 15), ('fp6_e2m3:g32:s32', 2, 40, 'ties', 16),
    ('fp4_e2m1', 2, 64, 'outliers', 17), ('fp8_e4m3:pt', 3, 48, 'plain', 18),
    ('mxfp8_e4m3', 2, 64, 'outliers', 19), ('mxfp8_e5m2', 2, 40, 'zeros', 20),
    ('mxfp6_e3m2', 2, 64, 'plain', 21), ('mxfp6_e2m3', 2, 64, 'ties', 22), ('mxfp4', 3, 100, 'outliers', 23),
    ('f32', 2, 40, 'outliers', 24), ('f16', 3, 33, 'raw', 25), ('bf16', 2, 50, 'raw', 26),
]

# Codecs whose encoder needs calibration statistics and cannot be reproduced
# outside C: their vectors are parts (seeded random codes, f16 codebooks and
# scales) and the values the spec decodes them to, without an input.
AQLM_CASES = [
    # (scheme, rows, cols, seed)
    ('aqlm:2x8', 3, 40, 27), ('aqlm:1x5', 3, 20, 28), ('aqlm:3x3', 2, 16, 29),
]

def aqlm_parts(scheme, rows, cols, seed):
    M, B = (int(v) for v in scheme.split(':')[1].split('x'))
    r, G, K = Rng(seed), (cols + 7) // 8, 1 << B
    n = rows * G * M
    stream = 0
    for i in range(n):
        stream |= min(int(r.u() * K), K - 1) << (i * B)
    codes = stream.to_bytes((n * B + 7) // 8, 'little')
    codebooks = b''.join(f16_bytes(f16_round((r.u() - 0.5) * 2.0)) for _ in range(M * K * 8))
    scales = b''.join(f16_bytes(f16_round(0.01 + r.u() * 0.05)) for _ in range(rows))
    return [('codes', codes), ('codebooks', codebooks), ('scales', scales)]

def encode(scheme, w, rows, cols):
    parts = scheme.split(':')
    codec, opts = parts[0], parts[1:]
    g, asym, sdt, dq = None, False, None, 'dq' in opts
    for o in opts:
        if o.startswith('g'):
            g = int(o[1:])
        elif o == 'pc':
            g = 0
        elif o == 'pt':
            g = 'pt'
        elif o == 'asym':
            asym = True
        elif o in ('s16', 'sbf16', 's32'):
            sdt = {'s16': 'f16', 'sbf16': 'bf16', 's32': 'f32'}[o]
    if codec in ('f32', 'f16', 'bf16'):
        return enc_float(codec, w)
    if codec.startswith('int'):
        bits = int(codec[3:])
        if g is None:
            g = {8: 0, 4: 128, 3: 128, 2: 64}[bits]
        return enc_int(bits, g, asym, sdt or 'f16', w, rows, cols)
    if codec == 'nf4':
        return enc_nf4(g or 64, dq, w, rows, cols)
    if codec.startswith('mx'):
        fmt = {'mxfp8_e4m3': 'e4m3', 'mxfp8_e5m2': 'e5m2', 'mxfp6_e3m2': 'e3m2', 'mxfp6_e2m3': 'e2m3', 'mxfp4': 'e2m1'}[codec]
        return enc_mx(fmt, w, rows, cols)
    fmt = codec.split('_')[1]
    if g is None:
        g = {'fp8': 0, 'fp6': 128, 'fp4': 32}[codec.split('_')[0]]
    return enc_fp(fmt, g, sdt or ('f32' if g == 'pt' else 'f16'), w, rows, cols)


# ---- quip (spec/codecs.md §11): decode only (the encoder needs XᵀX and BlockLDLQ) ----
# The 29 ABS entries of norm² 12, as the spec's table lists them (indices 227..255),
# digits 2·a_0 .. 2·a_7.
QUIP_ABS12 = ['31113333', '13113333', '11313333', '11133333', '33313311', '33313131', '33311331', '33313113',
              '33311313', '33311133', '33133311', '33133131', '33131331', '33133113', '33131313', '33131133',
              '31333311', '31333131', '31331331', '31333113', '31331313', '13331133', '13333311', '13333131',
              '13331331', '13333113', '13331313', '11331333', '33113331']

def quip_abs():
    """ABS: every |x|, x in D8 + 1/2 with |x|² <= 10 (2|x_i| in 1, 3, 5), in lexicographic
    order of (2a_0, ..., 2a_7), then the 29 of norm² 12."""
    import itertools
    low = [v for v in itertools.product((1, 3, 5), repeat=8) if sum(d * d for d in v) <= 40]
    assert len(low) == 227
    return [[d / 2 for d in v] for v in low] + [[int(ch) / 2 for ch in e] for e in QUIP_ABS12]

QUIP_ABS = quip_abs()

def e8p_value(c):
    A, S = c >> 8, c & 0xff
    p = bin(S).count('1') & 1
    f = S ^ p
    a = QUIP_ABS[A]
    b = list(a)
    if int(round(sum(a))) % 2 == 1:
        b[7] = -a[7]
    pi = [i // 2 if i % 2 == 0 else 4 + (i - 1) // 2 for i in range(8)]
    return [(-b[i] if (f >> pi[i]) & 1 else b[i]) + (-0.25 if p else 0.25) for i in range(8)]

def e81b_grid():
    import itertools
    ints = sorted(v for v in itertools.product((-1, 0, 1), repeat=8) if sum(x * x for x in v) <= 2 and sum(v) % 2 == 0)
    halves = sorted(v for v in itertools.product((-0.5, 0.5), repeat=8) if sum(1 for x in v if x < 0) % 2 == 0)
    unit = [[2.0 if j == i else 0.0 for j in range(8)] for i in range(8)]
    grid = [list(map(float, v)) for v in ints] + [list(v) for v in halves] + unit + [[-x for x in u] for u in unit[:7]]
    assert len(ints) == 113 and len(grid) == 256
    return grid

E81B = e81b_grid()

def e8r_grid():
    """E8R: the cosets of 2E8 in E8, each by its shortest member (ties: the lexicographically
    greatest), sorted by norm then lexicographically; value = member / 2. Members are kept as
    X = 2x (integers), u ~ v when (u - v)/2 is in E8."""
    import itertools
    def in_e8(X):  # x = X/2: all X_i of one parity, sum x even
        return len(set(v & 1 for v in X)) == 1 and sum(X) % 4 == 0
    def within(n, budget):  # integer vectors of length n with sum of squares <= budget
        if n == 0:
            yield ()
            return
        for v in range(-4, 5):
            if v * v <= budget:
                for rest in within(n - 1, budget - v * v):
                    yield (v,) + rest
    pts = [X for X in within(8, 16) if in_e8(X)]
    assert len(pts) == 1 + 240 + 2160
    reps = []
    for X in pts:
        for k, R in enumerate(reps):
            D = [a - b for a, b in zip(X, R[0])]
            if all(d % 2 == 0 for d in D) and in_e8([d // 2 for d in D]):
                R.append(X)
                break
        else:
            reps.append([X])
    assert len(reps) == 256
    best = []
    for members in reps:
        m = min(sum(v * v for v in X) for X in members)
        best.append(max(X for X in members if sum(v * v for v in X) == m))
    best.sort(key=lambda X: (sum(v * v for v in X), X))
    return [[v / 4 for v in X] for X in best]

E8R = e8r_grid()

def quip_form(scheme):
    """(bits, nested) of a quip scheme: quip:3 and quip:4 are nested, :rvq residual."""
    t = scheme.split(':')
    bits = int(t[1])
    return bits, 1 if bits > 2 and 'rvq' not in t else 0

def quip_books(bits, nested):
    """The codebook of each stage: e8p, e81b or e8r."""
    if bits == 2:
        return ['e8p']
    if nested:
        return ['e8p', 'e8r'] + (['e8r'] if bits == 4 else [])
    return ['e8p', 'e81b' if bits == 3 else 'e8p']

def quip_parts(scheme, rows, cols, seed):
    """Codes and scales drawn from a seed (every code is valid), f16 scales of both signs."""
    bits, nested = quip_form(scheme)
    r = Rng(seed)
    G = cols // 8
    parts = []
    books = quip_books(bits, nested)
    for k, book in enumerate(books):
        name = ['codes', 'codes2', 'codes3'][k]
        if book == 'e8p':
            c = [int(r.u() * 65536) for _ in range(rows * G)]
            parts.append((name, struct.pack('<%dH' % len(c), *c)))
        else:
            parts.append((name, bytes(int(r.u() * 256) for _ in range(rows * G))))
    sc = b''.join(f16_bytes((r.u() - 0.3) * (0.05 if k == 0 else 0.01)) for k in range(len(books)) for _ in range(rows))
    parts.append(('scales', sc))
    return parts

def decode_quip(scheme, parts, rows, cols):
    bits, nested = quip_form(scheme)
    p = dict(parts)
    G = cols // 8
    sc = load_scales('f16', p['scales'])
    stages = []
    for k, book in enumerate(quip_books(bits, nested)):
        data = p[['codes', 'codes2', 'codes3'][k]]
        if book == 'e8p':
            stages.append([e8p_value(c) for c in struct.unpack('<%dH' % (rows * G), data)])
        else:
            stages.append([(E81B if book == 'e81b' else E8R)[c] for c in data])
    out = []
    for r in range(rows):
        for g in range(G):
            for i in range(8):
                d = f32(sc[r] * stages[0][r * G + g][i])
                for k in range(1, len(stages)):
                    d = f32(d + f32(sc[k * rows + r] * stages[k][r * G + g][i]))
                out.append(d)
    return out

DECODE_CASES = [  # (scheme, rows, cols, seed): parts from the seed, output from the spec's decode
    ('quip:2', 3, 24, 31), ('quip:3', 2, 32, 32), ('quip:4', 2, 16, 33),
    ('quip:3:rvq', 2, 32, 34), ('quip:4:rvq', 2, 16, 35),
]

# ---- spqr (spec/codecs.md §11): decode-only vectors ----
# Its encoder is a Hessian-driven GPTQ sweep that is not reproduced here, so
# these vectors hold parts (made below from the spec's rules: LSB-first
# bitstreams, f16 statistics, CSR) and the values §11.4 decodes them to.
def spqr_opts(scheme):
    o = {'w': 3, 'b': 16, 'r': 16, 'sb': 3}
    for t in scheme.split(':')[1:]:
        for k in ('sb', 'w', 'b', 'r'):
            if t.startswith(k) and t[len(k):].isdigit():
                o[k] = int(t[len(k):])
                break
    return o

def pack_bits(codes, n):
    v = 0
    for k, q in enumerate(codes):
        v |= q << (k * n)
    return v.to_bytes((len(codes) * n + 7) // 8, 'little')

def unpack_bits(data, k, n):
    return (int.from_bytes(data, 'little') >> (k * n)) & ((1 << n) - 1)

def spqr_parts(scheme, rows, cols, seed, stats, outliers):
    """Parts from explicit values: stats[(R, g)] = (ss, sz, zs, zz); outliers[r] = [(col, value)]."""
    o = spqr_opts(scheme)
    ng, nrb = -(-cols // o['b']), -(-rows // o['r'])
    rng = Rng(seed)
    codes = b''.join(pack_bits([int(rng.u() * (1 << o['w'])) for _ in range(cols)], o['w']) for _ in range(rows))
    sc = b''.join(pack_bits([int(rng.u() * (1 << o['sb'])) for _ in range(ng)], o['sb']) for _ in range(rows))
    zc = b''.join(pack_bits([int(rng.u() * (1 << o['sb'])) for _ in range(ng)], o['sb']) for _ in range(rows))
    st = b''.join(f16_bytes(v) for R in range(nrb) for g in range(ng) for v in stats(R, g))
    ptr, cs, vs = [0], b'', b''
    for r in range(rows):
        for c, v in outliers.get(r, []):
            cs += struct.pack('<H', c)
            vs += f16_bytes(v)
        ptr.append(ptr[-1] + len(outliers.get(r, [])))
    return [('codes', codes), ('scale_codes', sc), ('zero_codes', zc), ('stats2', st),
            ('row_ptr', struct.pack('<%dI' % (rows + 1), *ptr)), ('outlier_cols', cs), ('outlier_vals', vs)]

def spqr_decode(scheme, parts, rows, cols):
    o = spqr_opts(scheme)
    p = dict(parts)
    ng = -(-cols // o['b'])
    cstride, sstride = (cols * o['w'] + 7) // 8, (ng * o['sb'] + 7) // 8
    st = [struct.unpack('<e', p['stats2'][i:i + 2])[0] for i in range(0, len(p['stats2']), 2)]
    ptr = struct.unpack('<%dI' % (rows + 1), p['row_ptr'])
    out = []
    for r in range(rows):
        row = []
        for j in range(cols):
            g = j // o['b']
            ss, sz, zs, zz = st[((r // o['r']) * ng + g) * 4:((r // o['r']) * ng + g) * 4 + 4]
            s = unpack_bits(p['scale_codes'][r * sstride:(r + 1) * sstride], g, o['sb'])
            z = unpack_bits(p['zero_codes'][r * sstride:(r + 1) * sstride], g, o['sb'])
            q = unpack_bits(p['codes'][r * cstride:(r + 1) * cstride], j, o['w'])
            S = f32(ss * f32(s - sz))
            Z = f32(zs * f32(z - zz))
            row.append(f32(S * f32(q - Z)))
        for k in range(ptr[r], ptr[r + 1]):  # outliers replace the dense value
            c = struct.unpack('<H', p['outlier_cols'][2 * k:2 * k + 2])[0]
            row[c] = struct.unpack('<e', p['outlier_vals'][2 * k:2 * k + 2])[0]
        out += row
    return out

def spqr_cases():
    ex = [('codes', bytes.fromhex('180f510d')), ('scale_codes', bytes.fromhex('0204')),
          ('zero_codes', bytes.fromhex('0706')), ('stats2', bytes.fromhex('0034000000380000')),
          ('row_ptr', bytes.fromhex('000000000000000001000000')), ('outlier_cols', bytes.fromhex('0200')),
          ('outlier_vals', bytes.fromhex('0049'))]
    yield 'spqr:w3:b4:r2', 2, 4, ex  # spec §11.7 (stored order: the perm link is not a codec part)
    stats = lambda R, g: (f16_round(0.01 + 0.003 * g), f16_round(-0.5 * R), f16_round(0.7 - 0.05 * g), f16_round(1.25))
    yield 'spqr:w3:b8:r2', 5, 37, spqr_parts('spqr:w3:b8:r2', 5, 37, 31, stats,
                                             {0: [(0, 3.5)], 2: [(5, -0.125), (17, 65504.0), (36, 1e-7)], 4: [(8, -7.0)]})
    yield 'spqr:w2:b16:sb4', 3, 40, spqr_parts('spqr:w2:b16:sb4', 3, 40, 32, stats, {1: [(39, 2.0)]})
    yield 'spqr:w4:b64:t0', 2, 70, spqr_parts('spqr:w4:b64:t0', 2, 70, 33, stats, {})

# ---- mix (spec/codecs.md §14): decode-only vectors ----
# Its encoder (width allocation, weighted scale search, GPTQ) is not
# reproduced here: parts made from §14.2-14.3's rules (random width codes,
# f16 statistics, LSB-first blocks, row offsets) and the values §14.4
# decodes them to.
def mix_opts(scheme):
    o = {'B': 128, 'w': [2, 3, 4, 8]}
    for t in scheme.split(':')[1:]:
        if t.startswith('g') and t[1:].isdigit():
            o['B'] = int(t[1:])
        elif t.startswith('w') and len(t) == 5 and t[1:].isdigit():
            o['w'] = [int(c) for c in t[1:]]
    return o

def mix_blocks(cols, B):
    return [min(B, cols - k * B) for k in range(-(-cols // B))]

def mix_parts(scheme, rows, cols, seed):
    o = mix_opts(scheme)
    lens = mix_blocks(cols, o['B'])
    nb, wb = len(lens), -(-len(lens) // 4)
    rng = Rng(seed)
    widths, scales, mins, codes, ptr = b'', b'', b'', b'', [0]
    for r in range(rows):
        cs = [int(rng.u() * 4) for _ in range(nb)]
        widths += pack_bits(cs, 2) + bytes(wb - (nb * 2 + 7) // 8)
        for k in range(nb):
            scales += f16_bytes(f16_round(ldexp_(0.5 + rng.u(), -int(rng.u() * 12))))
            mins += f16_bytes(f16_round(-2.0 * rng.u() + 0.25))
            b = o['w'][cs[k]]
            codes += pack_bits([int(rng.u() * (1 << b)) for _ in range(lens[k])], b)
        ptr.append(len(codes))
    return [('widths', widths), ('scales', scales), ('mins', mins),
            ('row_ptr', struct.pack('<%dI' % (rows + 1), *ptr)), ('codes', codes)]

def ldexp_(x, e):
    return math.ldexp(x, e)

def mix_decode(scheme, parts, rows, cols):
    o = mix_opts(scheme)
    p = dict(parts)
    lens = mix_blocks(cols, o['B'])
    nb, wb = len(lens), -(-len(lens) // 4)
    ptr = struct.unpack('<%dI' % (rows + 1), p['row_ptr'])
    out = []
    for r in range(rows):
        off = ptr[r]
        for k in range(nb):
            c = (p['widths'][r * wb + k // 4] >> (2 * (k % 4))) & 3
            b = o['w'][c]
            s = struct.unpack('<e', p['scales'][2 * (r * nb + k):2 * (r * nb + k) + 2])[0]
            m = struct.unpack('<e', p['mins'][2 * (r * nb + k):2 * (r * nb + k) + 2])[0]
            nbytes = (lens[k] * b + 7) // 8
            blk = p['codes'][off:off + nbytes]
            out += [f32(f32(s * unpack_bits(blk, i, b)) + m) for i in range(lens[k])]
            off += nbytes
    return out

def mix_cases():
    ex = [('widths', bytes.fromhex('0c')), ('scales', bytes.fromhex('00380020')), ('mins', bytes.fromhex('00ba00bc')),
          ('row_ptr', bytes.fromhex('0000000010000000')), ('codes', bytes.fromhex('e4' * 8 + '00ff01800a141e28'))]
    yield 'mix:g32:3', 1, 40, ex  # spec §14.8
    yield 'mix:3.5', 3, 200, mix_parts('mix:3.5', 3, 200, 41)
    yield 'mix:g32:2.5:w1358', 4, 72, mix_parts('mix:g32:2.5:w1358', 4, 72, 42)
    yield 'mix:g128:6:w5678', 2, 300, mix_parts('mix:g128:6:w5678', 2, 300, 43)

def main(outdir):
    with open(outdir + '/codec-vectors.txt', 'w') as f:
        f.write('# squish codec golden vectors (testdata/gen_vectors.py); input and output (the decoded values) are\n'
                '# float32 bit patterns; a vector without input is checked by decoding its parts only\n')
        for scheme, rows, cols, kind, seed in CASES:
            w = inputs(seed, rows * cols, kind)
            f.write('vector %s %d %d\n' % (scheme, rows, cols))
            f.write('input %s\n' % ' '.join('%08x' % f32_bits(v) for v in w))
            parts = encode(scheme, w, rows, cols)
            for name, data in parts:
                f.write('part %s %s\n' % (name, data.hex()))
            f.write('output %s\n' % ' '.join('%08x' % f32_bits(v) for v in decode(scheme, parts, rows, cols)))
            f.write('end\n')
        for scheme, rows, cols, seed in DECODE_CASES:
            parts = quip_parts(scheme, rows, cols, seed)
            f.write('vector %s %d %d\n' % (scheme, rows, cols))
            for name, data in parts:
                f.write('part %s %s\n' % (name, data.hex()))
            f.write('output %s\n' % ' '.join('%08x' % f32_bits(v) for v in decode_quip(scheme, parts, rows, cols)))
            f.write('end\n')
        for scheme, rows, cols, seed in AQLM_CASES:
            parts = aqlm_parts(scheme, rows, cols, seed)
            f.write('vector %s %d %d\n' % (scheme, rows, cols))
            for name, data in parts:
                f.write('part %s %s\n' % (name, data.hex()))
            f.write('output %s\n' % ' '.join('%08x' % f32_bits(v) for v in decode(scheme, parts, rows, cols)))
            f.write('end\n')
        for scheme, rows, cols, parts in spqr_cases():
            f.write('vector %s %d %d\n' % (scheme, rows, cols))
            for name, data in parts:
                f.write('part %s %s\n' % (name, data.hex()))
            f.write('output %s\n' % ' '.join('%08x' % f32_bits(v) for v in spqr_decode(scheme, parts, rows, cols)))
            f.write('end\n')
        for scheme, rows, cols, parts in mix_cases():
            f.write('vector %s %d %d\n' % (scheme, rows, cols))
            for name, data in parts:
                f.write('part %s %s\n' % (name, data.hex()))
            f.write('output %s\n' % ' '.join('%08x' % f32_bits(v) for v in mix_decode(scheme, parts, rows, cols)))
            f.write('end\n')
    with open(outdir + '/minifloat-tables.txt', 'w') as f:
        f.write('# every code of each OCP mini-float and its value (float.hex; nan/inf spelled out)\n')
        for fmt in FORMATS:
            for c in range(1 << FORMATS[fmt][0]):
                v = mf_value(fmt, c)
                f.write('%s %d %s\n' % (fmt, c, 'nan' if math.isnan(v) else ('-' if v < 0 else '') + 'inf' if math.isinf(v) else v.hex()))

if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'testdata/vectors')
