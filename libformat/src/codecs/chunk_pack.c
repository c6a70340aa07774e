/* Bit layouts of one 32-value chunk of codes (spec/codecs.md, "Code chunks").
 * Layouts put values 16 apart (4-bit) or 8 apart (2-bit) in one byte so a SIMD
 * kernel unpacks a chunk with shifts and masks, in order. */
#include <string.h>

#include "codecs/codecs.h"

void sq_pack_chunk(int bits, const uint8_t q[SQ_CHUNK], uint8_t *out) {
    switch (bits) {
    case 8: memcpy(out, q, 32); break;
    case 4:
        for (int j = 0; j < 16; j++) out[j] = (uint8_t)(q[j] | q[j + 16] << 4);
        break;
    case 2:
        for (int j = 0; j < 8; j++) out[j] = (uint8_t)(q[j] | q[j + 8] << 2 | q[j + 16] << 4 | q[j + 24] << 6);
        break;
    case 3: {
        uint32_t hi = 0;
        for (int j = 0; j < 8; j++)
            out[j] = (uint8_t)((q[j] & 3) | (q[j + 8] & 3) << 2 | (q[j + 16] & 3) << 4 | (q[j + 24] & 3) << 6);
        for (int i = 0; i < 32; i++) hi |= (uint32_t)(q[i] >> 2) << i;
        for (int k = 0; k < 4; k++) out[8 + k] = (uint8_t)(hi >> (8 * k));
        break;
    }
    case 6:
        for (int k = 0; k < 8; k++) {
            uint32_t v = q[4 * k] | (uint32_t)q[4 * k + 1] << 6 | (uint32_t)q[4 * k + 2] << 12 | (uint32_t)q[4 * k + 3] << 18;
            out[3 * k] = (uint8_t)v;
            out[3 * k + 1] = (uint8_t)(v >> 8);
            out[3 * k + 2] = (uint8_t)(v >> 16);
        }
        break;
    }
}

void sq_unpack_chunk(int bits, const uint8_t *in, uint8_t q[SQ_CHUNK]) {
    switch (bits) {
    case 8: memcpy(q, in, 32); break;
    case 4:
        for (int j = 0; j < 16; j++) {
            q[j] = in[j] & 15;
            q[j + 16] = in[j] >> 4;
        }
        break;
    case 2:
        for (int j = 0; j < 8; j++) {
            q[j] = in[j] & 3;
            q[j + 8] = (in[j] >> 2) & 3;
            q[j + 16] = (in[j] >> 4) & 3;
            q[j + 24] = in[j] >> 6;
        }
        break;
    case 3: {
        uint32_t hi = (uint32_t)in[8] | (uint32_t)in[9] << 8 | (uint32_t)in[10] << 16 | (uint32_t)in[11] << 24;
        for (int j = 0; j < 8; j++) {
            q[j] = in[j] & 3;
            q[j + 8] = (in[j] >> 2) & 3;
            q[j + 16] = (in[j] >> 4) & 3;
            q[j + 24] = in[j] >> 6;
        }
        for (int i = 0; i < 32; i++) q[i] |= (uint8_t)(((hi >> i) & 1) << 2);
        break;
    }
    case 6:
        for (int k = 0; k < 8; k++) {
            uint32_t v = in[3 * k] | (uint32_t)in[3 * k + 1] << 8 | (uint32_t)in[3 * k + 2] << 16;
            q[4 * k] = v & 63;
            q[4 * k + 1] = (v >> 6) & 63;
            q[4 * k + 2] = (v >> 12) & 63;
            q[4 * k + 3] = (v >> 18) & 63;
        }
        break;
    }
}
