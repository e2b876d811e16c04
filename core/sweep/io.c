/* A sweep written out and read back: a cell's metric as the heatmap shows
 * it, the sweep as JSON (which restores its finished cells into a sweep of
 * the same model and settings) and as CSV. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../fileio.h"
#include "internal.h"

/* How rows combine into a whole recipe's prediction (sl_sweep_predict):
 * KL, second order in a perturbation of the logits, adds up over modules
 * whose perturbations are independent; a total variation (1 - acceptance,
 * and roughly 1 - top-1) is first order in it, so independent ones add in
 * quadrature. */
static const struct {
	const char *name, *title;
	bool quadrature;
} metrics[] = {
	{"kl", "KL divergence from the base", false},
	{"dppl", "change in perplexity", false},
	{"top1", "1 - top-1 agreement", true},
	{"accept", "1 - acceptance as a draft", true},
};
#define N_METRICS ((int)(sizeof metrics / sizeof metrics[0]))

int sl_sweep_metric_count(void)
{
	return N_METRICS;
}

const char *sl_sweep_metric_name(int i)
{
	return i >= 0 && i < N_METRICS ? metrics[i].name : NULL;
}

const char *sl_sweep_metric_title(int i)
{
	return i >= 0 && i < N_METRICS ? metrics[i].title : NULL;
}

bool sl_sweep_metric_quadrature(int i)
{
	return i >= 0 && i < N_METRICS && metrics[i].quadrature;
}

int sl_sweep_metric_find(const char *name)
{
	for (int i = 0; i < N_METRICS; i++)
		if (!strcmp(name, metrics[i].name))
			return i;
	return -1;
}

double sl_sweep_metric(const sl_sweep_cell *c, const char *metric)
{
	if (!c->done || c->failed)
		return NAN;
	if (!strcmp(metric, "dppl"))
		return c->dppl;
	if (!strcmp(metric, "top1"))
		return 1.0 - c->top1;
	if (!strcmp(metric, "accept"))
		return 1.0 - c->acceptance;
	return c->kl;
}

static const char *proxy_names[SL_PROXY_COUNT] = {"weight_error", "activation_error", "fisher"};

static cJSON *num_or_null(double v)
{
	return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

cJSON *sl_sweep_to_json(const sl_sweep *sw)
{
	cJSON *o = cJSON_CreateObject();
	char hash[32];
	snprintf(hash, sizeof hash, "%016llx", (unsigned long long)sw->model_hash);
	cJSON_AddNumberToObject(o, "slimlab_sweep", 1);
	cJSON_AddStringToObject(o, "model", sw->m->path);
	cJSON_AddStringToObject(o, "model_hash", hash);
	cJSON_AddStringToObject(o, "text", sw->text_path);
	cJSON_AddNumberToObject(o, "ctx", sw->n_ctx);
	cJSON_AddNumberToObject(o, "windows", sw->n_win);
	cJSON_AddNumberToObject(o, "calib_tokens", sw->calib_tokens);
	cJSON_AddNumberToObject(o, "seed", (double)sw->seed);
	cJSON_AddStringToObject(o, "unit", sw->unit == SL_SWEEP_BLOCKS ? "block" : "module");
	cJSON_AddNumberToObject(o, "base_ppl", sw->base_ppl);
	cJSON *opts = cJSON_AddArrayToObject(o, "options");
	for (int c = 0; c < sw->n_opts; c++)
		cJSON_AddItemToArray(opts, cJSON_CreateString(sw->opts[c].label));
	cJSON *rows = cJSON_AddArrayToObject(o, "rows");
	for (int r = 0; r < sw->n_rows; r++) {
		cJSON *row = cJSON_CreateObject();
		cJSON_AddStringToObject(row, "name", sw->rows[r].name);
		cJSON_AddNumberToObject(row, "block", sw->rows[r].block);
		cJSON_AddNumberToObject(row, "params", sw->rows[r].params);
		cJSON *cells = cJSON_AddArrayToObject(row, "cells");
		for (int c = 0; c < sw->n_opts; c++) {
			const sl_sweep_cell *cl = cell_of(sw, r, c);
			if (!cl->done) {
				cJSON_AddItemToArray(cells, cJSON_CreateNull());
				continue;
			}
			cJSON *j = cJSON_CreateObject();
			cJSON_AddItemToObject(j, "kl", num_or_null(cl->kl));
			cJSON_AddItemToObject(j, "kl_se", num_or_null(cl->kl_se));
			cJSON_AddItemToObject(j, "dppl", num_or_null(cl->dppl));
			cJSON_AddItemToObject(j, "top1", num_or_null(cl->top1));
			cJSON_AddItemToObject(j, "acceptance", num_or_null(cl->acceptance));
			cJSON_AddItemToObject(j, "ppl", num_or_null(cl->ppl));
			cJSON_AddNumberToObject(j, "bytes", cl->bytes);
			cJSON_AddNumberToObject(j, "bytes_before", cl->bytes_before);
			for (int p = 0; p < SL_PROXY_COUNT; p++)
				cJSON_AddItemToObject(j, proxy_names[p], num_or_null(cl->proxy[p]));
			cJSON_AddNumberToObject(j, "seconds", cl->seconds);
			if (cl->note[0])
				cJSON_AddStringToObject(j, "note", cl->note);
			if (cl->failed)
				cJSON_AddBoolToObject(j, "failed", true);
			cJSON_AddItemToArray(cells, j);
		}
		cJSON_AddItemToArray(rows, row);
	}
	cJSON *sp = cJSON_AddObjectToObject(o, "spearman_vs_kl");
	for (int p = 0; p < SL_PROXY_COUNT; p++)
		cJSON_AddItemToObject(sp, proxy_names[p], num_or_null(sl_sweep_spearman(sw, p, -1)));
	return o;
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

sl_status sl_sweep_restore(sl_sweep *sw, const cJSON *saved, int *restored, sl_error *err)
{
	*restored = 0;
	if (!cJSON_IsObject(saved) || jnum(saved, "slimlab_sweep") != 1)
		return sl_errorf(err, SL_ERR_FORMAT, "not a saved sweep (slimlab_sweep 1 expected)");
	char hash[32];
	snprintf(hash, sizeof hash, "%016llx", (unsigned long long)sw->model_hash);
	const char *h = jstr(saved, "model_hash"), *text = jstr(saved, "text"), *unit = jstr(saved, "unit");
	if (!h || strcmp(h, hash))
		return sl_errorf(err, SL_ERR_ARG, "the saved sweep was measured on another model (hash %s, this one %s)",
		                 h ? h : "missing", hash);
	if (!text || strcmp(text, sw->text_path) || jnum(saved, "ctx") != sw->n_ctx ||
	    jnum(saved, "windows") != sw->n_win || jnum(saved, "calib_tokens") != sw->calib_tokens ||
	    jnum(saved, "seed") != (double)sw->seed ||
	    !unit || strcmp(unit, sw->unit == SL_SWEEP_BLOCKS ? "block" : "module"))
		return sl_errorf(err, SL_ERR_ARG,
		                 "the saved sweep used other settings (text, window, windows, calibration or unit)");
	const cJSON *opts = cJSON_GetObjectItemCaseSensitive(saved, "options");
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(saved, "rows");
	if (!cJSON_IsArray(opts) || !cJSON_IsArray(rows) || cJSON_GetArraySize(rows) != sw->n_rows)
		return sl_errorf(err, SL_ERR_FORMAT, "the saved sweep's rows or options are missing or of another model");
	/* Options may have been added or reordered since: match them by label. */
	int n_saved = cJSON_GetArraySize(opts);
	for (int r = 0; r < sw->n_rows; r++) {
		const cJSON *row = cJSON_GetArrayItem(rows, r);
		const char *name = jstr(row, "name");
		const cJSON *cells = cJSON_GetObjectItemCaseSensitive(row, "cells");
		if (!name || strcmp(name, sw->rows[r].name) || !cJSON_IsArray(cells) ||
		    cJSON_GetArraySize(cells) != n_saved)
			return sl_errorf(err, SL_ERR_FORMAT, "saved sweep row %d does not match this model's '%s'", r,
			                 sw->rows[r].name);
		for (int k = 0; k < n_saved; k++) {
			const char *label = cJSON_GetStringValue(cJSON_GetArrayItem(opts, k));
			const cJSON *j = cJSON_GetArrayItem(cells, k);
			if (!label || !cJSON_IsObject(j))
				continue;
			for (int c = 0; c < sw->n_opts; c++) {
				if (strcmp(label, sw->opts[c].label))
					continue;
				sl_sweep_cell *cl = cell_of(sw, r, c);
				memset(cl, 0, sizeof *cl);
				cl->kl = jnum(j, "kl");
				cl->kl_se = jnum(j, "kl_se");
				cl->dppl = jnum(j, "dppl");
				cl->top1 = jnum(j, "top1");
				cl->acceptance = jnum(j, "acceptance"); /* NaN in sweeps saved before it was measured */
				cl->ppl = jnum(j, "ppl");
				cl->bytes = jnum(j, "bytes");
				cl->bytes_before = jnum(j, "bytes_before");
				for (int p = 0; p < SL_PROXY_COUNT; p++)
					cl->proxy[p] = jnum(j, proxy_names[p]);
				cl->seconds = jnum(j, "seconds");
				const char *note = jstr(j, "note");
				snprintf(cl->note, sizeof cl->note, "%s", note ? note : "");
				cl->failed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "failed"));
				cl->done = cl->failed || (isfinite(cl->kl) && isfinite(cl->bytes));
				*restored += cl->done;
			}
		}
	}
	return SL_OK;
}

char *sl_sweep_to_csv(const sl_sweep *sw)
{
	sl_buf b = {0};
	bool ok = sl_buf_printf(&b, "row,block,option,kl,kl_se,dppl,top1,acceptance,ppl,bytes,bytes_before,"
	                            "weight_error,activation_error,fisher,seconds,note\n");
	for (int r = 0; r < sw->n_rows && ok; r++)
		for (int c = 0; c < sw->n_opts && ok; c++) {
			const sl_sweep_cell *cl = cell_of(sw, r, c);
			if (!cl->done)
				continue;
			ok = sl_buf_printf(&b, "%s,%d,%s,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.0f,%.0f,%.9g,%.9g,%.9g,%.3f,\"%s\"\n",
			                   sw->rows[r].name, sw->rows[r].block, sw->opts[c].label, cl->kl, cl->kl_se,
			                   cl->dppl, cl->top1, cl->acceptance, cl->ppl, cl->bytes, cl->bytes_before, cl->proxy[0],
			                   cl->proxy[1], cl->proxy[2], cl->seconds, cl->note);
		}
	ok = ok && sl_buf_put(&b, "", 1);
	if (!ok) {
		sl_buf_free(&b);
		return NULL;
	}
	return b.data;
}

