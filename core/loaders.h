/* The model file readers behind sl_model_load. Each fills a fresh model's
 * config and tensors, then calls sl_model_finish. */
#ifndef SL_LOADERS_H
#define SL_LOADERS_H

#include "model.h"

sl_status sl_load_gguf(sl_model *m, const char *path, const sl_load_opts *opts, sl_error *err);
sl_status sl_load_llama2c(sl_model *m, const char *path, const sl_load_opts *opts, sl_error *err);
/* path: a .safetensors file, a .safetensors.index.json, or a directory. */
sl_status sl_load_safetensors(sl_model *m, const char *path, const sl_load_opts *opts, sl_error *err);

#endif
