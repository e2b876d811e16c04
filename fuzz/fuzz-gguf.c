/* libFuzzer: the GGUF parser, then every accessor over what it accepted. */
#include <stdint.h>
#include <string.h>

#include "core/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sl_gguf *g = NULL;
	sl_error err;
	if (sl_gguf_parse(data, size, "fuzz.gguf", &g, &err) != SL_OK)
		return 0;
	volatile size_t sink = 0;
	/* Numbers are summed as doubles: negative, huge and NaN values have no
	 * integer to become. */
	volatile double num_sink = 0;
	for (uint64_t i = 0; i < g->n_kv; i++) {
		const sl_gguf_kv *kv = &g->kv[i];
		for (uint64_t j = 0; j < kv->n && j < 64; j++) {
			size_t len;
			const char *s = sl_gguf_arr_str(kv, j, &len);
			if (s && len)
				sink += (unsigned char)s[len - 1];
			num_sink += sl_gguf_arr_num(kv, j);
		}
		char buf[64];
		int64_t v;
		float f;
		bool b;
		sl_gguf_get_str(g, kv->key, buf, sizeof buf);
		sl_gguf_get_i64(g, kv->key, &v);
		sl_gguf_get_f32(g, kv->key, &f);
		sl_gguf_get_bool(g, kv->key, &b);
	}
	for (uint64_t i = 0; i < g->n_tensors; i++)
		if (g->tensors[i].nbytes)
			sink += ((const uint8_t *)g->tensors[i].data)[g->tensors[i].nbytes - 1];
	sl_gguf_close(g);
	return 0;
}
