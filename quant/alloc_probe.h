/* Measured sensitivity for the target-bpw allocator (squish-quantize
 * --alloc-probe N): per allocated tensor, the KL-divergence the model gets
 * when only that tensor is replaced by one candidate's decode, on N windows
 * of a probe text, through the runtime's evaluation (sq_rt_eval, llama.cpp
 * scoring: the second half of each window), against the unmodified model.
 *
 * Each tensor is probed at two of its candidates: the cheapest (fewest
 * bits) and the median by bits (the (n/2)-th, 0-based, of its candidates
 * sorted by bits; one probe when it has two candidates or fewer). Every
 * candidate's predicted loss is then a power law in its proxy loss x
 * (alloc_model.h) through the probes: K(x) = K_a (x / x_a)^β, a the probe
 * nearest in log x, β the slope of log K against log x between the two
 * probes (clamped to [0.5, 2]; 1 with one probe). A probed candidate's
 * prediction is its measurement.
 *
 * Windows: the first N non-overlapping windows of min(512, the model's
 * context) tokens of the probe text. The probe's KL-divergences are taken
 * against the unmodified model's log-probabilities, cached in a temporary
 * file as squish-verify caches them (f16); the KL-divergence of the
 * unmodified model itself against that cache (its rounding) is subtracted.
 * Deterministic: the runtime's exact path gives the same bits at any thread
 * count. */
#ifndef SQUISH_ALLOC_PROBE_H
#define SQUISH_ALLOC_PROBE_H

#include "alloc_model.h"

#define SQ_ALLOC_PROBE_CTX 512
/* a measured KL-divergence below this is taken as this (the power law needs K > 0) */
#define SQ_ALLOC_PROBE_FLOOR 1e-7

/* The candidates tensor e is probed at (indices into its candidates): the
 * cheapest, then the median by bits when different; returns 1 or 2. */
int sq_alloc_probe_points(const sq_alloc_entry *e, int pts[2]);

/* e->pred[] from e->loss[] and the probes' e->kld[] (pure arithmetic); with
 * no probe measured, pred = loss. */
void sq_alloc_probe_fit(sq_alloc_entry *e);

/* Runs the probes the plan's entries lack (those taken from an
 * --alloc-table with the same probe setting are kept), then fits every
 * entry. SQ_EUSAGE when the probe text is shorter than the windows asked. */
sq_status sq_alloc_probe(const sq_alloc_opts *o, sq_method *q, const sq_model *m, sq_alloc_plan *p,
                         sq_alloc_note_fn note, void *note_ctx, sq_err *err);

#endif
