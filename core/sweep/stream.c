/* What sweeps over many processes need whether or not MPI was built: how a
 * process knows that a launcher started it among others, and the stream
 * of cells that rank 0 writes for a parent process (one JSON line per
 * cell, the cell's bytes in hex, so that every field of sl_sweep_cell
 * travels without this file knowing them). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mpi.h"

int sl_mpi_world(int *rank)
{
	/* Open MPI's mpirun, then the PMI variables of MPICH's hydra and Slurm. */
	static const char *const vars[][2] = {
		{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"},
		{"PMI_SIZE", "PMI_RANK"},
		{"SLURM_NTASKS", "SLURM_PROCID"},
	};
	*rank = 0;
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *n = getenv(vars[i][0]), *r = getenv(vars[i][1]);
		if (n && atoi(n) > 0) {
			*rank = r ? atoi(r) : 0;
			return atoi(n);
		}
	}
	return 1;
}

static void model_hash_hex(const sl_sweep *sw, char *buf, size_t n)
{
	snprintf(buf, n, "%016llx", (unsigned long long)sw->model_hash);
}

static char *print_line(cJSON *o)
{
	char *s = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

char *sl_sweep_stream_header(const sl_sweep *sw)
{
	char hash[32];
	model_hash_hex(sw, hash, sizeof hash);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "slimlab_stream", 1);
	cJSON_AddStringToObject(o, "model_hash", hash);
	cJSON_AddNumberToObject(o, "rows", sw->n_rows);
	cJSON_AddNumberToObject(o, "cols", sw->n_opts);
	cJSON_AddNumberToObject(o, "cell_bytes", sizeof(sl_sweep_cell));
	return print_line(o);
}

char *sl_sweep_stream_cell(const sl_sweep *sw, int row, int col)
{
	const unsigned char *b = (const unsigned char *)cell_of(sw, row, col);
	char hex[2 * sizeof(sl_sweep_cell) + 1];
	for (size_t i = 0; i < sizeof(sl_sweep_cell); i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "row", row);
	cJSON_AddNumberToObject(o, "col", col);
	cJSON_AddStringToObject(o, "name", sw->rows[row].name);
	cJSON_AddStringToObject(o, "option", sw->opts[col].label);
	cJSON_AddNumberToObject(o, "kl", cell_of(sw, row, col)->kl);
	cJSON_AddStringToObject(o, "cell", hex);
	return print_line(o);
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static sl_status take_header(const sl_sweep *sw, const cJSON *o, sl_error *err)
{
	char hash[32];
	model_hash_hex(sw, hash, sizeof hash);
	const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "model_hash"));
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "rows"), *cols = cJSON_GetObjectItemCaseSensitive(o, "cols");
	const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(o, "cell_bytes");
	if (!cJSON_IsNumber(bytes) || bytes->valueint != (int)sizeof(sl_sweep_cell))
		return sl_errorf(err, SL_ERR_FORMAT, "the ranks run another build of slimlab (cells of %d bytes, here %zu)",
		                 cJSON_IsNumber(bytes) ? bytes->valueint : -1, sizeof(sl_sweep_cell));
	if (!h || strcmp(h, hash) || !cJSON_IsNumber(rows) || rows->valueint != sw->n_rows || !cJSON_IsNumber(cols) ||
	    cols->valueint != sw->n_opts)
		return sl_errorf(err, SL_ERR_FORMAT, "the ranks swept another model or grid (model %s, here %s)",
		                 h ? h : "?", hash);
	return SL_OK;
}

sl_status sl_sweep_stream_take(sl_sweep *sw, const char *line, sl_sweep_cell_fn on_cell, void *ctx,
                               const sl_progress *p, sl_error *err)
{
	cJSON *o = cJSON_Parse(line);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return sl_errorf(err, SL_ERR_FORMAT, "not a line of a sweep's stream: %.80s", line);
	}
	if (cJSON_GetObjectItemCaseSensitive(o, "slimlab_stream")) {
		sl_status st = take_header(sw, o, err);
		cJSON_Delete(o);
		return st;
	}
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "row"), *c = cJSON_GetObjectItemCaseSensitive(o, "col");
	const char *hex = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "cell"));
	sl_sweep_cell cell;
	unsigned char *b = (unsigned char *)&cell;
	bool ok = cJSON_IsNumber(r) && cJSON_IsNumber(c) && r->valueint >= 0 && r->valueint < sw->n_rows &&
	          c->valueint >= 0 && c->valueint < sw->n_opts && hex && strlen(hex) == 2 * sizeof cell;
	for (size_t i = 0; ok && i < sizeof cell; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
		ok = hi >= 0 && lo >= 0;
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	/* Its flags must be booleans before they are read as such. */
	ok = ok && b[offsetof(sl_sweep_cell, done)] == 1 && b[offsetof(sl_sweep_cell, failed)] <= 1;
	int row = ok ? r->valueint : 0, col = ok ? c->valueint : 0;
	cJSON_Delete(o);
	if (!ok)
		return sl_errorf(err, SL_ERR_FORMAT, "a cell of a sweep's stream is malformed: %.80s", line);
	if (!cell_of(sw, row, col)->done)
		sl_sweep_keep(sw, row, col, &cell, on_cell, ctx, p);
	return SL_OK;
}

sl_status sl_sweep_stream_end(const sl_sweep *sw, const sl_progress *p, sl_error *err)
{
	return sl_sweep_stopped(sw, p, err);
}
