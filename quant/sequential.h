/* Sequential (block-by-block) quantization, as the GPTQ and SpQR reference
 * implementations do it: each block's linear layers are quantized with the
 * statistics (XᵀX, mean and max |x|) of the hidden states that the
 * calibration windows reach through the already-quantized earlier blocks
 * (their decoded weights), not those of the full-precision model. Within a
 * block the order is "true sequential": q/k/v, then o (on the attention of
 * the quantized q/k/v), then gate/up, then down; in block mode all of a
 * block's sites come from one pass before any of its layers is quantized
 * (the GPTQ reference without --true-sequential). The windows are redrawn
 * from the calibration text exactly as squish-calibrate drew them (the
 * file's seed, samples and seqlen; the text checked against its
 * text_sha256).
 *
 * The writer's tensor order (sq_model_order) puts a block's MLP before its
 * attention, so the pass encodes a whole block when the writer reaches its
 * first tensor and hands each encoding over when the writer asks for it.
 *
 * Memory: the reference model in f32 (sq_rt_load_model), the hidden states
 * of all windows (samples x seqlen x hidden floats: 134 MB for 128 x 512
 * windows of a 512-wide model, 1 GiB for a 4096-wide one), one block's
 * statistics and one block's encodings. */
#ifndef SQUISH_SEQUENTIAL_H
#define SQUISH_SEQUENTIAL_H

#include "method.h"

typedef struct sq_seq sq_seq;

/* Encodes tensor t as the output will hold it (the caller's method, scheme
 * and allocation), with the statistics q->site_src gives. */
typedef sq_status (*sq_seq_encode_fn)(void *ctx, const sq_model_tensor *t, sq_encoded *e, sq_method_note *note,
                                      sq_err *err);

typedef struct sq_seq_opts {
    const char *calib_path;          /* for messages */
    const char *const *texts;        /* the calibration text files, in squish-calibrate's order */
    int n_texts;
    const char *tokenizer;           /* NULL: the model's */
    const char *stats_out;           /* write the statistics the pass gathered here (HDF5), or NULL */
    int n_threads;
    int block_mode; /* each block's four sites from one pass of the block before any of its
                       layers is quantized (the GPTQ reference without --true-sequential) */
} sq_seq_opts;

/* Loads the reference model, redraws the windows and checks them against
 * q->calib (SQ_EUSAGE when the text or tokenizer is not the file's). */
sq_status sq_seq_open(sq_seq **out, const sq_model *m, sq_method *q, const sq_seq_opts *o, sq_err *err);
/* The method's source of site statistics (sq_method.site_src, ctx = the sq_seq). */
sq_status sq_seq_site(void *ctx, uint32_t layer, sq_site site, sq_calib_site *out, sq_err *err);
/* Before the writer handles tensor t: when t is the first tensor of a new
 * block, advances the hidden states to the block's input and encodes every
 * tensor of the block with enc (norms and biases first, then the linear
 * layers in true-sequential order, each one's site gathered just before),
 * putting each decoded result into the model the hidden states run through. */
sq_status sq_seq_before(sq_seq *s, const sq_model_tensor *t, sq_seq_encode_fn enc, void *enc_ctx, sq_err *err);
/* Hands over t's encoding from sq_seq_before (1; the caller frees it), or 0
 * when t is not a block tensor (the caller encodes it). */
int sq_seq_take(sq_seq *s, const sq_model_tensor *t, sq_encoded *e, sq_method_note *note);
/* After the caller encoded a tensor outside the blocks: the embedding's
 * decoded weights replace the reference's (the hidden states start there). */
sq_status sq_seq_after(sq_seq *s, const sq_model_tensor *t, const sq_encoded *e, sq_err *err);
/* After the last tensor: checks that every encoding was taken and writes
 * opts->stats_out. */
sq_status sq_seq_finish(sq_seq *s, sq_err *err);
void sq_seq_free(sq_seq *s);

#endif
