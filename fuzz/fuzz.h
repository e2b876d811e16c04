/* Shared by the libFuzzer harnesses (and by the test that replays what they
 * found): parsers that read files get the input through temporary files, as
 * a user's files would reach them, and a model that loads runs one forward
 * step. */
#ifndef SL_FUZZ_H
#define SL_FUZZ_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/forward.h"
#include "core/model.h"

static inline void fuzz_write(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, size, 1, f) != 1)
		abort();
	fclose(f);
}

/* The per-process path of a scratch file or folder (static storage). */
static inline const char *fuzz_path(const char *suffix)
{
	static char path[256];
	snprintf(path, sizeof path, "/tmp/slimlab-fuzz-%ld%s", (long)getpid(), suffix);
	return path;
}

/* Writes the input to a per-process file with the given suffix; returns
 * its path. */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
	const char *path = fuzz_path(suffix);
	fuzz_write(path, data, size);
	return path;
}

/* Bytes of tensor data after a fuzzed safetensors header: room for a model
 * of a few thousand parameters, small enough to write on every run. */
#define FUZZ_ST_DATA 8192

/* The safetensors harness's input is three files in one, separated by NUL
 * bytes (which JSON text cannot hold): the safetensors header JSON,
 * config.json and tokenizer.json; missing parts are empty. They become a
 * per-process model folder, model.safetensors holding the header after its
 * 8-byte length and then FUZZ_ST_DATA bytes of small F32 values for
 * data_offsets to point into. Returns the folder (static storage). */
static inline const char *fuzz_safetensors_dir(const uint8_t *data, size_t size)
{
	static char dir[256], path[300];
	static uint8_t *file;
	static const char *const names[3] = {"model.safetensors", "config.json", "tokenizer.json"};
	const uint8_t *part[3], *end = data + size;
	size_t len[3];
	for (int i = 0; i < 3; i++) {
		const uint8_t *nul = data < end ? memchr(data, 0, (size_t)(end - data)) : NULL;
		part[i] = data;
		len[i] = (size_t)((nul ? nul : end) - data);
		data = nul ? nul + 1 : end;
	}
	snprintf(dir, sizeof dir, "%s", fuzz_path(".hf"));
	if (mkdir(dir, 0700) && errno != EEXIST)
		abort();
	free(file);
	uint64_t hlen = len[0];
	if (!(file = malloc(8 + hlen + FUZZ_ST_DATA)))
		abort();
	memcpy(file, &hlen, 8);
	if (hlen)
		memcpy(file + 8, part[0], hlen);
	for (size_t i = 0; i < FUZZ_ST_DATA / 4; i++) {
		float v = (float)((int)(i % 13) - 6) * 0.02f;
		memcpy(file + 8 + hlen + 4 * i, &v, 4);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (i == 0)
			fuzz_write(path, file, 8 + hlen + FUZZ_ST_DATA);
		else
			fuzz_write(path, part[i], len[i]);
	}
	return dir;
}

/* Removes what the harnesses wrote (for a test that replays inputs). */
static inline void fuzz_cleanup(void)
{
	static const char *const files[] = {".bin", ".json", ".session", ".hf/model.safetensors", ".hf/config.json",
	                                    ".hf/tokenizer.json", ".hf"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		remove(fuzz_path(files[i]));
}

/* Loads a model as a user's would be and, when it loads and is small
 * enough to be worth a fuzzer's time, runs one forward step of two tokens,
 * as a first prompt would. */
static inline void fuzz_load_and_step(const char *path)
{
	sl_model *m = NULL;
	sl_state *s;
	sl_error err;
	if (sl_model_load(path, NULL, &m, &err) != SL_OK)
		return;
	if (m->cfg.dim <= 4096 && m->cfg.n_layers <= 64 && sl_state_new(m, 8, &s, &err) == SL_OK) {
		int32_t tok[2] = {0, m->cfg.vocab_size - 1};
		sl_forward(s, tok, 2, NULL, 0, &err);
		sl_state_free(s);
	}
	sl_model_free(m);
}

#endif
