/* GGUF reading and writing, and hostile files: every malformed header,
 * count, length and offset gets a clear error and never a crash. Loading
 * reports its progress and can be cancelled. Mappings and tensors are
 * advised to take huge pages, and the kernel's smaps says so. */
#include <stdint.h>

#include "core/fileio.h"
#include "core/gguf.h"
#include "core/model.h"
#include "test.h"

static char *tmp_path(const char *name)
{
	static char buf[4][512];
	static int slot;
	char *p = buf[slot++ % 4];
	snprintf(p, 512, "%s/%s", test_tmpdir(), name);
	return p;
}

/* A small valid file: scalars, a string, arrays and two tensors. */
static void write_sample(const char *path, float *w, int n)
{
	sl_gguf_writer *wr = sl_gguf_writer_new();
	sl_gguf_set_str(wr, "general.architecture", "llama");
	sl_gguf_set_u32(wr, "llama.block_count", 3);
	sl_gguf_set_f32(wr, "llama.rope.freq_base", 500000.0f);
	sl_gguf_set_bool(wr, "flag", true);
	int32_t arr[4] = {5, -6, 7, -8};
	sl_gguf_set_arr(wr, "ints", SL_GGUF_I32, arr, 4);
	const char *strs[3] = {"a", "", "ünï"};
	sl_gguf_set_arr_str(wr, "strs", strs, NULL, 3);
	int64_t ne[2] = {8, n / 8};
	sl_gguf_add_tensor(wr, "w", SL_DT_F32, ne, 2, w, (size_t)n * 4);
	int64_t ne1[1] = {8};
	sl_gguf_add_tensor(wr, "b", SL_DT_F32, ne1, 1, w, 32);
	sl_error err;
	CHECK(sl_gguf_write(wr, path, &err) == SL_OK, "write: %s", err.msg);
	sl_gguf_writer_free(wr);
}

static void test_round_trip(void)
{
	float w[64];
	for (int i = 0; i < 64; i++)
		w[i] = (float)i * 0.5f - 3.0f;
	const char *path = tmp_path("sample.gguf");
	write_sample(path, w, 64);
	sl_gguf *g;
	sl_error err;
	REQUIRE(sl_gguf_open(path, &g, &err) == SL_OK, "open: %s", err.msg);
	CHECK(g->version == 3 && g->n_kv == 6 && g->n_tensors == 2, "header %u %llu %llu", g->version,
	      (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
	char s[32];
	CHECK(sl_gguf_get_str(g, "general.architecture", s, sizeof s) && !strcmp(s, "llama"), "arch");
	int64_t v;
	CHECK(sl_gguf_get_i64(g, "llama.block_count", &v) && v == 3, "u32");
	float f;
	CHECK(sl_gguf_get_f32(g, "llama.rope.freq_base", &f) && f == 500000.0f, "f32");
	bool b;
	CHECK(sl_gguf_get_bool(g, "flag", &b) && b, "bool");
	const sl_gguf_kv *kv = sl_gguf_find(g, "ints");
	REQUIRE(kv && kv->n == 4, "ints array");
	CHECK(sl_gguf_arr_num(kv, 1) == -6 && sl_gguf_arr_num(kv, 3) == -8, "ints values");
	kv = sl_gguf_find(g, "strs");
	REQUIRE(kv && kv->n == 3, "string array");
	size_t len;
	const char *e = sl_gguf_arr_str(kv, 2, &len);
	CHECK(e && len == strlen("ünï") && !memcmp(e, "ünï", len), "utf-8 string element");
	CHECK(sl_gguf_arr_str(kv, 1, &len) && len == 0, "empty string element");
	CHECK(!sl_gguf_arr_str(kv, 3, &len), "out-of-range element");
	CHECK(!strcmp(g->tensors[0].name, "w") && g->tensors[0].ne[0] == 8 && g->tensors[0].ne[1] == 8,
	      "tensor shape");
	CHECK(!memcmp(g->tensors[0].data, w, sizeof w), "tensor data");
	CHECK(((uintptr_t)g->tensors[1].data - (uintptr_t)g->base) % 32 == 0, "tensor aligned");
	sl_gguf_close(g);

	/* Version 2 has the same little-endian layout as version 3. */
	size_t n;
	char *img;
	REQUIRE(sl_read_file(path, 1 << 20, &img, &n, &err) == SL_OK, "read back");
	img[4] = 2;
	REQUIRE(sl_gguf_parse(img, n, "v2.gguf", &g, &err) == SL_OK, "version 2: %s", err.msg);
	CHECK(g->version == 2 && g->n_tensors == 2 && !memcmp(g->tensors[0].data, w, sizeof w), "v2 contents");
	sl_gguf_close(g);
	free(img);
}

static uint8_t *read_all(const char *path, size_t *n)
{
	char *d;
	sl_error err;
	if (sl_read_file(path, (size_t)1 << 30, &d, n, &err))
		return NULL;
	return (uint8_t *)d;
}

/* Parses a buffer and expects failure with a message containing want. */
static void expect_bad(const uint8_t *buf, size_t n, const char *want, const char *what)
{
	sl_gguf *g = NULL;
	sl_error err = {0};
	sl_status st = sl_gguf_parse(buf, n, "hostile.gguf", &g, &err);
	CHECK(st != SL_OK, "%s: accepted", what);
	CHECK(strstr(err.msg, "hostile.gguf") != NULL, "%s: message names the file: %s", what, err.msg);
	if (want)
		CHECK(strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, want);
	sl_gguf_close(g);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void test_hostile(void)
{
	float w[64] = {0};
	const char *path = tmp_path("h.gguf");
	write_sample(path, w, 64);
	size_t n;
	uint8_t *good = read_all(path, &n);
	REQUIRE(good, "sample read");
	uint8_t *b = malloc(n);

	/* Every truncation of a valid file fails cleanly. */
	int failures = 0;
	for (size_t k = 0; k < n; k++) {
		sl_gguf *g = NULL;
		sl_error err = {0};
		if (sl_gguf_parse(good, k, "hostile.gguf", &g, &err) == SL_OK) {
			failures++;
			sl_gguf_close(g);
		}
	}
	CHECK(failures == 0, "%d truncated prefixes were accepted", failures);

	memcpy(b, good, n);
	b[0] = 'X';
	expect_bad(b, n, "not a GGUF file", "wrong magic");
	memcpy(b, good, n);
	b[4] = 1;
	expect_bad(b, n, "version 1", "version 1");
	memcpy(b, good, n);
	put_u64(b + 8, (uint64_t)1 << 60);
	expect_bad(b, n, "tensors", "absurd tensor count");
	memcpy(b, good, n);
	put_u64(b + 16, (uint64_t)-1);
	expect_bad(b, n, "metadata", "absurd metadata count");
	memcpy(b, good, n);
	put_u64(b + 24, (uint64_t)1 << 62); /* first key's length */
	expect_bad(b, n, "claims", "absurd string length");

	/* Patch fields of the first tensor info, found by its name "w". */
	sl_gguf *g;
	sl_error err;
	REQUIRE(sl_gguf_parse(good, n, "good", &g, &err) == SL_OK, "good parses");
	size_t ti = 0;
	for (size_t k = 0; k + 9 < n; k++)
		if (!memcmp(good + k, "\x01\0\0\0\0\0\0\0w\x02\0\0\0", 13)) {
			ti = k;
			break;
		}
	sl_gguf_close(g);
	REQUIRE(ti, "tensor info found");
	size_t dims = ti + 8 + 1 + 4, type = dims + 16, off = type + 4;
	memcpy(b, good, n);
	b[ti + 9] = 5;
	expect_bad(b, n, "dimensions", "five dimensions");
	memcpy(b, good, n);
	put_u64(b + dims + 8, (uint64_t)1 << 50);
	expect_bad(b, n, "dimension", "absurd dimension");
	memcpy(b, good, n);
	put_u64(b + dims + 8, (uint64_t)1 << 38);
	expect_bad(b, n, NULL, "huge tensor");
	memcpy(b, good, n);
	b[type] = 200;
	expect_bad(b, n, "type", "unknown tensor type");
	memcpy(b, good, n);
	put_u64(b + off, 1u << 20);
	expect_bad(b, n, "past the end", "offset past the end");
	memcpy(b, good, n);
	put_u64(b + off, 4);
	expect_bad(b, n, "alignment", "misaligned offset");
	memcpy(b, good, n);
	b[ti + 8] = 'b'; /* both tensors now named "b" */
	expect_bad(b, n, "twice", "duplicate tensor");

	/* Random byte flips: errors are fine, crashes are not (ASan watches). */
	uint64_t seed = 12345;
	for (int it = 0; it < 3000; it++) {
		memcpy(b, good, n);
		for (int k = 0; k < 4; k++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			b[(seed >> 33) % n] = (uint8_t)(seed >> 20);
		}
		sl_gguf *h = NULL;
		if (sl_gguf_parse(b, n, "fuzz", &h, &err) == SL_OK)
			sl_gguf_close(h);
	}
	free(b);
	free(good);
}

/* Real model files, damaged: truncated and with NaN weights. */
static void test_hostile_models(void)
{
	const char *gg = test_fixture("models/stories260K.gguf");
	const char *bin = test_fixture("models/stories260K.bin");
	if (!gg || !bin)
		return;
	size_t n;
	uint8_t *d = read_all(gg, &n);
	REQUIRE(d, "read fixture");
	sl_error err = {0};
	sl_model *m = NULL;
	const char *p = tmp_path("trunc.gguf");
	sl_write_file_atomic(p, d, n / 2, &err);
	CHECK(sl_model_load(p, NULL, &m, &err) != SL_OK && strstr(err.msg, "trunc.gguf") &&
	      strstr(err.msg, "past the end"), "truncated gguf: %s", err.msg);

	sl_gguf *g;
	REQUIRE(sl_gguf_parse(d, n, "x", &g, &err) == SL_OK, "parse");
	size_t at = (size_t)((const uint8_t *)g->tensors[3].data - d);
	char name[SL_NAME_MAX];
	snprintf(name, sizeof name, "%s", g->tensors[3].name);
	sl_gguf_close(g);
	float nan = NAN;
	memcpy(d + at + 8, &nan, 4);
	p = tmp_path("nan.gguf");
	sl_write_file_atomic(p, d, n, &err);
	CHECK(sl_model_load(p, NULL, &m, &err) != SL_OK && strstr(err.msg, "NaN") && strstr(err.msg, name),
	      "NaN weights: %s", err.msg);
	free(d);

	d = read_all(bin, &n);
	REQUIRE(d, "read bin");
	for (size_t cut = 0; cut < n; cut += n / 7 + 1) {
		p = tmp_path("trunc.bin");
		sl_write_file_atomic(p, d, cut, &err);
		CHECK(sl_model_load(p, NULL, &m, &err) != SL_OK && strstr(err.msg, "trunc.bin"),
		      "truncated llama2.c checkpoint at %zu accepted", cut);
	}
	/* Absurd header values in a llama2.c checkpoint. */
	int32_t hdr[7] = {64, 172, 5, 8, 4, 512, 512};
	hdr[0] = 1 << 30;
	memcpy(d, hdr, sizeof hdr);
	p = tmp_path("absurd.bin");
	sl_write_file_atomic(p, d, n, &err);
	CHECK(sl_model_load(p, NULL, &m, &err) != SL_OK && strstr(err.msg, "absurd.bin"), "absurd dim: %s",
	      err.msg);
	free(d);
}

typedef struct {
	int calls;
	double last;
	atomic_int *cancel;
	int cancel_after;
} load_watch;

static void on_load(void *ctx, double frac, const char *stage)
{
	load_watch *w = ctx;
	(void)stage;
	w->calls++;
	w->last = frac;
	if (w->calls == w->cancel_after)
		atomic_store(w->cancel, 1);
}

/* Loading a model reports once per tensor; a cancel stops it, leaking
 * nothing (the sanitizers' build checks that). */
static void test_load_progress(void)
{
	const char *gg = test_fixture("models/stories260K.gguf");
	if (!gg)
		return;
	atomic_int cancel = 0;
	load_watch w = {0, 0, &cancel, -1};
	sl_progress p = {on_load, &w, &cancel};
	sl_load_opts o = {.check_finite = true, .progress = &p};
	sl_model *m = NULL;
	sl_error err = {0};
	REQUIRE(sl_model_load(gg, &o, &m, &err) == SL_OK, "%s", err.msg);
	CHECK(w.calls == m->n_tensors && w.last < 1 && w.last >= (m->n_tensors - 1.0) / m->n_tensors,
	      "%d reports for %d tensors, last %g", w.calls, m->n_tensors, w.last);
	sl_model_free(m);
	w = (load_watch){0, 0, &cancel, 3};
	CHECK(sl_model_load(gg, &o, &m, &err) == SL_ERR_CANCELLED && !m && w.calls == 3 && strstr(err.msg, "cancelled"),
	      "cancelled load: %d reports, %s", w.calls, err.msg);
}

/* The finiteness check on stored halves and bfloats: an infinity or NaN
 * anywhere (after the first 1024 values too) is named with its element;
 * the largest finite values and subnormals pass. */
static void test_finite_halves(void)
{
	static const struct {
		int type;
		uint16_t ok, inf, nan;
	} k[] = {{SL_DT_F16, 0x7bff, 0xfc00, 0x7e01}, {SL_DT_BF16, 0x7f7f, 0xff80, 0x7fc1}};
	enum { N = 3000 };
	uint16_t v[N];
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
		sl_tensor t = {.name = "h", .type = k[i].type, .n_dims = 1, .ne = {N, 1, 1, 1}, .data = v,
		               .nbytes = sizeof v};
		sl_error err = {0};
		for (int j = 0; j < N; j++)
			v[j] = j % 2 ? k[i].ok : (uint16_t)(j & 0x83ff); /* subnormals and their negatives */
		CHECK(sl_tensor_check_finite(&t, &err) == SL_OK, "%s: finite values pass", sl_dtype_name(k[i].type));
		v[2500] = k[i].inf;
		CHECK(sl_tensor_check_finite(&t, &err) != SL_OK && strstr(err.msg, "infinity at element 2500"),
		      "%s: infinity found: %s", sl_dtype_name(k[i].type), err.msg);
		v[2500] = k[i].ok;
		v[1025] = k[i].nan;
		CHECK(sl_tensor_check_finite(&t, &err) != SL_OK && strstr(err.msg, "NaN at element 1025"),
		      "%s: NaN found: %s", sl_dtype_name(k[i].type), err.msg);
	}
}

/* The smaps reader on text in the kernel's format: per mapping, its
 * overlap with the spans, at most that much of its huge pages, and the
 * overlap again where VmFlags has "hg". */
static void test_smaps_scan(void)
{
	static const char text[] =
	        "00200000-00a00000 rw-p 00000000 00:00 0 \n"
	        "Size:               8192 kB\n"
	        "AnonHugePages:      4096 kB\n"
	        "FilePmdMapped:         0 kB\n"
	        "VmFlags: rd wr mr mw me ac hg\n"
	        "7f0000000000-7f0000600000 r--p 00000000 fe:00 1234       /models/a-hg.gguf\n"
	        "Size:               6144 kB\n"
	        "AnonHugePages:         0 kB\n"
	        "FilePmdMapped:      6144 kB\n"
	        "VmFlags: rd mr mw me hgx\n"
	        "7f0000600000-7f0000800000 r--p 00600000 fe:00 1234       /models/a-hg.gguf\n"
	        "FilePmdMapped:      2048 kB\n"
	        "VmFlags: rd mr mw me sd hg\n";
	/* 7 MB of the first mapping; 1 MB of the file's first piece and all
	 * of its second, as two spans */
	const sl_span sp[3] = {{(void *)0x300000, 7 << 20},
	                       {(void *)0x7f0000500000, 1 << 20},
	                       {(void *)0x7f0000600000, 2 << 20}};
	FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
	REQUIRE(f, "fmemopen");
	sl_huge_usage u;
	CHECK(sl_huge_usage_scan(f, sp, 3, &u), "scan");
	fclose(f);
	CHECK(u.bytes == (size_t)10 << 20, "bytes %zu", u.bytes);
	CHECK(u.huge == (size_t)(4 + 1 + 2) << 20, "huge %zu", u.huge);
	CHECK(u.advised == (size_t)(7 + 2) << 20, "advised %zu", u.advised);
	f = fmemopen((void *)"", 1, "r");
	CHECK(!sl_huge_usage_scan(f, sp, 3, &u) && !u.bytes, "no mappings");
	fclose(f);
	CHECK(!sl_huge_usage_scan(NULL, sp, 3, &u), "no text");
}

/* A model file's mapping and a tensor's own data are advised to take
 * huge pages, in their whole 2 MB extents (the kernel's own view). */
static void test_huge_advice(void)
{
	if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0) {
		printf("SKIP: huge-page advice: this kernel has no transparent huge pages\n");
		return;
	}
	const size_t ext = (size_t)2 << 20;
	const char *path = tmp_path("huge.gguf");
	int n = 5 << 18; /* 5 MB of F32 */
	float *w = calloc((size_t)n, sizeof *w);
	REQUIRE(w, "alloc");
	write_sample(path, w, n);
	free(w);
	sl_mapping map;
	sl_error err;
	REQUIRE(sl_map_file(path, &map, &err) == SL_OK, "map: %s", err.msg);
	uintptr_t a = (uintptr_t)map.addr, lo = (a + ext - 1) / ext * ext, hi = (a + map.size) / ext * ext;
	sl_huge_usage u;
	sl_span sp = {map.addr, map.size};
	CHECK(sl_huge_usage_of(&sp, 1, &u), "smaps");
	CHECK(u.bytes == map.size, "mapped %zu of %zu", u.bytes, map.size);
	CHECK(hi > lo && u.advised == hi - lo, "mapping: %zu advised, whole extents %zu", u.advised, (size_t)(hi - lo));
	sl_unmap(&map);

	sl_tensor t = {.name = "t"};
	int64_t ne[2] = {1 << 10, 5 << 8};
	REQUIRE(sl_tensor_realloc(&t, SL_DT_F32, ne, 2, &err) == SL_OK, "realloc: %s", err.msg);
	memset(t.data, 1, t.nbytes);
	a = (uintptr_t)t.data;
	lo = (a + ext - 1) / ext * ext;
	hi = (a + t.nbytes) / ext * ext;
	sp = (sl_span){t.data, t.nbytes};
	CHECK(sl_huge_usage_of(&sp, 1, &u), "smaps");
	CHECK(u.bytes == t.nbytes && u.advised == hi - lo && hi > lo, "tensor: %zu of %zu mapped, %zu advised, extents %zu",
	      u.bytes, t.nbytes, u.advised, (size_t)(hi - lo));
	sl_tensor_release(&t);
}

int main(void)
{
	test_smaps_scan();
	test_huge_advice();
	test_finite_halves();
	test_round_trip();
	test_hostile();
	test_hostile_models();
	test_load_progress();
	return test_finish();
}
