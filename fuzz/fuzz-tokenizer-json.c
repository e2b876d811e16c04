/* libFuzzer: Hugging Face tokenizer.json, and when it loads, encoding and
 * decoding a text with every kind of character. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(data, size, ".json");
	sl_tokenizer *t = NULL;
	sl_error err;
	if (sl_tok_load_hf(path, &t, &err) != SL_OK)
		return 0;
	static const char text[] = "Hello world, it's 2026! \xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 \n\t  x";
	int32_t *ids = NULL;
	size_t n = 0;
	if (sl_tok_encode(t, text, sizeof text - 1, true, &ids, &n, &err) == SL_OK) {
		int32_t prev = -1;
		for (size_t i = 0; i < n; i++) {
			size_t len;
			sl_tok_decode(t, prev, ids[i], &len);
			prev = ids[i];
		}
	}
	free(ids);
	sl_tok_free(t);
	return 0;
}
