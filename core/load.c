/* Opens a model file by what it contains, not by its name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders.h"
#include "tokenizer.h"

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

sl_status sl_model_load(const char *path, const sl_load_opts *opts, sl_model **out, sl_error *err)
{
	static const sl_load_opts defaults = {.check_finite = true};
	if (!opts)
		opts = &defaults;
	*out = NULL;
	sl_model *m = calloc(1, sizeof *m);
	if (!m)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	snprintf(m->path, sizeof m->path, "%s", path);

	sl_status st;
	if (sl_is_dir(path) || ends_with(path, ".safetensors") || ends_with(path, ".json")) {
		st = sl_load_safetensors(m, path, opts, err);
	} else {
		FILE *f = fopen(path, "rb");
		if (!f) {
			free(m);
			return sl_errorf(err, SL_ERR_IO, "%s: cannot open model file", path);
		}
		unsigned char magic[8] = {0};
		size_t got = fread(magic, 1, sizeof magic, f);
		fclose(f);
		if (got >= 4 && !memcmp(magic, "GGUF", 4))
			st = sl_load_gguf(m, path, opts, err);
		else if (got >= 8 && magic[0] <= 0x7f && magic[1] == 0 && magic[2] == 0 && magic[3] == 0 &&
		         0 == memcmp(magic + 4, "{\"", 2))
			st = sl_load_safetensors(m, path, opts, err); /* u64 header length, then JSON */
		else
			st = sl_load_llama2c(m, path, opts, err);
	}
	for (int i = 0; st == SL_OK && opts->check_finite && i < m->n_tensors; i++) {
		if (sl_cancelled(opts->progress)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "opening cancelled");
			break;
		}
		sl_report(opts->progress, (double)i / m->n_tensors, m->tensors[i]->name);
		st = sl_tensor_check_finite(m->tensors[i], err);
	}
	if (st == SL_OK && !m->tok)
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: no tokenizer was found for this model", path);
	if (st == SL_OK && sl_tok_n_vocab(m->tok) > m->cfg.vocab_size)
		st = sl_errorf(err, SL_ERR_FORMAT,
		               "%s: the tokenizer has %d tokens but the model only %d embeddings",
		               path, sl_tok_n_vocab(m->tok), m->cfg.vocab_size);
	if (st) {
		if (err && !strstr(err->msg, path))
			sl_error_prefix(err, "%s: ", path);
		sl_model_free(m);
		return st;
	}
	*out = m;
	return SL_OK;
}
