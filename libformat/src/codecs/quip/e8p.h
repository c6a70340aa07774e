/* E8P12: the QuIP# lattice codebook (2 bits per weight, 8 weights per
 * 16-bit code); E81B, the 8-bit E8 codebook of QuIP#'s 3-bit residual
 * stage; E8R, the 8-bit table of squish's nested stages. Decode only; the
 * nearest-codeword search is quant/e8p_encode.c.
 *
 * E8P12 code c (u16), as quip-sharp's current E8P12 (version 1 indices):
 *   A = c >> 8      index into the 256 absolute vectors a (sq_e8p_abs):
 *                   0..226 = every |x| of x in D8 + 1/2 with ‖x‖² <= 10,
 *                   sorted lexicographically; 227..255 = 29 vectors of
 *                   norm² 12 (five 3/2's, three 1/2's), in the reference's order;
 *   S = c & 0xFF    sign byte; p = popcount(S) & 1; f = S ^ p (bit 0 toggled);
 *   b = a, except b[7] = -a[7] when Σ a_i is odd (makes Σ b even);
 *   value[i] = (bit perm(i) of f ? -b[i] : b[i]) + (p ? -1/4 : +1/4),
 *   perm(i) = i/2 for even i, 4 + i/2 for odd i.
 * f always has an even number of set bits, so value - shift lies in
 * D8 + 1/2: the 2^16 codes are 256 x 2^7 sign patterns x 2 shifts, a
 * subset of E8 + 1/4 (all 2^16 values distinct).
 *
 * E81B code (u8), as quip-sharp's E8P12RVQ3B residual grid: the 241 points
 * of E8 with norm² <= 2 (integer points first, then half-integer ones, each
 * in lexicographic order of the coordinates taken from -4..3 resp.
 * -3.5..3.5), then 2e_0..2e_7 and -2e_0..-2e_6 (256 in all).
 *
 * E8R code (u8): the 256 cosets of 2·E8 in E8 (E8 = D8 ∪ D8 + 1/2), each
 * by its shortest member (norm² 0, 2 or 4: 1, 120 and 135 cosets; ties,
 * 2 resp. 16 members, go to the lexicographically greatest), sorted by
 * norm², then lexicographically; the stored value is that member / 2.
 * These are the points of ½E8 in the Voronoi cell of E8 up to its
 * boundary, one per coset, so E8P(c0)·s + E8R(c1)·s (+ E8R(c2)·s/2)
 * enumerates ½E8 + ¼ (¼E8 + ¼) inside the E8P ball exactly once: squish's
 * nested 3- and 4-bit stages (spec/codecs.md §11). */
#ifndef SQUISH_CODECS_QUIP_E8P_H
#define SQUISH_CODECS_QUIP_E8P_H

#include <stdint.h>

#define SQ_E8P_DIM 8

/* Absolute vectors: nibble i (bits 4i..4i+3) of entry A is 2·a[i] (1, 3 or 5). */
extern const uint32_t sq_e8p_abs[256];
/* E81B points, coordinates times 2. */
extern const int8_t sq_e81b_grid2[256][8];

/* E8R values, times 4 (integers in -4..4). */
extern const int8_t sq_e8r_grid4[256][8];

/* Tables for table-driven decode: value[i] = base[A][i]·sign[S][i] + shift[S]. */
typedef struct sq_e8p_tables {
    float base[256][8]; /* b (a with the parity fix on coordinate 7) */
    float sign[256][8]; /* ±1 from f = S ^ p through perm() */
    float shift[256];   /* +1/4 or -1/4 */
    float e81b[256][8]; /* E81B points */
    float e8r[256][8];  /* E8R values */
} sq_e8p_tables;
/* Built once (thread-safe), never freed. */
const sq_e8p_tables *sq_e8p_tables_get(void);

void sq_e8p_decode(uint16_t code, float out[8]);
void sq_e81b_decode(uint8_t code, float out[8]);
void sq_e8r_decode(uint8_t code, float out[8]);

#endif
