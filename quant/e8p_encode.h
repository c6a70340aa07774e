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
/* The k (<= SQ_E8P_MAX_CAND) nearest candidates, one per absolute vector
 * and shift (each with its best sign pattern), nearest first: codes,
 * values (8 per candidate) and squared distances (dist may be NULL).
 * Returns how many were written. Candidate 0 is sq_e8p_nearest's code
 * up to ties. */
#define SQ_E8P_MAX_CAND 64
int sq_e8p_candidates(const float y[8], int k, uint16_t *codes, float *vals, float *dist);
/* The same for the 256-point E81B grid (brute force; ties: lower code). */
uint8_t sq_e81b_nearest(const float y[8], float q[8]);


/* ---- squish's nested stages (E8R, see codecs/quip/e8p.h) ---- */
/* Nearest point of E8 = D8 ∪ (D8 + ½) to x (exact; ties go to D8). */
void sq_e8_nearest(const float x[8], float p[8]);
/* The E8R code whose 2·value is in the same coset of 2E8 as the E8 point e. */
uint8_t sq_e8r_of_coset(const float e[8]);
/* The E8P12 code whose value is exactly c, its value to q; -1 when c is not
 * an E8P12 value (c must be a point of E8 + ¼). */
int sq_e8p_code_of_value(const float c[8], float q[8]);
/* The E8R code nearest to y (exact: ½E8's nearest point when it is an E8R
 * value, else all 256; ties may go either way), value to q. */
uint8_t sq_e8r_nearest(const float y[8], float q[8]);

#endif
