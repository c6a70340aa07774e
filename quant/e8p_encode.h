/* Exact nearest-codeword search for the E8P12 and E81B codebooks
 * (libformat/src/codecs/quip/e8p.h), the encoder side of QuIP#. */
#ifndef SQUISH_QUANT_E8P_ENCODE_H
#define SQUISH_QUANT_E8P_ENCODE_H

#include <stdint.h>

/* The E8P12 code whose value is nearest to y in Euclidean distance (exact:
 * for each of the 256 absolute vectors and both shifts the best sign
 * pattern is found in closed form, see the .c); its value goes to q (may
 * alias y). Ties go to the +1/4 shift, then the lower absolute index. */
uint16_t sq_e8p_nearest(const float y[8], float q[8]);
/* The same for the 256-point E81B grid (brute force; ties: lower code). */
uint8_t sq_e81b_nearest(const float y[8], float q[8]);

#endif
