/* squish-pack's Hugging Face GPTQ/AWQ branches: export --to hf-gptq|
 * hf-gptq-v2|hf-awq and import of such a directory (libsquish's
 * squish/hf_quant.h does the work; this prints). */
#ifndef SQUISH_PACK_HF_H
#define SQUISH_PACK_HF_H

/* 1 when --to names one of the Hugging Face layouts. */
int pack_hf_layout(const char *to);
/* squish-pack export --to LAYOUT [--requantize] IN -o DIR; returns the exit code. */
int pack_export_hf(const char *in, const char *dir, const char *to, int requantize);
/* squish-pack import DIR -o OUT for a GPTQ/AWQ directory: the exit code,
 * or -1 when dir holds no quantized checkpoint (the caller reads it as a
 * plain model). */
int pack_import_hf(const char *dir, const char *out);

#endif
