/* Hugging Face checkpoints: hyperparameters from config.json, weights from
 * one .safetensors file or the shards model.safetensors.index.json lists,
 * vocabulary from tokenizer.json. Tensors take their GGUF names and point
 * into the mapped files; only GPT-2's Conv1D weights (stored [in, out]) and
 * data a file leaves misaligned for its type are copied. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders.h"
#include "tokenizer.h"

#define CONFIG_MAX ((size_t)16 << 20)
#define INDEX_MAX ((size_t)64 << 20)
/* The reference safetensors implementation refuses larger headers too. */
#define HEADER_MAX ((uint64_t)100 << 20)

typedef struct {
	const char *hf, *gguf;
	bool conv1d; /* a GPT-2 Conv1D weight, stored [in, out] */
} name_map;

/* How one family names its tensors and its settings. */
typedef struct {
	sl_arch arch;
	const char *strip;       /* optional prefix on every tensor name */
	const char *blk;         /* prefix of per-block names, before the block number */
	const name_map *top, *sub;
	size_t n_top, n_sub;
	const char *const *skip; /* per-block buffers that are not weights */
	size_t n_skip;
	const char *dim, *n_layers, *n_heads, *hidden, *ctx, *eps; /* config.json keys */
	const char *act_key;
	const char *act_ok[2];   /* activations the forward computes exactly */
	bool tied;               /* tie_word_embeddings when config.json is silent */
} family;

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const name_map llama_top[] = {
	{"model.embed_tokens", "token_embd", false},
	{"model.norm", "output_norm", false},
	{"lm_head", "output", false},
};
static const name_map llama_sub[] = {
	{"input_layernorm", "attn_norm", false},
	{"self_attn.q_proj", "attn_q", false},
	{"self_attn.k_proj", "attn_k", false},
	{"self_attn.v_proj", "attn_v", false},
	{"self_attn.o_proj", "attn_output", false},
	{"post_attention_layernorm", "ffn_norm", false},
	{"mlp.gate_proj", "ffn_gate", false},
	{"mlp.up_proj", "ffn_up", false},
	{"mlp.down_proj", "ffn_down", false},
};
static const char *const llama_skip[] = {"self_attn.rotary_emb.inv_freq"};

static const name_map gpt2_top[] = {
	{"wte", "token_embd", false},
	{"wpe", "position_embd", false},
	{"ln_f", "output_norm", false},
	{"lm_head", "output", false},
};
static const name_map gpt2_sub[] = {
	{"ln_1", "attn_norm", false},
	{"attn.c_attn", "attn_qkv", true},
	{"attn.c_proj", "attn_output", true},
	{"ln_2", "ffn_norm", false},
	{"mlp.c_fc", "ffn_up", true},
	{"mlp.c_proj", "ffn_down", true},
};
static const char *const gpt2_skip[] = {"attn.bias", "attn.masked_bias"};

static const family llama = {
	SL_ARCH_LLAMA, NULL, "model.layers.", llama_top, llama_sub, N(llama_top), N(llama_sub),
	llama_skip, N(llama_skip),
	"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
	"max_position_embeddings", "rms_norm_eps",
	"hidden_act", {"silu", NULL}, false,
};
static const family gpt2 = {
	SL_ARCH_GPT2, "transformer.", "h.", gpt2_top, gpt2_sub, N(gpt2_top), N(gpt2_sub),
	gpt2_skip, N(gpt2_skip),
	"n_embd", "n_layer", "n_head", "n_inner", "n_positions", "layer_norm_epsilon",
	"activation_function", {"gelu_new", "gelu_pytorch_tanh"}, true,
};

static const struct {
	const char *hf, *name;
	const family *fam;
} archs[] = {
	{"LlamaForCausalLM", "llama", &llama},
	{"MistralForCausalLM", "mistral", &llama},
	{"Qwen2ForCausalLM", "qwen2", &llama},
	{"GPT2LMHeadModel", "gpt2", &gpt2},
};

typedef enum { NAME_KEEP, NAME_SKIP, NAME_UNKNOWN } name_fate;

/* Writes the GGUF name of HF tensor hf into out. */
static name_fate map_name(const family *f, int n_layers, const char *hf, char *out, size_t n,
                          bool *conv1d)
{
	*conv1d = false;
	if (f->strip && !strncmp(hf, f->strip, strlen(f->strip)))
		hf += strlen(f->strip);
	const name_map *table = f->top;
	size_t n_table = f->n_top;
	long layer = -1;
	size_t bl = strlen(f->blk);
	if (!strncmp(hf, f->blk, bl)) {
		char *end;
		if (hf[bl] < '0' || hf[bl] > '9')
			return NAME_UNKNOWN;
		layer = strtol(hf + bl, &end, 10);
		if (*end != '.' || layer >= n_layers)
			return NAME_UNKNOWN;
		hf = end + 1;
		for (size_t i = 0; i < f->n_skip; i++)
			if (!strcmp(hf, f->skip[i]))
				return NAME_SKIP;
		table = f->sub;
		n_table = f->n_sub;
	}
	const char *suffix = strrchr(hf, '.');
	if (!suffix || (strcmp(suffix, ".weight") && strcmp(suffix, ".bias")))
		return NAME_UNKNOWN;
	size_t len = (size_t)(suffix - hf);
	for (size_t i = 0; i < n_table; i++) {
		if (strlen(table[i].hf) != len || strncmp(hf, table[i].hf, len))
			continue;
		if (layer >= 0)
			snprintf(out, n, "blk.%ld.%s%s", layer, table[i].gguf, suffix);
		else
			snprintf(out, n, "%s%s", table[i].gguf, suffix);
		*conv1d = table[i].conv1d && !strcmp(suffix, ".weight");
		return NAME_KEEP;
	}
	return NAME_UNKNOWN;
}

/* A JSON number that is an exact non-negative integer no larger than max. */
static bool json_uint(const cJSON *v, double max, uint64_t *out)
{
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > max ||
	    v->valuedouble != (double)(uint64_t)v->valuedouble)
		return false;
	*out = (uint64_t)v->valuedouble;
	return true;
}

/* Reads config key into *out; an absent or null key leaves it unless required. */
static sl_status cfg_int(const cJSON *cfg, const char *path, const char *key, bool required, int *out,
                         sl_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
	uint64_t u;
	if (!v || cJSON_IsNull(v))
		return required ? sl_errorf(err, SL_ERR_FORMAT, "%s: \"%s\" is missing", path, key) : SL_OK;
	if (!json_uint(v, INT32_MAX, &u))
		return sl_errorf(err, SL_ERR_FORMAT, "%s: \"%s\" is not a non-negative integer", path, key);
	*out = (int)u;
	return SL_OK;
}

static sl_status cfg_float(const cJSON *cfg, const char *path, const char *key, float *out, sl_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
	if (!v || cJSON_IsNull(v))
		return SL_OK;
	if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || v->valuedouble > 1e30)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: \"%s\" is not a positive number", path, key);
	*out = (float)v->valuedouble;
	return SL_OK;
}

/* Fills m->cfg from config.json; *fam receives the naming family. */
static sl_status read_config(sl_model *m, const char *path, const cJSON *cfg, const family **fam,
                             bool *tied, sl_error *err)
{
	sl_config *c = &m->cfg;
	if (!cJSON_IsObject(cfg))
		return sl_errorf(err, SL_ERR_FORMAT, "%s: not a JSON object", path);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
	const cJSON *a = cJSON_IsArray(list) ? cJSON_GetArrayItem(list, 0) : NULL;
	if (!cJSON_IsString(a))
		return sl_errorf(err, SL_ERR_FORMAT, "%s: \"architectures\" is missing; it names the model class",
		                 path);
	const family *f = NULL;
	for (size_t i = 0; i < N(archs) && !f; i++)
		if (!strcmp(a->valuestring, archs[i].hf)) {
			f = archs[i].fam;
			snprintf(c->arch_name, sizeof c->arch_name, "%s", archs[i].name);
		}
	if (!f)
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "%s: architecture '%.200s' is not supported (slimlab reads LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and GPT2LMHeadModel)",
		                 path, a->valuestring);
	*fam = f;
	c->arch = f->arch;
	c->rope_style = f->arch == SL_ARCH_GPT2 ? SL_ROPE_NONE : SL_ROPE_NEOX;

	const cJSON *act = cJSON_GetObjectItemCaseSensitive(cfg, f->act_key);
	if (cJSON_IsString(act) && strcmp(act->valuestring, f->act_ok[0]) &&
	    !(f->act_ok[1] && !strcmp(act->valuestring, f->act_ok[1])))
		return sl_errorf(err, SL_ERR_UNSUPPORTED, "%s: %s '%.100s' is not supported (slimlab computes %s)",
		                 path, f->act_key, act->valuestring, f->act_ok[0]);
	const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(cfg, "rope_scaling");
	if (scaling && !cJSON_IsNull(scaling)) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(scaling, "rope_type");
		if (!t)
			t = cJSON_GetObjectItemCaseSensitive(scaling, "type");
		if (!cJSON_IsString(t) || strcmp(t->valuestring, "default"))
			return sl_errorf(err, SL_ERR_UNSUPPORTED,
			                 "%s: rope_scaling of type '%.100s' is not supported (slimlab applies plain RoPE)",
			                 path, cJSON_IsString(t) ? t->valuestring : "?");
	}

	sl_status st;
	if ((st = cfg_int(cfg, path, f->dim, true, &c->dim, err)) ||
	    (st = cfg_int(cfg, path, f->n_layers, true, &c->n_layers, err)) ||
	    (st = cfg_int(cfg, path, f->n_heads, true, &c->n_heads, err)) ||
	    (st = cfg_int(cfg, path, "vocab_size", true, &c->vocab_size, err)) ||
	    (st = cfg_int(cfg, path, f->hidden, false, &c->hidden_dim, err)) ||
	    (st = cfg_int(cfg, path, f->ctx, false, &c->max_seq_len, err)) ||
	    (st = cfg_int(cfg, path, "num_key_value_heads", false, &c->n_kv_heads, err)) ||
	    (st = cfg_int(cfg, path, "head_dim", false, &c->head_dim, err)) ||
	    (st = cfg_float(cfg, path, f->eps, &c->norm_eps, err)) ||
	    (st = cfg_float(cfg, path, "rope_theta", &c->rope_theta, err)))
		return st;
	/* The forward attends to the whole context; capped at the window it
	 * computes exactly what a sliding-window model computes. */
	int window = 0;
	const cJSON *use = cJSON_GetObjectItemCaseSensitive(cfg, "use_sliding_window");
	if (!cJSON_IsFalse(use) && (st = cfg_int(cfg, path, "sliding_window", false, &window, err)))
		return st;
	if (window > 0 && (c->max_seq_len <= 0 || window < c->max_seq_len))
		c->max_seq_len = window;
	const cJSON *tie = cJSON_GetObjectItemCaseSensitive(cfg, "tie_word_embeddings");
	*tied = cJSON_IsBool(tie) ? cJSON_IsTrue(tie) : f->tied;
	return SL_OK;
}

/* Copies rows x cols elements of esz bytes into a new buffer, transposed
 * when asked. */
static void *copy_elems(const uint8_t *src, size_t rows, size_t cols, size_t esz, bool transpose)
{
	uint8_t *dst = sl_malloc_array(rows * cols, esz);
	if (!dst)
		return NULL;
	if (!transpose) {
		memcpy(dst, src, rows * cols * esz);
		return dst;
	}
	for (size_t r = 0; r < rows; r++)
		for (size_t k = 0; k < cols; k++)
			memcpy(dst + (k * rows + r) * esz, src + (r * cols + k) * esz, esz);
	return dst;
}

typedef struct {
	sl_model *m;
	const family *fam;
	bool tied;            /* config.json, or an alias of embedding and head, ties them */
	const char *path;     /* the shard being read */
	const uint8_t *data;  /* its tensor data, after the header */
	size_t data_len;
	size_t data_off;      /* offset of data in the file */
} shard;

/* Adds the tensor header entry e describes, under HF name hf (e's own name,
 * or an alias of it). */
static sl_status add_entry(shard *s, const char *hf, const cJSON *e, sl_error *err)
{
	const char *path = s->path;
	char name[SL_NAME_MAX];
	bool conv1d;
	switch (map_name(s->fam, s->m->cfg.n_layers, hf, name, sizeof name, &conv1d)) {
	case NAME_SKIP:
		return SL_OK;
	case NAME_UNKNOWN:
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: tensor '%.200s' is not part of a %d-block %s model as slimlab knows it",
		                 path, hf, s->m->cfg.n_layers, s->m->cfg.arch_name);
	case NAME_KEEP:
		break;
	}
	const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
	const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
	const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
	if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
	    cJSON_GetArraySize(offs) != 2)
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: tensor '%.200s': its header entry needs \"dtype\", \"shape\" and \"data_offsets\": [begin, end]",
		                 path, hf);
	int type;
	size_t esz;
	if (!strcmp(dt->valuestring, "F32"))
		type = SL_DT_F32, esz = 4;
	else if (!strcmp(dt->valuestring, "F16"))
		type = SL_DT_F16, esz = 2;
	else if (!strcmp(dt->valuestring, "BF16"))
		type = SL_DT_BF16, esz = 2;
	else
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "%s: tensor '%.200s' has dtype '%.40s'; slimlab reads F32, F16 and BF16 safetensors",
		                 path, hf, dt->valuestring);
	int n_dims = cJSON_GetArraySize(shape);
	if (n_dims < 1 || n_dims > SL_MAX_DIMS)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: tensor '%.200s' has %d dimensions; slimlab reads 1 to %d",
		                 path, hf, n_dims, SL_MAX_DIMS);
	int64_t ne[SL_MAX_DIMS];
	for (int i = 0; i < n_dims; i++) {
		uint64_t v;
		if (!json_uint(cJSON_GetArrayItem(shape, i), (double)((uint64_t)1 << 40), &v) || !v)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: tensor '%.200s': shape entry %d is not a positive integer",
			                 path, hf, i);
		ne[n_dims - 1 - i] = (int64_t)v; /* safetensors lists the outermost first */
	}
	uint64_t begin, end;
	if (!json_uint(cJSON_GetArrayItem(offs, 0), 9007199254740992.0, &begin) ||
	    !json_uint(cJSON_GetArrayItem(offs, 1), 9007199254740992.0, &end) || begin > end ||
	    end > s->data_len)
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: tensor '%.200s': data_offsets do not lie within the %zu data bytes that start at offset %zu",
		                 path, hf, s->data_len, s->data_off);
	size_t nb = sl_tensor_bytes_for(type, ne, n_dims);
	if (!nb)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: tensor '%.200s': its shape is impossibly large", path, hf);
	if (nb != end - begin)
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: tensor '%.200s': its shape needs %zu bytes of %s but data_offsets [%llu, %llu] hold %llu",
		                 path, hf, nb, dt->valuestring, (unsigned long long)begin, (unsigned long long)end,
		                 (unsigned long long)(end - begin));
	const uint8_t *p = s->data + begin;
	void *d = (void *)p;
	bool transpose = conv1d && n_dims == 2;
	if (transpose || (uintptr_t)p % esz) {
		size_t rows = nb / esz / (size_t)ne[0];
		if (!(d = copy_elems(p, rows, (size_t)ne[0], esz, transpose)))
			return sl_errorf(err, SL_ERR_NOMEM, "%s: tensor '%.200s': out of memory", path, hf);
		if (transpose) {
			int64_t t = ne[0];
			ne[0] = ne[1];
			ne[1] = t;
		}
	}
	if (!sl_model_add_tensor(s->m, name, type, ne, n_dims, d, d != p, err)) {
		if (d != p)
			free(d);
		return err ? err->status : SL_ERR_FORMAT;
	}
	return SL_OK;
}

static sl_status load_shard(shard *s, sl_error *err)
{
	const char *path = s->path;
	sl_mapping map;
	sl_status st = sl_map_file(path, &map, err);
	if (st)
		return st;
	if ((st = sl_model_add_mapping(s->m, map.addr, map.size, err))) {
		sl_unmap(&map);
		return st;
	}
	uint64_t hlen;
	if (map.size < 8)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: truncated: %zu bytes cannot hold a safetensors header",
		                 path, map.size);
	memcpy(&hlen, map.addr, 8); /* little-endian, as configure requires of the host */
	if (hlen > map.size - 8)
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: the header length at offset 0 says %llu bytes, but only %zu follow: the file is truncated or not safetensors",
		                 path, (unsigned long long)hlen, map.size - 8);
	if (hlen > HEADER_MAX)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: a %llu-byte header is larger than safetensors allows",
		                 path, (unsigned long long)hlen);
	const char *text = (const char *)map.addr + 8, *stop = NULL;
	cJSON *hdr = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &stop, false);
	if (!cJSON_IsObject(hdr)) {
		cJSON_Delete(hdr);
		return sl_errorf(err, SL_ERR_FORMAT, "%s: the JSON header is malformed near offset %zu", path,
		                 8 + (size_t)(stop && stop >= text ? stop - text : 0));
	}
	s->data = (const uint8_t *)map.addr + 8 + hlen;
	s->data_off = 8 + (size_t)hlen;
	s->data_len = map.size - s->data_off;
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(hdr, "__metadata__"), *e;
	cJSON_ArrayForEach(e, hdr)
	{
		if (e != meta && (st = add_entry(s, e->string, e, err)))
			break;
	}
	/* A tensor stored under several names is written once; __metadata__
	 * maps each other name to the stored one (as transformers saves tied
	 * embeddings). Such an alias between embedding and head ties them. */
	const cJSON *aliases = cJSON_IsObject(meta) ? meta : NULL;
	cJSON_ArrayForEach(e, aliases)
	{
		const cJSON *to = cJSON_IsString(e) ? cJSON_GetObjectItemCaseSensitive(hdr, e->valuestring) : NULL;
		if (st || !to || to == meta || cJSON_GetObjectItemCaseSensitive(hdr, e->string))
			continue;
		int before = s->m->n_tensors;
		if ((st = add_entry(s, e->string, to, err)) == SL_OK && s->m->n_tensors > before) {
			const char *name = s->m->tensors[before]->name;
			s->tied |= !strcmp(name, "token_embd.weight") || !strcmp(name, "output.weight");
		}
	}
	cJSON_Delete(hdr);
	return st;
}

/* The HF name of top-level tensor gguf, for messages. */
static const char *hf_top(const family *f, const char *gguf)
{
	for (size_t i = 0; i < f->n_top; i++)
		if (!strcmp(f->top[i].gguf, gguf))
			return f->top[i].hf;
	return gguf;
}

/* A tied checkpoint stores its one matrix as the embedding, as the head, or
 * as both; when both, the embedding is what the model uses, as transformers
 * ties them. An untied one must store the embedding. */
static sl_status tie_head(const shard *s, sl_error *err)
{
	sl_model *m = s->m;
	sl_tensor *head = sl_model_tensor(m, "output.weight");
	bool has_embd = sl_model_tensor(m, "token_embd.weight") != NULL;
	if (!head || (!s->tied && has_embd))
		return SL_OK;
	if (!s->tied)
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: the checkpoint stores the head (%s.weight) but not the embedding (%s.weight); if they are tied, config.json should say \"tie_word_embeddings\": true",
		                 m->path, hf_top(s->fam, "output"), hf_top(s->fam, "token_embd"));
	if (!has_embd) {
		snprintf(head->name, sizeof head->name, "token_embd.weight");
		return SL_OK;
	}
	sl_tensor_release(head);
	free(head);
	int j = 0;
	for (int i = 0; i < m->n_tensors; i++)
		if (m->tensors[i] != head)
			m->tensors[j++] = m->tensors[i];
	m->n_tensors = j;
	return SL_OK;
}

/* Loads every shard the index's weight_map names, each once. */
static sl_status load_index(shard *s, const char *dir, const char *index, sl_error *err)
{
	char *text, file[4096];
	size_t len;
	sl_status st = sl_read_file(index, INDEX_MAX, &text, &len, err);
	if (st)
		return st;
	cJSON *root = cJSON_ParseWithLength(text, len);
	free(text);
	const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	if (!cJSON_IsObject(map)) {
		cJSON_Delete(root);
		return sl_errorf(err, SL_ERR_FORMAT, "%s: not a safetensors index (malformed, or no \"weight_map\" object)",
		                 index);
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, map)
	{
		if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/')) {
			st = sl_errorf(err, SL_ERR_FORMAT,
			               "%s: weight_map entry '%.200s' names '%.200s', not a file in the model's folder",
			               index, e->string, cJSON_IsString(e) ? e->valuestring : "?");
			break;
		}
		const cJSON *prev = map->child;
		while (prev != e && strcmp(prev->valuestring, e->valuestring))
			prev = prev->next;
		if (prev != e)
			continue;
		if (!sl_path_join(file, sizeof file, dir, e->valuestring)) {
			st = sl_errorf(err, SL_ERR_ARG, "%s: the path of shard '%.200s' is too long", index,
			               e->valuestring);
			break;
		}
		s->path = file;
		if ((st = load_shard(s, err)))
			break;
	}
	cJSON_Delete(root);
	return st;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

sl_status sl_load_safetensors(sl_model *m, const char *path, const sl_load_opts *opts, sl_error *err)
{
	char dir[4096], weights[4096], file[4096];
	bool sharded;
	snprintf(m->format, sizeof m->format, "safetensors");
	if (sl_is_dir(path)) {
		snprintf(dir, sizeof dir, "%s", path);
		if (!sl_path_join(weights, sizeof weights, dir, "model.safetensors"))
			return sl_errorf(err, SL_ERR_ARG, "%s: path too long", path);
		sharded = !sl_file_exists(weights);
		if (sharded && (!sl_path_join(weights, sizeof weights, dir, "model.safetensors.index.json") ||
		                !sl_file_exists(weights)))
			return sl_errorf(err, SL_ERR_IO,
			                 "%s: the folder holds neither model.safetensors nor model.safetensors.index.json",
			                 path);
	} else {
		sl_path_dir(path, dir, sizeof dir);
		snprintf(weights, sizeof weights, "%s", path);
		sharded = ends_with(path, ".json");
	}

	if (!sl_path_join(file, sizeof file, dir, "config.json") || !sl_file_exists(file))
		return sl_errorf(err, SL_ERR_IO,
		                 "%s: config.json is missing; a Hugging Face model needs it beside its weights in %s",
		                 path, dir);
	char *text;
	size_t len;
	sl_status st = sl_read_file(file, CONFIG_MAX, &text, &len, err);
	if (st)
		return st;
	cJSON *cfg = cJSON_ParseWithLength(text, len);
	free(text);
	if (!cfg)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: malformed JSON", file);
	shard s = {.m = m};
	st = read_config(m, file, cfg, &s.fam, &s.tied, err);
	cJSON_Delete(cfg);
	if (st)
		return st;

	if (sharded) {
		st = load_index(&s, dir, weights, err);
	} else {
		s.path = weights;
		st = load_shard(&s, err);
	}
	if (st || (st = tie_head(&s, err)) || (st = sl_model_finish(m, err)))
		return st;

	if (opts->tokenizer_path)
		return sl_tok_load_file(opts->tokenizer_path, &m->tok, err);
	if (!sl_path_join(file, sizeof file, dir, "tokenizer.json") || !sl_file_exists(file))
		return sl_errorf(err, SL_ERR_IO, "%s: tokenizer.json is missing from %s", path, dir);
	return sl_tok_load_hf(file, &m->tok, err);
}
