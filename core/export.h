/* Writing a model as a GGUF file that llama.cpp and slimlab load: the
 * architecture's metadata, the vocabulary, and the tensors in the types
 * asked for. Whole-model export with recipes (compress.h) builds on this;
 * training saves its models and checkpoints through it. */
#ifndef SL_EXPORT_H
#define SL_EXPORT_H

#include "gguf.h"
#include "model.h"

typedef struct sl_gguf_export sl_gguf_export;

/* Low-rank factors in a GGUF (sl_export_gguf writes them, the loader reads
 * them back): a GGUF image of the factor tensors, embedded as a byte array
 * under SL_GGUF_FACTORS, whose string arrays name each factored weight and
 * its two factors (NAME.lr_a, NAME.lr_b, the basis named after the first
 * weight that uses it). */
#define SL_GGUF_FACTORS "slimlab.factors"
#define SL_GGUF_FACTORS_WEIGHTS "slimlab.factors.weights"
#define SL_GGUF_FACTORS_A "slimlab.factors.a"
#define SL_GGUF_FACTORS_B "slimlab.factors.b"

/* Starts a file for m: general.*, the architecture's hyperparameters
 * (per-block head counts and widths as arrays when blocks differ) and the
 * vocabulary when m has a tokenizer. name goes to general.name. */
sl_status sl_gguf_export_new(const sl_model *m, const char *name, sl_gguf_export **out, sl_error *err);
void sl_gguf_export_free(sl_gguf_export *e);
/* The writer underneath, for more metadata or tensors the caller keeps
 * alive until the file is written. */
sl_gguf_writer *sl_gguf_export_writer(sl_gguf_export *e);
/* Adds t under its name, stored as type (converted when t holds another;
 * the export keeps the converted copy). */
sl_status sl_gguf_export_tensor(sl_gguf_export *e, const sl_tensor *t, int type, sl_error *err);
/* Adds every tensor the model's forward uses: matrices (and the
 * embeddings) as mat_type, norms and biases as F32, as llama.cpp's
 * converter stores them. */
sl_status sl_gguf_export_model(sl_gguf_export *e, int mat_type, sl_error *err);
/* Writes the file atomically. */
sl_status sl_gguf_export_write(sl_gguf_export *e, const char *path, sl_error *err);

/* All of the above: m with its matrices as mat_type (F32, F16 or BF16). */
sl_status sl_model_save_gguf(const sl_model *m, const char *name, int mat_type, const char *path, sl_error *err);

/* LoRA adapters on m's matrices as a file llama.cpp loads beside m's
 * export (--lora): general.architecture as m's, general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha (each adapter adds alpha / rank
 * times B A to its matrix's product), and the n tensors of t, pairs named
 * "<matrix>.lora_a" (A, rank x cols: ne {cols, rank}) and
 * "<matrix>.lora_b" (B, rows x rank: ne {rank, rows}), as F32 (B's rows
 * permuted where the matrix's are). Written atomically. */
sl_status sl_export_lora(const sl_model *m, const sl_tensor *const *t, int n, float alpha, const char *path,
                         sl_error *err);

#endif
