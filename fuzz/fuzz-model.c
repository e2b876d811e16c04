/* libFuzzer: a model file (GGUF or llama2.c checkpoint) loaded as a user's
 * would be, and, when it loads, one forward step. */
#include <stdint.h>

#include "core/forward.h"
#include "core/model.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A tokenizer beside llama2.c checkpoints is not needed to reach the
	 * header and weight checks; the loader reports its absence. */
	const char *path = fuzz_file(data, size, ".bin");
	sl_model *m = NULL;
	sl_error err;
	if (sl_model_load(path, NULL, &m, &err) != SL_OK)
		return 0;
	sl_state *s;
	if (m->cfg.dim <= 4096 && m->cfg.n_layers <= 64 && sl_state_new(m, 8, &s, &err) == SL_OK) {
		int32_t tok[2] = {0, m->cfg.vocab_size - 1};
		sl_forward(s, tok, 2, NULL, 0, &err);
		sl_state_free(s);
	}
	sl_model_free(m);
	return 0;
}
