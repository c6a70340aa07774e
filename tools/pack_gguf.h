/* squish-pack export --to gguf (tools/pack_gguf.c). */
#ifndef SQUISH_PACK_GGUF_H
#define SQUISH_PACK_GGUF_H

/* Returns an exit status; requantize (a ggml type name) and model_dir may be NULL. */
int pack_export_gguf(const char *in, const char *out, const char *requantize, const char *model_dir);
/* 1 when s names a ggml type --requantize takes (Q8_0, Q4_0, Q4_1, F16, BF16, F32). */
int pack_gguf_is_type(const char *s);

#endif
