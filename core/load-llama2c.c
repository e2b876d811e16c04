/* llama2.c checkpoints: the legacy headerless format (seven int32 config
 * values, then F32 weights) and version 1 ("ak42" magic, 256-byte header).
 * Tensors point straight into the mapped file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders.h"
#include "tokenizer.h"

typedef struct {
	int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} l2c_header;

/* Looks for tokenizer.bin or tok<vocab>.bin beside the model. */
static bool find_tokenizer(const char *model_path, int vocab, char *buf, size_t n)
{
	char dir[4096], name[64];
	sl_path_dir(model_path, dir, sizeof dir);
	snprintf(name, sizeof name, "tok%d.bin", vocab);
	const char *cands[] = {"tokenizer.bin", name};
	for (int i = 0; i < 2; i++)
		if (sl_path_join(buf, n, dir, cands[i]) && sl_file_exists(buf))
			return true;
	return false;
}

sl_status sl_load_llama2c(sl_model *m, const char *path, const sl_load_opts *opts, sl_error *err)
{
	sl_mapping map;
	sl_status st = sl_map_file(path, &map, err);
	if (st)
		return st;
	if ((st = sl_model_add_mapping(m, map.addr, map.size, err))) {
		sl_unmap(&map);
		return st;
	}
	snprintf(m->format, sizeof m->format, "llama2c");
	const uint8_t *base = map.addr;
	size_t off = 0;
	l2c_header h;
	bool shared = true;
	uint32_t magic = 0;
	if (map.size >= 4)
		memcpy(&magic, base, 4);
	if (magic == 0x616b3432) { /* "ak42" */
		int32_t version;
		if (map.size < 256)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: truncated llama2.c header (%zu bytes, 256 needed)",
			                 path, map.size);
		memcpy(&version, base + 4, 4);
		if (version != 1)
			return sl_errorf(err, SL_ERR_UNSUPPORTED,
			                 "%s: llama2.c export version %d; slimlab reads the legacy format and version 1 (float32)",
			                 path, version);
		memcpy(&h, base + 8, sizeof h);
		shared = base[8 + sizeof h] != 0;
		off = 256;
	} else {
		if (map.size < sizeof h)
			return sl_errorf(err, SL_ERR_FORMAT,
			                 "%s: not a model file slimlab knows (not GGUF, safetensors or a llama2.c checkpoint: only %zu bytes)",
			                 path, map.size);
		memcpy(&h, base, sizeof h);
		off = sizeof h;
		/* A negative vocabulary size marks an unshared classifier; INT32_MIN
		 * has no positive size and stays negative, for the check below. */
		shared = h.vocab_size > 0;
		if (h.vocab_size < 0 && h.vocab_size != INT32_MIN)
			h.vocab_size = -h.vocab_size;
	}
	if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 || h.n_kv_heads <= 0 ||
	    h.vocab_size <= 0 || h.seq_len <= 0 || h.dim > 65536 || h.hidden_dim > 1 << 20 ||
	    h.n_layers > 1024 || h.n_heads > 1024 || h.n_kv_heads > h.n_heads || h.vocab_size > 1 << 22 ||
	    h.seq_len > 1 << 22 || h.dim % h.n_heads || h.n_heads % h.n_kv_heads)
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: not a model file slimlab knows (as a llama2.c checkpoint its header reads dim %d, hidden %d, %d layers, %d heads, %d kv heads, vocabulary %d, context %d)",
		                 path, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size,
		                 h.seq_len);
	sl_config *c = &m->cfg;
	c->arch = SL_ARCH_LLAMA;
	snprintf(c->arch_name, sizeof c->arch_name, "llama");
	c->dim = h.dim;
	c->hidden_dim = h.hidden_dim;
	c->n_layers = h.n_layers;
	c->n_heads = h.n_heads;
	c->n_kv_heads = h.n_kv_heads;
	c->vocab_size = h.vocab_size;
	c->max_seq_len = h.seq_len;
	c->head_dim = h.dim / h.n_heads;
	c->norm_eps = 1e-5f;
	c->rope_theta = 10000.0f;
	c->rope_style = SL_ROPE_NORM;

	const int64_t dim = h.dim, hid = h.hidden_dim, L = h.n_layers, hs = c->head_dim;
	const int64_t q_dim = h.n_heads * hs, kv_dim = h.n_kv_heads * hs;
	/* Each entry: per-layer name (or whole-model name), rows, cols; in file order. */
	struct {
		const char *name;
		int64_t rows, cols;
		bool per_layer;
	} order[] = {
		{"token_embd.weight", h.vocab_size, dim, false},
		{"attn_norm.weight", 1, dim, true},
		{"attn_q.weight", q_dim, dim, true},
		{"attn_k.weight", kv_dim, dim, true},
		{"attn_v.weight", kv_dim, dim, true},
		{"attn_output.weight", dim, q_dim, true},
		{"ffn_norm.weight", 1, dim, true},
		{"ffn_gate.weight", hid, dim, true},
		{"ffn_down.weight", dim, hid, true},
		{"ffn_up.weight", hid, dim, true},
		{"output_norm.weight", 1, dim, false},
	};
	for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
		int64_t reps = order[k].per_layer ? L : 1;
		size_t each = (size_t)(order[k].rows * order[k].cols) * sizeof(float);
		for (int64_t il = 0; il < reps; il++) {
			if (each > map.size - off)
				return sl_errorf(err, SL_ERR_FORMAT,
				                 "%s: truncated: %s%s needs %zu bytes at offset %zu, the file has %zu",
				                 path, order[k].per_layer ? "a block's " : "", order[k].name, each, off,
				                 map.size);
			char name[SL_NAME_MAX];
			if (order[k].per_layer)
				snprintf(name, sizeof name, "blk.%d.%s", (int)il, order[k].name);
			else
				snprintf(name, sizeof name, "%s", order[k].name);
			int64_t ne[2] = {order[k].cols, order[k].rows};
			if (!sl_model_add_tensor(m, name, SL_DT_F32, ne, order[k].rows > 1 ? 2 : 1,
			                         (void *)(base + off), false, err))
				return err ? err->status : SL_ERR_FORMAT;
			off += each;
		}
	}
	/* The precomputed RoPE tables (two seq_len x head/2 blocks) are not used. */
	size_t rope = 2 * (size_t)h.seq_len * (size_t)(hs / 2) * sizeof(float);
	if (rope > map.size - off)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: truncated before the classifier (offset %zu)", path, off);
	off += rope;
	if (!shared) {
		size_t each = (size_t)(h.vocab_size * dim) * sizeof(float);
		if (each > map.size - off)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: truncated: the classifier needs %zu bytes at offset %zu",
			                 path, each, off);
		int64_t ne[2] = {dim, h.vocab_size};
		if (!sl_model_add_tensor(m, "output.weight", SL_DT_F32, ne, 2, (void *)(base + off), false, err))
			return err ? err->status : SL_ERR_FORMAT;
	}
	if ((st = sl_model_finish(m, err)))
		return st;

	char tok_path[4096];
	if (opts->tokenizer_path)
		snprintf(tok_path, sizeof tok_path, "%s", opts->tokenizer_path);
	else if (!find_tokenizer(path, h.vocab_size, tok_path, sizeof tok_path))
		return sl_errorf(err, SL_ERR_IO,
		                 "%s: a llama2.c checkpoint needs its tokenizer: put tokenizer.bin or tok%d.bin beside it, or pass --tokenizer FILE",
		                 path, h.vocab_size);
	return sl_tok_load_llama2c(tok_path, h.vocab_size, &m->tok, err);
}
