#!/usr/bin/env python3
"""Golden vectors for TCA-TBE, the lossless bf16 part compression of
spec/squizd.md §13, computed from the spec's text without squish's C code.
Run by hand:

    python3 testdata/gen_tca_tbe.py testdata/vectors/tca-tbe-vectors.txt

and commit the output; tests/test_tca_tbe.c checks that squish's encoder
writes exactly these bytes and that its decoders give the values back.
Output lines (after '#' comments):

    vector NAME N VALUES_HEX CODED_HEX
        N bf16 values (each as 2 little-endian bytes) and their coded stream
    sha256 NAME N DIGEST
        the SHA-256 of the coded stream of N values made by rule NAME:
        'counting' v[i] = i, 'scattered' v[i] = (i * 40503) mod 65536
        (every bf16 bit pattern once each, in two orders)

With --example it prints the spec's worked example (§13.4) as annotated
hex instead.
"""
import hashlib
import struct
import sys

BLOCK = 128
WINDOW = 7
MAX_BASE = 249


def exponent(v):
    return (v >> 7) & 0xFF


def window_base(exps):
    """The smallest e0 in 0..249 whose window e0..e0+6 holds the most values."""
    count = [0] * 256
    for e in exps:
        count[e] += 1
    best, best_e0 = -1, 0
    for e0 in range(MAX_BASE + 1):
        c = sum(count[e0:e0 + WINDOW])
        if c > best:
            best, best_e0 = c, e0
    return best_e0


def encode(values):
    n = len(values)
    nblocks = (n + BLOCK - 1) // BLOCK
    records, escapes = [], bytearray()
    for b in range(nblocks):
        blk = values[BLOCK * b:BLOCK * (b + 1)]
        exps = [exponent(v) for v in blk]
        e0 = window_base(exps)
        word = e0 | (len(escapes) << 8)
        planes = [0, 0, 0]
        sm = bytearray(BLOCK)
        for j, v in enumerate(blk):
            e = exps[j]
            idx = e - e0 if e0 <= e <= e0 + WINDOW - 1 else 7
            for p in range(3):
                if (idx >> p) & 1:
                    planes[p] |= 1 << j
            sm[j] = ((v >> 8) & 0x80) | (v & 0x7F)
            if idx == 7:
                escapes.append(e)
        rec = struct.pack('<Q', word) + b''.join(planes[p].to_bytes(16, 'little') for p in range(3)) + bytes(sm)
        assert len(rec) == 184
        records.append(rec)
    header = b'TBE1' + bytes(4) + struct.pack('<QQ', n, len(escapes)) + bytes(8)
    return header + b''.join(records) + bytes(escapes)


def decode(data, n):
    """The reader's side, as §13.2 states it (used here to check encode)."""
    assert data[:4] == b'TBE1' and struct.unpack_from('<Q', data, 8)[0] == n
    n_esc = struct.unpack_from('<Q', data, 16)[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    esc_area = data[32 + 184 * nblocks:]
    assert len(esc_area) == n_esc
    out = []
    for b in range(nblocks):
        rec = data[32 + 184 * b:32 + 184 * (b + 1)]
        word = struct.unpack_from('<Q', rec, 0)[0]
        e0, k = word & 0xFF, word >> 8
        planes = [int.from_bytes(rec[8 + 16 * p:24 + 16 * p], 'little') for p in range(3)]
        for j in range(min(BLOCK, n - BLOCK * b)):
            idx = sum(((planes[p] >> j) & 1) << p for p in range(3))
            if idx == 7:
                e = esc_area[k]
                k += 1
            else:
                e = e0 + idx
            s = rec[56 + j]
            out.append(((s & 0x80) << 8) | (e << 7) | (s & 0x7F))
    return out


class Lcg:
    """64-bit LCG (Knuth's MMIX constants); the top bits as uniform numbers."""

    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) % 2**64
        return self.s >> 11

    def uniform(self):
        return self.next() / 2.0**53


def bf16_of(x):
    """bf16 bits of a double, rounded to nearest even through float32."""
    b = struct.unpack('<I', struct.pack('<f', x))[0]
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF


def weights(n, seed, sd):
    """Weight-like values: a sum of 4 uniforms (about Gaussian), sd about sd."""
    r = Lcg(seed)
    return [bf16_of(sum(r.uniform() - 0.5 for _ in range(4)) * sd * 3.4641) for _ in range(n)]


SPEC_EXAMPLE = [0x3F80, 0xC000, 0x3F00, 0x4040, 0x3E20, 0x3FC0, 0x8000, 0x7F80, 0x0001, 0x42C8]

SPECIALS = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x7F81, 0xFFFF, 0x0001, 0x007F, 0x8001,
            0x0080, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80, 0x0081, 0x807F, 0x7FFF, 0xFFC1, 0x3F81]


def vectors():
    out = [('spec-example', SPEC_EXAMPLE), ('specials', SPECIALS), ('empty', [])]
    # a window at the top of the range (base 249 holds 255: infinities and NaNs are not escapes)
    top = [(e << 7) | ((i * 37) & 0x7F) | ((i & 1) << 15) for i, e in enumerate([249, 250, 251, 252, 253, 254, 255] * 3)]
    out.append(('window-top', top + [(248 << 7) | 5]))
    # two windows hold as many values: the smaller base wins, below the lowest exponent
    out.append(('tie', [(100 << 7) | i for i in range(5)] + [(120 << 7) | i for i in range(5)]))
    out.append(('one', [0x3C00]))
    out.append(('block', weights(128, 1, 0.02)))
    out.append(('block-plus-one', weights(129, 2, 0.02)))
    out.append(('three-partial', weights(300, 3, 0.05)))
    r = Lcg(4)
    out.append(('random-bits', [r.next() & 0xFFFF for _ in range(200)]))
    return out


def main(path):
    lines = ['# TCA-TBE golden vectors (spec/squizd.md §13), written by testdata/gen_tca_tbe.py from the',
             '# spec text, not from squish\'s C code. vector NAME N VALUES_HEX CODED_HEX (values as',
             '# little-endian bf16 bytes; "-" for none); sha256 NAME N DIGEST of the coded stream of',
             '# every bf16 pattern (counting: v[i] = i; scattered: v[i] = i * 40503 mod 65536).']
    for name, vals in vectors():
        coded = encode(vals)
        assert decode(coded, len(vals)) == vals, name
        raw = b''.join(struct.pack('<H', v) for v in vals)
        lines.append('vector %s %d %s %s' % (name, len(vals), raw.hex() or '-', coded.hex()))
    for name, vals in (('counting', list(range(65536))), ('scattered', [(i * 40503) % 65536 for i in range(65536)])):
        coded = encode(vals)
        assert decode(coded, len(vals)) == vals, name
        lines.append('sha256 %s %d %s' % (name, len(vals), hashlib.sha256(coded).hexdigest()))
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def example():
    """§13.4: every byte of the coded example, annotated."""
    vals = SPEC_EXAMPLE
    c = encode(vals)
    rows = []

    def row(off, n, what):
        rows.append('%04x: %-47s | %s' % (off, ' '.join('%02x' % b for b in c[off:off + n]), what))

    row(0, 4, 'magic "TBE1"')
    row(4, 4, 'reserved (zero)')
    row(8, 8, 'n_values = %d' % len(vals))
    row(16, 8, 'n_escapes = %d' % struct.unpack_from('<Q', c, 16)[0])
    row(24, 8, 'reserved (zero)')
    w = struct.unpack_from('<Q', c, 32)[0]
    row(32, 8, 'block 0 word: base = %d, escape start = %d' % (w & 0xFF, w >> 8))
    for p in range(3):
        row(40 + 16 * p, 16, 'plane %d (bit j = bit %d of value j\'s index)' % (p, p))
    row(88, 16, 'sign/mantissa bytes 0..15')
    for k in range(1, 8):
        row(88 + 16 * k, 16, '...' if k > 1 else 'bytes 16..127: padding (zero)')
    row(216, len(c) - 216, 'escape area: exponents of values 6, 7, 8, 9')
    print('\n'.join(rows))


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--example':
        example()
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else 'testdata/vectors/tca-tbe-vectors.txt')
