#!/usr/bin/env python3
"""Annotated hex dump of a .squizd file, written from spec/squizd.md alone
(it shares no code with libformat). It prints one line per field, or per 16
bytes of a longer field:  OFFSET: HH HH ... | what the bytes are.
The worked example in spec/squizd.md is this script's output for
testdata/toy.squizd, and tests/test_container.c checks the two agree.

usage: squizd_dump.py FILE
"""
import struct
import sys

DTYPES = {1: 'f32', 2: 'f16', 3: 'bf16', 4: 'f64', 5: 'i8', 6: 'u8', 7: 'i16', 8: 'u16',
          9: 'i32', 10: 'u32', 11: 'i64', 12: 'u64'}


class Dump:
    def __init__(self, data):
        self.b = data
        self.lines = []
        self.pos = 0

    def emit(self, off, n, text):
        for k in range(0, max(n, 1), 16):
            chunk = self.b[off + k: off + min(n, k + 16)]
            hexs = ' '.join('%02x' % c for c in chunk)
            self.lines.append('%06x: %-47s | %s' % (off + k, hexs, text if k == 0 else '...'))

    def field(self, off, n, fmt, name):
        v = struct.unpack_from('<' + fmt, self.b, off)[0] if fmt else None
        self.emit(off, n, name if v is None else '%s = %s' % (name, v))
        return v

    def gap(self, start, end, what='padding (zero)'):
        if end > start:
            self.emit(start, end - start, what)


def main(path):
    b = open(path, 'rb').read()
    d = Dump(b)
    f = d.field
    d.emit(0, 4, 'magic "SQZD"')
    f(4, 2, 'H', 'version_major')
    f(6, 2, 'H', 'version_minor')
    f(8, 4, 'I', 'header_size')
    align = f(12, 4, 'I', 'alignment')
    f(16, 8, 'Q', 'flags (technique bits)')
    f(24, 4, 'I', 'incompat_flags')
    f(28, 4, 'I', 'arch (1 = llama)')
    for off, name in [(32, 'n_layers'), (36, 'hidden_size'), (40, 'n_heads'), (44, 'n_kv_heads'),
                      (48, 'vocab_size'), (52, 'intermediate_size')]:
        f(off, 4, 'I', name)
    f(56, 4, 'f', 'avg_bpw (f32)')
    f(60, 4, 'f', 'sparsity (f32)')
    d.emit(64, 32, 'calib_hash (32 bytes, zero = none)')
    n_t = f(96, 4, 'I', 'n_tensors')
    n_a = f(100, 4, 'I', 'n_appendix')
    io = f(104, 8, 'Q', 'index_offset')
    isz = f(112, 8, 'Q', 'index_size')
    d.emit(120, 8, 'index_checksum (XXH64)')
    mo = f(128, 8, 'Q', 'meta_offset')
    ms = f(136, 8, 'Q', 'meta_stored_size')
    f(144, 8, 'Q', 'meta_raw_size')
    d.emit(152, 8, 'meta_checksum (XXH64)')
    f(160, 4, 'I', 'meta_compression')
    d.emit(164, 4, 'reserved (zero)')
    ao = f(168, 8, 'Q', 'appendix_offset')
    asz = f(176, 8, 'Q', 'appendix_size')
    f(184, 8, 'Q', 'data_offset')
    f(192, 8, 'Q', 'data_size')
    f(200, 8, 'Q', 'file_size')
    d.emit(208, 8, 'appendix_checksum (XXH64)')
    d.emit(216, 32, 'reserved (zero)')
    d.emit(248, 8, 'header_checksum (XXH64 of bytes 0..247)')

    # collect data blobs from the index first, then print the data region in order
    blobs = []
    p = io
    records = []
    for t in range(n_t):
        rlen, nlen, ndim, sdt, codec, nparts = struct.unpack_from('<IHBBHB', b, p)
        params = struct.unpack_from('<8I', b, p + 16)
        dims = struct.unpack_from('<%dQ' % ndim, b, p + 48)
        name = b[p + 48 + 8 * ndim: p + 48 + 8 * ndim + nlen].decode()
        records.append((p, rlen, nlen, ndim, sdt, codec, nparts, params, dims, name))
        q = p + ((48 + 8 * ndim + nlen + 7) // 8) * 8
        for k in range(nparts):
            pn, pdt, pnd, comp = struct.unpack_from('<BBBB', b, q)
            off, stored, raw, csum = struct.unpack_from('<4Q', b, q + 8)
            pname = b[q + 40 + 8 * pnd: q + 40 + 8 * pnd + pn].decode()
            blobs.append((off, stored, 'tensor %s part %s (%s, %s)' % (name, pname, DTYPES.get(pdt, '?'), 'zstd' if comp else 'raw')))
            q += ((40 + 8 * pnd + pn + 7) // 8) * 8
        p += rlen
    for k in range(n_a):
        e = ao + 48 * k
        typ, flags, comp = struct.unpack_from('<III', b, e)
        off, stored = struct.unpack_from('<2Q', b, e + 16)
        blobs.append((off, stored, 'appendix %d data (type %d)' % (k, typ)))
    blobs.sort()
    pos = 256
    for off, size, what in blobs:
        d.gap(pos, off, 'padding to the %d-byte alignment' % align)
        d.emit(off, size, what)
        pos = off + size
    d.gap(pos, io, 'padding to 8 bytes')

    for (p, rlen, nlen, ndim, sdt, codec, nparts, params, dims, name) in records:
        f(p, 4, 'I', 'tensor record_len')
        f(p + 4, 2, 'H', '  name_len')
        f(p + 6, 1, 'B', '  ndim')
        f(p + 7, 1, 'B', '  source dtype (%s)' % DTYPES.get(sdt, '?'))
        f(p + 8, 2, 'H', '  codec id')
        f(p + 10, 1, 'B', '  n_parts')
        d.emit(p + 11, 5, '  reserved (zero)')
        d.emit(p + 16, 32, '  codec params u32[8] = %s' % (list(params),))
        for i in range(ndim):
            f(p + 48 + 8 * i, 8, 'Q', '  dims[%d]' % i)
        d.emit(p + 48 + 8 * ndim, nlen, '  name "%s"' % name)
        q = p + 48 + 8 * ndim + nlen
        q8 = p + ((48 + 8 * ndim + nlen + 7) // 8) * 8
        d.gap(q, q8, '  padding to 8 bytes')
        q = q8
        for k in range(nparts):
            pn, pdt, pnd, comp = struct.unpack_from('<BBBB', b, q)
            f(q, 1, 'B', '  part name_len')
            f(q + 1, 1, 'B', '    dtype (%s)' % DTYPES.get(pdt, '?'))
            f(q + 2, 1, 'B', '    ndim')
            f(q + 3, 1, 'B', '    compression')
            d.emit(q + 4, 4, '    reserved (zero)')
            f(q + 8, 8, 'Q', '    offset')
            f(q + 16, 8, 'Q', '    stored_size')
            f(q + 24, 8, 'Q', '    raw_size')
            d.emit(q + 32, 8, '    checksum (XXH64 of the stored bytes)')
            for i in range(pnd):
                f(q + 40 + 8 * i, 8, 'Q', '    dims[%d]' % i)
            nm = q + 40 + 8 * pnd
            d.emit(nm, pn, '    name "%s"' % b[nm:nm + pn].decode())
            q8 = q + ((40 + 8 * pnd + pn + 7) // 8) * 8
            d.gap(nm + pn, q8, '    padding to 8 bytes')
            q = q8
    d.gap(io + isz, mo, 'padding to 8 bytes')
    d.emit(mo, ms, 'metadata JSON: %s' % b[mo:mo + ms].decode())
    d.gap(mo + ms, ao, 'padding to 8 bytes')
    for k in range(n_a):
        e = ao + 48 * k
        f(e, 4, 'I', 'appendix type')
        f(e + 4, 4, 'I', '  flags')
        f(e + 8, 4, 'I', '  compression')
        d.emit(e + 12, 4, '  reserved (zero)')
        f(e + 16, 8, 'Q', '  offset')
        f(e + 24, 8, 'Q', '  stored_size')
        f(e + 32, 8, 'Q', '  raw_size')
        d.emit(e + 40, 8, '  checksum (XXH64)')
    assert ao + asz == len(b), 'file does not end after the appendix table'
    print('\n'.join(d.lines))


if __name__ == '__main__':
    main(sys.argv[1])
