/* Bit layouts of the Hugging Face GPTQ and AWQ checkpoints (internal).
 *
 * GPTQ (AutoGPTQ / GPTQModel, every bit width 2, 3, 4, 8): a run of b-bit
 * values is one little-endian bitstream of 32-bit words, value i in bits
 * [i*b, i*b + b) of the stream, least significant bit first; 3-bit values
 * 10 and 21 of each 32 straddle two words. qweight [K*b/32, N] runs the
 * stream down each column (along the input dimension K), qzeros
 * [groups, N*b/32] along each row (the output dimension N).
 *
 * AWQ GEMM (AutoAWQ, 4 bits): eight values per word along N, nibble slot i
 * (shift 4i) holding column 8w + AWQ_ORDER[i] of word w, in qweight [K, N/8]
 * and qzeros [groups, N/8] alike.
 *
 * Word arrays are byte buffers of little-endian words (safetensors I32),
 * so nothing here depends on the host's byte order. */
#ifndef SQUISH_HF_PACK_H
#define SQUISH_HF_PACK_H

#include <stdint.h>

/* Value i of a bitstream whose word s lies at buf + 4 * (s * stride + off):
 * column off of a row-major word matrix with stride words per row (the
 * stream runs down the column), or a row (stride 1, off = row start). */
void sq_hf_stream_put(uint8_t *buf, uint64_t stride, uint64_t off, uint64_t i, int bits, uint32_t v);
uint32_t sq_hf_stream_get(const uint8_t *buf, uint64_t stride, uint64_t off, uint64_t i, int bits);

/* AWQ: value of column n in a row of N/8 words at row (bytes), and setting it. */
extern const int sq_awq_order[8];
void sq_awq_put(uint8_t *row, uint64_t n, uint32_t v);
uint32_t sq_awq_get(const uint8_t *row, uint64_t n);

#endif
