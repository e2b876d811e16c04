/* What fuzzing found stays found: each input under tests/data/fuzz/ (by
 * harness) gets the clear error it should, and those inputs and the seed
 * corpora in fuzz/corpus/ run through the harnesses' own code, so a crash,
 * or under the sanitizer build any report, fails the test. */
#include <dirent.h>
#include <stdint.h>

#include "core/fileio.h"
#include "core/gguf.h"
#include "core/tokenizer.h"
#include "test.h"

/* The harnesses themselves, each entry point under its own name. */
int fuzz_gguf(const uint8_t *data, size_t size);
int fuzz_model(const uint8_t *data, size_t size);
int fuzz_safetensors(const uint8_t *data, size_t size);
int fuzz_tokenizer_json(const uint8_t *data, size_t size);
int fuzz_recipe(const uint8_t *data, size_t size);
int fuzz_session(const uint8_t *data, size_t size);
int fuzz_lesson(const uint8_t *data, size_t size);
int fuzz_tokenize(const uint8_t *data, size_t size);
int fuzz_tokenize_init(int *argc, char ***argv);
#define LLVMFuzzerTestOneInput fuzz_gguf
#include "fuzz/fuzz-gguf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_model
#include "fuzz/fuzz-model.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_safetensors
#include "fuzz/fuzz-safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tokenizer_json
#include "fuzz/fuzz-tokenizer-json.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_recipe
#include "fuzz/fuzz-recipe.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_session
#include "fuzz/fuzz-session.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_lesson
#include "fuzz/fuzz-lesson.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tokenize
#define LLVMFuzzerInitialize fuzz_tokenize_init
#include "fuzz/fuzz-tokenize.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

/* How a finding is read: as its harness hands it to slimlab. */
enum { AS_GGUF, AS_MODEL, AS_HF_FOLDER, AS_TOKENIZER_JSON };

static const struct {
	const char *file; /* under tests/data/fuzz/ */
	int as;
	sl_status want;
	const char *msg;  /* what the error must say */
} findings[] = {
	/* llama2.c marks an unshared classifier with a negative vocabulary
	 * size; INT32_MIN has no positive one (UBSan: negation overflow). */
	{"fuzz-model/llama2c-vocab-int-min.bin", AS_MODEL, SL_ERR_FORMAT, "vocabulary -2147483648"},
	/* A block whose attn_k rows are not whole heads was refused by the
	 * wiring, but the error got lost and the model loaded half-wired (ASan:
	 * the forward step wrote past its buffers). */
	{"fuzz-model/attn-k-rows-not-heads.gguf", AS_MODEL, SL_ERR_FORMAT, "not multiples of the head size 4"},
	/* Valid: the harness itself cast -1000.0 and NaN to an unsigned type
	 * (UBSan: outside the range of representable values). */
	{"fuzz-gguf/negative-array-number.gguf", AS_GGUF, SL_OK, NULL},
};

static sl_status load_as(int as, const uint8_t *d, size_t n, sl_error *err)
{
	sl_status st;
	if (as == AS_GGUF) {
		sl_gguf *g = NULL;
		st = sl_gguf_parse(d, n, "finding.gguf", &g, err);
		sl_gguf_close(g);
		return st;
	}
	if (as == AS_TOKENIZER_JSON) {
		sl_tokenizer *t = NULL;
		st = sl_tok_load_hf(fuzz_file(d, n, ".json"), &t, err);
		sl_tok_free(t);
		return st;
	}
	sl_model *m = NULL;
	st = sl_model_load(as == AS_MODEL ? fuzz_file(d, n, ".bin") : fuzz_safetensors_dir(d, n), NULL, &m, err);
	sl_model_free(m);
	return st;
}

static void test_findings(void)
{
	for (size_t i = 0; i < sizeof findings / sizeof findings[0]; i++) {
		char rel[256];
		snprintf(rel, sizeof rel, "tests/data/fuzz/%s", findings[i].file);
		char *d;
		size_t n;
		sl_error err = {0};
		REQUIRE(sl_read_file(test_srcpath(rel), 1 << 24, &d, &n, &err) == SL_OK, "%s", err.msg);
		err.msg[0] = 0;
		sl_status st = load_as(findings[i].as, (const uint8_t *)d, n, &err);
		CHECK(st == findings[i].want && (!findings[i].msg || strstr(err.msg, findings[i].msg)),
		      "%s: %s \"%s\", expected %s \"%s\"", findings[i].file, sl_status_name(st), err.msg,
		      sl_status_name(findings[i].want), findings[i].msg ? findings[i].msg : "");
		free(d);
	}
}

/* Runs every file of a folder in the source tree through a harness;
 * returns how many. */
static int replay(const char *rel, int (*harness)(const uint8_t *, size_t))
{
	DIR *dir = opendir(test_srcpath(rel));
	if (!dir)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		char path[512];
		snprintf(path, sizeof path, "%s/%s", rel, e->d_name);
		char *d;
		size_t len;
		sl_error err;
		if (sl_read_file(test_srcpath(path), 1 << 24, &d, &len, &err) != SL_OK) {
			CHECK(false, "%s", err.msg);
			continue;
		}
		harness((const uint8_t *)d, len);
		free(d);
		n++;
	}
	closedir(dir);
	return n;
}

static void test_replay(void)
{
	static const struct {
		const char *name;
		int (*run)(const uint8_t *, size_t);
	} harnesses[] = {
		{"fuzz-gguf", fuzz_gguf},           {"fuzz-model", fuzz_model},
		{"fuzz-safetensors", fuzz_safetensors}, {"fuzz-tokenizer-json", fuzz_tokenizer_json},
		{"fuzz-recipe", fuzz_recipe},       {"fuzz-session", fuzz_session},
		{"fuzz-tokenize", fuzz_tokenize},   {"fuzz-lesson", fuzz_lesson},
	};
	for (size_t i = 0; i < sizeof harnesses / sizeof harnesses[0]; i++) {
		/* fuzz-tokenize reads real vocabularies, absent without fixtures. */
		if (harnesses[i].run == fuzz_tokenize) {
			if (!test_fixture("tokenizers/ggml-vocab-gpt-2.gguf"))
				continue;
			fuzz_tokenize_init(NULL, NULL);
		}
		char rel[256];
		snprintf(rel, sizeof rel, "tests/data/fuzz/%s", harnesses[i].name);
		int found = replay(rel, harnesses[i].run);
		snprintf(rel, sizeof rel, "fuzz/corpus/%s", harnesses[i].name);
		int corpus = replay(rel, harnesses[i].run);
		CHECK(corpus > 0, "%s: no seed corpus in fuzz/corpus", harnesses[i].name);
		printf("%s: %d findings and %d corpus inputs replayed\n", harnesses[i].name, found, corpus);
	}
	for (int k = 0; k < n_toks; k++)
		sl_tok_free(toks[k]);
}

int main(void)
{
	test_findings();
	test_replay();
	fuzz_cleanup();
	return test_finish();
}
