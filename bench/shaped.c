/* bench/shaped: writes a random-weight Llama of a benchmark shape as GGUF
 * through slimlab's own writer, for bench/peer to hand to llama.cpp and to
 * slimlab bench alike. Weights are N(0, 0.02), norms 1; the vocabulary is a
 * stand-in SentencePiece one of 32000 pieces (<unk>, <s>, </s>, the 256
 * byte pieces, then placeholder words) so that llama.cpp loads the file.
 *
 *   bench/shaped 110m|374m f32|f16 OUT.gguf
 *
 * 110m: dim 768, 12 blocks, 12 heads, MLP 2048 (stories110M's shape);
 * 374m: dim 1024, 24 blocks, 16 heads, MLP 2816. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/export.h"
#include "core/model.h"
#include "core/tokenizer.h"
#include "core/vocab.h"

#define VOCAB 32000

static sl_status stand_in_vocab(sl_tokenizer **out, sl_error *err)
{
	sl_vocab v = {.model = "llama", .n = VOCAB, .bos = 1, .eos = 2, .unk = 0, .add_bos = true};
	v.pieces = calloc(VOCAB, sizeof *v.pieces);
	v.scores = calloc(VOCAB, sizeof *v.scores);
	v.types = calloc(VOCAB, sizeof *v.types);
	sl_status st = SL_OK;
	for (int i = 0; v.pieces && v.scores && v.types && i < VOCAB; i++) {
		char piece[32];
		if (i < 3)
			snprintf(piece, sizeof piece, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
		else if (i < 3 + 256)
			snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
		else
			snprintf(piece, sizeof piece, "\xe2\x96\x81w%d", i);
		if (!(v.pieces[i] = strdup(piece)))
			break;
		v.types[i] = i == 0 ? SL_TOKEN_UNKNOWN : i < 3 ? SL_TOKEN_CONTROL : i < 3 + 256 ? SL_TOKEN_BYTE : SL_TOKEN_NORMAL;
		v.scores[i] = i < 3 + 256 ? 0.0f : -(float)i;
	}
	if (!v.pieces || !v.scores || !v.types || !v.pieces[VOCAB - 1])
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for the vocabulary");
	else
		st = sl_vocab_to_tokenizer(&v, out, err);
	sl_vocab_free(&v);
	return st;
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[1], "110m") && strcmp(argv[1], "374m")) ||
	    (strcmp(argv[2], "f32") && strcmp(argv[2], "f16"))) {
		fprintf(stderr, "usage: bench/shaped 110m|374m f32|f16 OUT.gguf\n");
		return 2;
	}
	bool big = !strcmp(argv[1], "374m");
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = big ? 1024 : 768, .hidden_dim = big ? 2816 : 2048,
	               .n_layers = big ? 24 : 12, .n_heads = big ? 16 : 12, .n_kv_heads = big ? 16 : 12,
	               .vocab_size = VOCAB, .max_seq_len = 2048, .rope_style = SL_ROPE_NORM};
	sl_model *m = NULL;
	sl_error err = {0};
	sl_status st = sl_model_init_random(&c, false, 0.02f, 42, &m, &err);
	if (!st)
		st = stand_in_vocab(&m->tok, &err);
	if (!st)
		st = sl_model_save_gguf(m, big ? "374M-shaped" : "110M-shaped", strcmp(argv[2], "f16") ? SL_DT_F32 : SL_DT_F16,
		                        argv[3], &err);
	sl_model_free(m);
	if (st) {
		fprintf(stderr, "bench/shaped: %s\n", err.msg);
		return 1;
	}
	return 0;
}
