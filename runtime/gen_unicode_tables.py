#!/usr/bin/env python3
"""Writes runtime/unicode_tables.h: code point ranges of the Unicode general
categories L* and N*, which the GPT-2 pre-tokenizer regex uses (\\p{L}, \\p{N})."""
import sys
import unicodedata


def ranges(pred):
    out, start = [], None
    for cp in range(0x110000):
        ok = pred(cp)
        if ok and start is None:
            start = cp
        if not ok and start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out


def main(path):
    tables = (('letter', ranges(lambda c: unicodedata.category(chr(c)).startswith('L'))),
              ('number', ranges(lambda c: unicodedata.category(chr(c)).startswith('N'))))
    with open(path, 'w') as f:
        f.write('/* Unicode general categories L (letters) and N (numbers) as code point\n'
                ' * ranges, generated with Python %s unicodedata (Unicode %s) by\n'
                ' * runtime/gen_unicode_tables.py. */\n' % (sys.version.split()[0], unicodedata.unidata_version))
        for name, rs in tables:
            f.write('static const uint32_t sq_uni_%s[][2] = {\n' % name)
            for i in range(0, len(rs), 6):
                f.write('    ' + ' '.join('{0x%x, 0x%x},' % r for r in rs[i:i + 6]) + '\n')
            f.write('};\n')


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'runtime/unicode_tables.h')
