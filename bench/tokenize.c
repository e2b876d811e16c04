/* bench/tokenize: tokenization throughput of every fixture vocabulary over
 * a fixed prefix of the calibration text, encoded in one call as eval and
 * the sweeps encode their text. Byte-level vocabularies spend most of it in
 * the pre-tokenizer's pattern matching, SentencePiece ones in merging.
 * Times are CPU seconds of the process (tokenizing is single-threaded),
 * the best of a few runs, so other work on the machine counts little.
 * Usage: bench/tokenize [BYTES [RUNS]] (run from the source tree; BYTES
 * defaults to 1 MB, RUNS to 3; vocabularies come from $SL_FIXTURES or
 * ../shared/fixtures). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/fileio.h"
#include "core/tokenizer.h"

static const char *const vocabs[] = {
	"tokenizers/ggml-vocab-gpt-2.gguf",          "tokenizers/ggml-vocab-phi-3.gguf",
	"tokenizers/ggml-vocab-falcon.gguf",         "tokenizers/ggml-vocab-deepseek-llm.gguf",
	"tokenizers/ggml-vocab-deepseek-coder.gguf", "tokenizers/ggml-vocab-starcoder.gguf",
	"tokenizers/ggml-vocab-refact.gguf",         "tokenizers/ggml-vocab-mpt.gguf",
	"tokenizers/ggml-vocab-gpt-neox.gguf",       "tokenizers/ggml-vocab-llama-spm.gguf",
	"tokenizers/ggml-vocab-baichuan.gguf",       "tokenizers/llama2c-tokenizer-32000.bin",
	"models/tok512.bin",                         "models/tinystories656K/tokenizer.json",
};

int main(int argc, char **argv)
{
	size_t bytes = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	int runs = argc > 2 ? atoi(argv[2]) : 3;
	const char *fixtures = getenv("SL_FIXTURES");
	if (!fixtures)
		fixtures = "../shared/fixtures";
	sl_error err = {0};
	char *text;
	size_t len;
	if (sl_read_file("data/calib.txt", 1 << 26, &text, &len, &err)) {
		fprintf(stderr, "%s (run from the source tree)\n", err.msg);
		return 1;
	}
	if (bytes == 0 || bytes > len)
		bytes = len;
	if (runs < 1)
		runs = 1;
	printf("data/calib.txt, first %zu bytes, best of %d runs (CPU time)\n", bytes, runs);
	printf("%-42s %-15s %10s %9s %12s\n", "vocabulary", "pre-tokenizer", "tokens", "MB/s", "tokens/s");
	int loaded = 0;
	for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", fixtures, vocabs[v]);
		sl_tokenizer *t;
		if (sl_tok_load_file(path, &t, &err) != SL_OK) {
			printf("%-42s skipped: %s\n", vocabs[v], err.msg);
			continue;
		}
		loaded++;
		double best = 1e30;
		size_t n = 0;
		for (int r = 0; r < runs; r++) {
			int32_t *ids;
			double t0 = bench_cpu_now();
			sl_status st = sl_tok_encode(t, text, bytes, false, &ids, &n, &err);
			double dt = bench_cpu_now() - t0;
			if (st != SL_OK) {
				fprintf(stderr, "%s: %s\n", vocabs[v], err.msg);
				return 1;
			}
			free(ids);
			if (dt < best)
				best = dt;
		}
		const char *pre = sl_tok_kind_of(t) == SL_TOK_SPM ? "(SentencePiece)" : sl_tok_pre_name(t);
		printf("%-42s %-15s %10zu %9.2f %12.0f\n", vocabs[v], pre, n, (double)bytes / best / 1e6,
		       (double)n / best);
		sl_tok_free(t);
	}
	free(text);
	if (!loaded) {
		fprintf(stderr, "no vocabulary found under %s (set SL_FIXTURES)\n", fixtures);
		return 1;
	}
	return 0;
}
