/* Pruning patterns: which weights a sparsity removes. Element-wise
 * (unstructured: any weights of a row; N:M: N kept of every M in a row,
 * which sparse tensor cores run), or whole structures that really shrink
 * the model: attention heads, MLP channels, blocks (Ma et al., LLM-Pruner
 * 2023; Men et al., ShortGPT 2024). Structures go before anything else
 * is done to the model, least important first, by calibration. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"

static bool is_unstructured(const char *name, int *keep_n, int *group_m)
{
	*keep_n = *group_m = 0;
	return !strcmp(name, "unstructured");
}

static const sl_card card_unstructured = {
	.title = "Unstructured sparsity",
	.what = "Zeros anywhere in the matrix, as the pruning criterion ranks them: the most accurate pattern for a "
	        "given sparsity.",
	.formula = "sparsity = zeros / weights of the module; the mask is whatever the criterion keeps.",
	.watch = "Evaluate and Heatmap: KL at a sparsity; Model: the bytes shown stay those of the dense format.",
	.pitfall = "Zeros in random places save no time and no memory without sparse kernels: a dense matrix with zeros "
	           "costs what it did.",
	.paper = "LeCun, Denker and Solla 1990, Optimal Brain Damage (NeurIPS).",
};

const sl_method sl_method_unstructured = {
	.card = &card_unstructured,
	.name = "unstructured",
	.kind = SL_METHOD_PATTERN,
	.summary = "any weights",
	.match = is_unstructured,
};

static const sl_card card_nm = {
	.title = "N:M semi-structured sparsity",
	.what = "In every group of M consecutive weights of a row, only N are kept (2:4 keeps half): a pattern sparse "
	        "tensor cores run at up to twice the speed.",
	.formula = "for each group g of M columns: keep the N highest-scoring |W_ig| (by the criterion), zero the "
	           "others; sparsity 1 - N/M.",
	.watch = "Heatmap: sparse-2:4 against 50% unstructured, the price of the structure; the pruning criterion "
	         "(the Recipe's w menu) matters more here.",
	.pitfall = "The constraint binds in every group: a group of four large weights still loses two. 2:4 alone is "
	           "rarely tolerable for small models without healing.",
	.paper = "Mishra et al. 2021, Accelerating Sparse Deep Neural Networks (NVIDIA Ampere's 2:4).",
};

const sl_method sl_method_nm = {
	.card = &card_nm,
	.name = "N:M",
	.kind = SL_METHOD_PATTERN,
	.summary = "N:M semi-structured: N kept of every M",
	.match = sl_pattern_nm,
	.choices = (const char *const[]){"2:4", "4:8", NULL},
};

/* --- structures ------------------------------------------------------------ */

static bool named(const char *want, const char *name, int *keep_n, int *group_m)
{
	*keep_n = *group_m = 0;
	return !strcmp(name, want);
}

static const sl_act_stats *tap_stats(const sl_calib *c, int il, sl_tap tap)
{
	sl_module probe = {.layer = il, .input = tap};
	return sl_calib_stats(c, &probe);
}

static bool heads_match(const char *name, int *keep_n, int *group_m)
{
	return named("heads", name, keep_n, group_m);
}

static bool heads_units(const sl_model *m, const sl_module *mod, int *units, const char **what)
{
	if (mod->layer < 0 || mod->kind > SL_MOD_ATTN_OUT)
		return false;
	*units = m->layers[mod->layer].n_heads;
	*what = "heads";
	return true;
}

static sl_status heads_shrink(sl_shrink_job *j, sl_error *err)
{
	for (int il = 0; il < (*j->m)->cfg.n_layers; il++) {
		int removed = 0;
		if (j->sparsity[il] <= 0)
			continue;
		sl_status st = sl_prune_heads(*j->m, il, tap_stats(j->calib, il, SL_TAP_ATTN_OUT_IN), j->sparsity[il],
		                              &removed, err);
		if (st)
			return st;
		j->changed |= removed > 0;
	}
	return SL_OK;
}

static const sl_card card_heads = {
	.title = "Attention heads removed",
	.what = "Removes whole query heads (or whole key/value groups) whose output carries the least energy: the "
	        "attention projections shrink, the model really gets smaller and faster.",
	.formula = "importance_h = sum over the head's channels c of E[x_c^2] * ||W_o[:, c]||^2 (x: attn_output's "
	           "input); the least important fraction goes.",
	.watch = "Model: the heads left in each block; Evaluate: KL against bytes saved, compared with element-wise "
	         "pruning of the same share.",
	.pitfall = "With grouped-query attention, removing a key/value head removes its whole group of query heads.",
	.paper = "Michel, Levy and Neubig 2019, Are Sixteen Heads Really Better than One? (NeurIPS).",
};

const sl_method sl_method_heads = {
	.card = &card_heads,
	.name = "heads",
	.kind = SL_METHOD_PATTERN,
	.needs = SL_NEEDS_STATS,
	.summary = "whole attention heads",
	.match = heads_match,
	.units = heads_units,
	.shrink = heads_shrink,
};

static bool channels_match(const char *name, int *keep_n, int *group_m)
{
	return named("channels", name, keep_n, group_m);
}

static bool channels_units(const sl_model *m, const sl_module *mod, int *units, const char **what)
{
	if (mod->layer < 0 || mod->kind < SL_MOD_FFN_GATE || mod->kind > SL_MOD_FFN_DOWN)
		return false;
	*units = m->layers[mod->layer].hidden_dim;
	*what = "MLP channels";
	return true;
}

static sl_status channels_shrink(sl_shrink_job *j, sl_error *err)
{
	for (int il = 0; il < (*j->m)->cfg.n_layers; il++) {
		int removed = 0;
		if (j->sparsity[il] <= 0)
			continue;
		sl_status st = sl_prune_channels(*j->m, il, tap_stats(j->calib, il, SL_TAP_FFN_DOWN_IN), j->sparsity[il],
		                                 &removed, err);
		if (st)
			return st;
		j->changed |= removed > 0;
	}
	return SL_OK;
}

static const sl_card card_channels = {
	.title = "MLP channels removed",
	.what = "Removes whole intermediate channels of the MLP (a row of gate and up, a column of down) with the "
	        "least output energy: a narrower feed-forward layer.",
	.formula = "energy_c = E[x_c^2] * ||W_down[:, c]||^2, x the input of ffn_down over the calibration text; the "
	           "lowest fraction goes.",
	.watch = "Model: the MLP width left in each block and its bytes; Evaluate: KL at the same bytes as "
	         "element-wise sparsity.",
	.pitfall = "Structure costs accuracy: the same share removed as channels costs far more KL than unstructured "
	           "zeros; heal (KD) after it.",
	.paper = "Ma, Fang and Wang 2023, LLM-Pruner: On the Structural Pruning of Large Language Models (NeurIPS).",
};

const sl_method sl_method_channels = {
	.card = &card_channels,
	.name = "channels",
	.kind = SL_METHOD_PATTERN,
	.needs = SL_NEEDS_STATS,
	.summary = "whole MLP channels",
	.match = channels_match,
	.units = channels_units,
	.shrink = channels_shrink,
};

static bool block_match(const char *name, int *keep_n, int *group_m)
{
	return named("block", name, keep_n, group_m);
}

static bool block_units(const sl_model *m, const sl_module *mod, int *units, const char **what)
{
	if (mod->layer < 0)
		return false;
	*units = m->cfg.n_layers;
	*what = "blocks";
	return true;
}

/* The fraction of all blocks (the largest any rule asks), the least
 * influential of those the rules name, never the last one standing. */
static sl_status block_shrink(sl_shrink_job *j, sl_error *err)
{
	const int L = (*j->m)->cfg.n_layers;
	bool *drop = sl_calloc((size_t)L, sizeof *drop);
	sl_scored *s = sl_malloc_array((size_t)L, sizeof *s);
	sl_status st = SL_OK;
	if (!drop || !s) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		goto done;
	}
	double frac = 0;
	int n_cand = 0;
	for (int il = 0; il < L; il++) {
		j->influence[il] = sl_calib_block_influence(j->calib, il);
		if (j->sparsity[il] > 0) {
			s[n_cand++] = (sl_scored){j->influence[il], il};
			frac = fmax(frac, j->sparsity[il]);
		}
	}
	int k = (int)lround(frac * L);
	k = k < n_cand ? k : n_cand;
	k = k < L - 1 ? k : L - 1;
	sl_sort_scored(s, (size_t)n_cand);
	for (int i = 0; i < k; i++)
		drop[s[i].idx] = true;
	if (k > 0) {
		if ((st = sl_prune_blocks(j->m, drop, err)))
			goto done;
		j->changed = true;
		for (int il = 0, n = 0; il < L; il++)
			if (!drop[il])
				j->old_layer[n++] = j->old_layer[il];
	}
done:
	free(drop);
	free(s);
	return st;
}

static const sl_card card_blocks = {
	.title = "Whole blocks removed",
	.what = "Drops entire transformer blocks whose output differs least from their input, as measured on "
	        "calibration text: the model gets shallower.",
	.formula = "influence = 1 - cos(h_in, h_out), averaged over the calibration tokens; the blocks of least "
	           "influence are removed.",
	.watch = "Model: the blocks left; Speculate: half the blocks as a draft is the same idea kept for drafting; "
	         "Evaluate: KL per block removed.",
	.pitfall = "First and last blocks are rarely removable; removing several at once is not the sum of removing each "
	           "alone.",
	.paper = "Men et al. 2024, ShortGPT: Layers in Large Language Models are More Redundant Than You Expect.",
};

const sl_method sl_method_blocks = {
	.card = &card_blocks,
	.name = "block",
	.kind = SL_METHOD_PATTERN,
	.needs = SL_NEEDS_STATS,
	.summary = "the whole block",
	.match = block_match,
	.units = block_units,
	.shrink = block_shrink,
};
