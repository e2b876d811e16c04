/* Tokenizers against independent references: llama.cpp's own test vectors
 * for five GGUF vocabularies, ids from llama2.c's reference encoder, the
 * same vocabulary read from two formats, tokenizer.json files built from
 * those vocabularies, round trips on vocabularies without vectors, the
 * pre-tokenizer patterns, and hostile files that must fail cleanly. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <time.h>

#include "core/fileio.h"
#include "core/gguf.h"
#include "core/tok-internal.h"
#include "core/tokenizer.h"
#include "test.h"

static const char *tmp_path(const char *name)
{
	static char buf[4][512];
	static int slot;
	char *p = buf[slot++ % 4];
	snprintf(p, 512, "%s/%s", test_tmpdir(), name);
	return p;
}

static sl_tokenizer *load(const char *rel)
{
	const char *path = test_fixture(rel);
	if (!path)
		return NULL;
	sl_tokenizer *t;
	sl_error err = {0};
	sl_status st = sl_tok_load_file(path, &t, &err);
	CHECK(st == SL_OK, "loading %s: %s", rel, err.msg);
	return st == SL_OK ? t : NULL;
}

/* Ids as " 1 2 3", the form of the .out files. */
static char *ids_str(const int32_t *ids, size_t n)
{
	char *s = malloc(12 * n + 1);
	size_t k = 0;
	s[0] = 0;
	for (size_t i = 0; i < n; i++)
		k += (size_t)sprintf(s + k, " %d", (int)ids[i]);
	return s;
}

static char *decode_all(const sl_tokenizer *t, const int32_t *ids, size_t n, size_t *len)
{
	sl_buf b = {0};
	sl_buf_put(&b, "", 0);
	for (size_t i = 0; i < n; i++) {
		size_t l;
		const char *p = sl_tok_decode(t, i ? ids[i - 1] : -1, ids[i], &l);
		if (p)
			sl_buf_put(&b, p, l);
	}
	*len = b.len;
	return b.data ? b.data : calloc(1, 1);
}

/* Encodes text (without BOS) and checks that decoding gives it back. */
static void check_round_trip(const sl_tokenizer *t, const char *what, const char *text, size_t len)
{
	int32_t *ids;
	size_t n, dlen;
	sl_error err = {0};
	sl_status st = sl_tok_encode(t, text, len, false, &ids, &n, &err);
	CHECK(st == SL_OK, "%s: encoding failed: %s", what, err.msg);
	if (st != SL_OK)
		return;
	char *dec = decode_all(t, ids, n, &dlen);
	CHECK(dlen == len && memcmp(dec, text, len) == 0, "%s: \"%.*s\" decodes to \"%.*s\"", what, (int)len,
	      text, (int)dlen, dec);
	free(dec);
	free(ids);
}

/* llama.cpp's vectors: texts joined by the separator, one line of ids per
 * text. Returns how many texts encode exactly as llama.cpp did. */
static int run_vectors(const sl_tokenizer *t, const char *vocab, const char *what, int *total)
{
	char rel[256], *inp, *out;
	size_t ni, no;
	*total = 0;
	snprintf(rel, sizeof rel, "tokenizers/ggml-vocab-%s.gguf.inp", vocab);
	const char *pi = test_fixture(rel);
	snprintf(rel, sizeof rel, "tokenizers/ggml-vocab-%s.gguf.out", vocab);
	const char *po = test_fixture(rel);
	if (!pi || !po || sl_read_file(pi, 1 << 24, &inp, &ni, NULL) != SL_OK)
		return 0;
	if (sl_read_file(po, 1 << 24, &out, &no, NULL) != SL_OK) {
		free(inp);
		return 0;
	}
	static const char sep[] = "\n__ggml_vocab_test__\n";
	int pass = 0;
	char *p = inp, *line = out;
	while (p < inp + ni && line < out + no) {
		char *end = strstr(p, sep), *eol = strchr(line, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (eol)
			*eol = 0;
		int32_t *ids;
		size_t n;
		sl_error err = {0};
		(*total)++;
		if (sl_tok_encode(t, p, len, false, &ids, &n, &err) == SL_OK) {
			char *got = ids_str(ids, n);
			bool same = strcmp(got, line) == 0;
			CHECK(same, "%s: text %d \"%.*s\"\n  llama.cpp:%s\n  slimlab:  %s", what, *total, (int)len, p,
			      line, got);
			pass += same;
			free(got);
			free(ids);
		} else {
			CHECK(false, "%s: text %d: %s", what, *total, err.msg);
		}
		check_round_trip(t, what, p, len);
		if (!end || !eol)
			break;
		p = end + sizeof sep - 1;
		line = eol + 1;
	}
	free(inp);
	free(out);
	printf("%s: %d/%d llama.cpp vectors match\n", what, pass, *total);
	return pass;
}

static int vectors_passed, vectors_total;

static void test_vectors(const char *vocab)
{
	char rel[256];
	snprintf(rel, sizeof rel, "tokenizers/ggml-vocab-%s.gguf", vocab);
	sl_tokenizer *t = load(rel);
	if (!t)
		return;
	int total;
	int pass = run_vectors(t, vocab, vocab, &total);
	CHECK(total == 46, "%s: %d vectors read, 46 expected", vocab, total);
	vectors_passed += pass;
	vectors_total += total;
	sl_tok_free(t);
}

static const char *const samples[] = {
	"Hello world",
	" leading space and trailing space ",
	"  two  spaces,   three   spaces  ",
	"tab\tand\nnewlines\n\n\r\nend",
	"Ünïcödé ñ Führer 日本語のテキスト 🦙🚀",
	"Привет, мир! Γειά σου Κόσμε",
	"int main(void) { return 0; }\n",
	"def f(x):\n    return x**2  # square\n",
	"    indented\n\tmixed \t whitespace\t",
	"1234567890 3.14159 1e-9 $12,345.67",
	"family 👩‍👩‍👧 flag 🇫🇷 ok",
	"<s> </s> <|endoftext|> <unk> look like special tokens",
	"I'M SURE you'LL see 'em, y'all",
};

/* Bytes that are not UTF-8 survive byte fallback and vocabularies with
 * all 256 byte characters; many byte-level vocabularies leave out the
 * bytes UTF-8 never uses (0xC0, 0xC1, 0xF5..0xFF) and cannot. */
static const char invalid_utf8[] = "not UTF-8: \xc3\x28 \xff\xfe \xe2\x82";

static void test_round_trips(const char *rel, bool all_bytes)
{
	sl_tokenizer *t = load(rel);
	if (!t)
		return;
	for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
		check_round_trip(t, rel, samples[i], strlen(samples[i]));
	check_round_trip(t, rel, "", 0);
	if (all_bytes)
		check_round_trip(t, rel, invalid_utf8, strlen(invalid_utf8));
	sl_tok_free(t);
}

static void check_ids(const sl_tokenizer *t, const char *text, bool bos, const int32_t *want, size_t n_want)
{
	int32_t *ids;
	size_t n;
	sl_error err = {0};
	REQUIRE(sl_tok_encode(t, text, strlen(text), bos, &ids, &n, &err) == SL_OK, "encode: %s", err.msg);
	char *got = ids_str(ids, n), *exp = ids_str(want, n_want);
	CHECK(strcmp(got, exp) == 0, "\"%s\":\n  expected%s\n  got     %s", text, exp, got);
	free(got);
	free(exp);
	free(ids);
}

static bool piece_is(const sl_tokenizer *t, int32_t id, const char *want)
{
	const char *p = sl_tok_piece(t, id);
	return p && strcmp(p, want) == 0;
}

static bool decodes_to(const sl_tokenizer *t, int32_t prev, int32_t id, const char *want)
{
	size_t len;
	const char *p = sl_tok_decode(t, prev, id, &len);
	return p && len == strlen(want) && memcmp(p, want, len) == 0;
}

/* Ids printed by llama2.c's reference encoder (run.c's encode(), built
 * outside the tree from karpathy/llama2.c and run with BOS on). */
static void test_llama2c_reference(void)
{
	sl_tokenizer *t = load("models/tok512.bin");
	if (t) {
		static const int32_t once[] = {1, 403, 407, 261, 378};
		check_ids(t, "Once upon a time", true, once, 5);
		static const int32_t mixed[] = {1,   346, 306, 414, 263, 304, 341, 443, 410, 475, 479,
		                                472, 280, 412, 431, 485, 410, 243, 162, 169, 156};
		check_ids(t, "Hello world! 123 café 🦙", true, mixed, sizeof mixed / sizeof mixed[0]);
		CHECK(sl_tok_kind_of(t) == SL_TOK_SPM, "tok512 is SentencePiece-style");
		CHECK(sl_tok_n_vocab(t) == 512 && sl_tok_bos(t) == 1 && sl_tok_eos(t) == 2 && sl_tok_unk(t) == 0,
		      "tok512: vocab %d bos %d eos %d", sl_tok_n_vocab(t), sl_tok_bos(t), sl_tok_eos(t));
		CHECK(sl_tok_add_bos(t), "llama2.c prompts start with BOS");
		/* A second owner keeps it alive past the first free. */
		CHECK(sl_tok_ref(t) == t && !sl_tok_ref(NULL), "ref");
		sl_tok_free(t);
		CHECK(piece_is(t, 403, "\xe2\x96\x81Once"), "still alive after one free");
		/* tokenizer.bin stores " Once"; pieces read as SentencePiece's. */
		CHECK(piece_is(t, 403, "\xe2\x96\x81Once"), "piece 403 is \"%s\"", sl_tok_piece(t, 403));
		CHECK(piece_is(t, 1, "<s>") && piece_is(t, 2, "</s>"), "BOS/EOS pieces");
		CHECK(sl_tok_find(t, "\xe2\x96\x81Once", 7) == 403, "find ▁Once");
		CHECK(sl_tok_type(t, 13) == SL_TOKEN_BYTE && sl_tok_type(t, 1) == SL_TOKEN_CONTROL &&
		      sl_tok_type(t, 403) == SL_TOKEN_NORMAL && sl_tok_type(t, 0) == SL_TOKEN_UNKNOWN, "token types");
		CHECK(sl_tok_score(t, 260) == -1.0f, "score of 260: %g", sl_tok_score(t, 260));
		CHECK(decodes_to(t, 1, 403, "Once"), "the space after BOS is dropped");
		CHECK(decodes_to(t, 403, 407, " upon"), "a space inside text stays");
		CHECK(decodes_to(t, 378, 13, "\n"), "<0x0A> decodes to a newline");
		CHECK(decodes_to(t, 378, 2, "") && decodes_to(t, -1, 1, ""), "control tokens decode to nothing");
		size_t len;
		CHECK(!sl_tok_decode(t, -1, 512, &len) && !sl_tok_decode(t, -1, -1, &len), "out of range ids");
		CHECK(!sl_tok_piece(t, 9999) && sl_tok_n_merges(t) == 0, "no piece 9999, no merges");
	}

	sl_tokenizer *big = load("tokenizers/llama2c-tokenizer-32000.bin");
	if (big) {
		static const int32_t want[] = {1,     9038,  2501, 263,  931,   29892, 15043, 3186,
		                               29991, 274,   28059, 29871, 243, 162,   169,   156};
		check_ids(big, "Once upon a time, Hello world! café 🦙", true, want, sizeof want / sizeof want[0]);
		/* The same Llama 2 vocabulary as ggml-vocab-llama-spm.gguf, read
		 * from llama2.c's format: llama.cpp's vectors hold for it too. */
		int total;
		int pass = run_vectors(big, "llama-spm", "llama2c-tokenizer-32000.bin", &total);
		CHECK(pass == total && total == 46, "llama2.c vocabulary: %d/%d", pass, total);
		sl_tok_free(big);
	}

	/* stories260K's vocabulary as GGUF and as tokenizer.bin. */
	sl_tokenizer *g = load("models/stories260K.gguf");
	if (g && t) {
		for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
			int32_t *a, *b;
			size_t na, nb;
			REQUIRE(sl_tok_encode(t, samples[i], strlen(samples[i]), true, &a, &na, NULL) == SL_OK &&
			                sl_tok_encode(g, samples[i], strlen(samples[i]), true, &b, &nb, NULL) == SL_OK,
			        "encode");
			CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0, "tok512.bin and stories260K.gguf differ on \"%s\"",
			      samples[i]);
			free(a);
			free(b);
		}
	}
	sl_tok_free(g);
	sl_tok_free(t);
}

static void test_gguf_facts(void)
{
	sl_tokenizer *t = load("tokenizers/ggml-vocab-gpt-2.gguf");
	if (t) {
		static const int32_t hello[] = {15496, 995};
		check_ids(t, "Hello world", false, hello, 2);
		static const int32_t bos_hello[] = {50256, 15496, 995};
		check_ids(t, "Hello world", true, bos_hello, 3);
		CHECK(sl_tok_kind_of(t) == SL_TOK_BPE && strcmp(sl_tok_pre_name(t), "gpt-2") == 0, "gpt-2: kind, pre %s",
		      sl_tok_pre_name(t));
		CHECK(sl_tok_bos(t) == 50256 && sl_tok_eos(t) == 50256 && sl_tok_n_vocab(t) == 50257, "gpt-2 specials");
		CHECK(sl_tok_find(t, "\xc4\xa0world", 7) == 995 && sl_tok_find(t, "nope, not a token", 17) == -1, "find");
		int32_t l, r;
		CHECK(sl_tok_n_merges(t) == 50000 && sl_tok_merge(t, 0, &l, &r) && piece_is(t, l, "\xc4\xa0") &&
		      piece_is(t, r, "t") && !sl_tok_merge(t, 50000, &l, &r), "merges");
		CHECK(decodes_to(t, -1, 995, " world") && decodes_to(t, 995, 198, "\n"), "byte-level decoding");
		CHECK(decodes_to(t, -1, 50256, ""), "<|endoftext|> decodes to nothing");
		sl_tok_free(t);
	}
	t = load("tokenizers/ggml-vocab-gpt-neox.gguf");
	if (t) {
		/* No tokenizer.ggml.pre: llama.cpp's default splits. */
		CHECK(strcmp(sl_tok_pre_name(t), "default") == 0, "gpt-neox pre %s", sl_tok_pre_name(t));
		sl_tok_free(t);
	}
	t = load("tokenizers/ggml-vocab-llama-spm.gguf");
	if (t) {
		CHECK(sl_tok_kind_of(t) == SL_TOK_SPM && sl_tok_bos(t) == 1 && sl_tok_eos(t) == 2, "llama-spm");
		sl_tok_free(t);
	}
}

/* GPT-2's printable stand-ins for bytes, written out independently. */
static void gpt2_chars(uint32_t map[256])
{
	uint32_t next = 256;
	for (uint32_t b = 0; b < 256; b++) {
		bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
		map[b] = printable ? b : next++;
	}
}

static size_t utf8(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	o[0] = (char)(0xC0 | c >> 6);
	o[1] = (char)(0x80 | (c & 0x3F));
	return 2;
}

/* A tiny byte-level GGUF vocabulary: the 256 byte characters, "Ġt", "he",
 * "Ġthe", "<|endoftext|>", and what the test varies. */
typedef struct {
	const char *model, *pre, *bad_merge;
	int64_t bos;
	bool short_types, no_tokens;
} tiny;

static const char *write_tiny(const char *name, const tiny *o)
{
	uint32_t map[256];
	gpt2_chars(map);
	char pieces[260][16];
	const char *toks[260];
	for (int b = 0; b < 256; b++) {
		pieces[b][utf8(map[b], pieces[b])] = 0;
		toks[b] = pieces[b];
	}
	toks[256] = "\xc4\xa0t";
	toks[257] = "he";
	toks[258] = "\xc4\xa0the";
	toks[259] = "<|endoftext|>";
	const char *merges[3] = {"\xc4\xa0 t", "h e", o->bad_merge ? o->bad_merge : "\xc4\xa0t he"};
	int32_t types[260];
	for (int i = 0; i < 260; i++)
		types[i] = i == 259 ? SL_TOKEN_CONTROL : SL_TOKEN_NORMAL;
	sl_gguf_writer *w = sl_gguf_writer_new();
	if (o->model)
		sl_gguf_set_str(w, "tokenizer.ggml.model", o->model);
	if (o->pre)
		sl_gguf_set_str(w, "tokenizer.ggml.pre", o->pre);
	if (!o->no_tokens)
		sl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 260);
	sl_gguf_set_arr(w, "tokenizer.ggml.token_type", SL_GGUF_I32, types, o->short_types ? 200 : 260);
	sl_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 3);
	sl_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)o->bos);
	const char *path = tmp_path(name);
	sl_error err;
	sl_status st = sl_gguf_write(w, path, &err);
	sl_gguf_writer_free(w);
	CHECK(st == SL_OK, "writing %s: %s", name, err.msg);
	return path;
}

/* A file that must be refused: an error of the given status whose
 * message names the file and contains what. */
static void check_refused(sl_status got, sl_status want, const sl_error *err, const char *path, const char *what)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	CHECK(got == want, "%s: status %s, expected %s (%s)", base, sl_status_name(got), sl_status_name(want),
	      err->msg);
	CHECK(strstr(err->msg, base) && strstr(err->msg, what), "%s: message \"%s\" should name the file and say \"%s\"",
	      base, err->msg, what);
}

static void test_gguf_hostile(void)
{
	sl_tokenizer *t;
	sl_error err = {0};
	const char *p = write_tiny("tiny.gguf", &(tiny){.model = "gpt2", .pre = "no-such-pre", .bos = 259});
	sl_status st = sl_tok_load_file(p, &t, &err);
	CHECK(st == SL_OK, "tiny.gguf: %s", err.msg);
	if (st == SL_OK) {
		CHECK(strcmp(sl_tok_pre_name(t), "default") == 0, "an unknown pre falls back to default, not %s",
		      sl_tok_pre_name(t));
		static const int32_t the[] = {259, 't', 257, 258, 258};
		check_ids(t, "the the the", true, the, 5);
		sl_tok_free(t);
	}
	p = write_tiny("bos.gguf", &(tiny){.model = "gpt2", .bos = 260});
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "bos_token_id");
	p = write_tiny("merge.gguf", &(tiny){.model = "gpt2", .bos = 259, .bad_merge = "\xc4\xa0 zz"});
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "merge 2");
	p = write_tiny("merge-space.gguf", &(tiny){.model = "gpt2", .bos = 259, .bad_merge = "nospace"});
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "merge 2");
	p = write_tiny("types.gguf", &(tiny){.model = "gpt2", .bos = 259, .short_types = true});
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "token_type");
	p = write_tiny("notokens.gguf", &(tiny){.model = "gpt2", .bos = 259, .no_tokens = true});
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "tokenizer.ggml.tokens");
	p = write_tiny("nomodel.gguf", &(tiny){.bos = 259});
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "tokenizer.ggml.model");
	p = write_tiny("bert.gguf", &(tiny){.model = "bert", .bos = 259});
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_UNSUPPORTED, &err, p, "bert");
}

static const char *write_bytes(const char *name, const void *data, size_t len)
{
	const char *p = tmp_path(name);
	FILE *f = fopen(p, "wb");
	if (f) {
		fwrite(data, 1, len, f);
		fclose(f);
	}
	return p;
}

static size_t put_record(uint8_t *d, float score, int32_t len, const char *s)
{
	memcpy(d, &score, 4);
	memcpy(d + 4, &len, 4);
	if (s)
		memcpy(d + 8, s, strlen(s));
	return 8 + (s ? strlen(s) : 0);
}

static void test_llama2c_hostile(void)
{
	sl_tokenizer *t;
	sl_error err = {0};
	uint8_t d[256];
	int32_t max = 8;
	memcpy(d, &max, 4);
	size_t n = 4;
	n += put_record(d + n, 0, 5, "<unk>");
	n += put_record(d + n, 0, 3, "<s>");
	n += put_record(d + n, 0, 4, "</s>");
	n += put_record(d + n, -1, 2, "ab");
	const char *p = write_bytes("good.bin", d, n);
	CHECK(sl_tok_load_llama2c(p, 4, &t, &err) == SL_OK, "good.bin: %s", err.msg);
	sl_tok_free(t);
	CHECK(sl_tok_load_llama2c(p, 0, &t, &err) == SL_OK && sl_tok_n_vocab(t) == 4, "good.bin read to its end");
	sl_tok_free(t);

	check_refused(sl_tok_load_llama2c(p, 5, &t, &err), SL_ERR_FORMAT, &err, p, "truncated");
	p = write_bytes("cut.bin", d, n - 1);
	check_refused(sl_tok_load_llama2c(p, 0, &t, &err), SL_ERR_FORMAT, &err, p, "token 3");
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "token 3");
	p = write_bytes("cut-header.bin", d, n - 7);
	check_refused(sl_tok_load_llama2c(p, 0, &t, &err), SL_ERR_FORMAT, &err, p, "truncated");
	p = write_bytes("tiny.bin", d, 3);
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "too short");
	p = write_bytes("empty.bin", d, 0);
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "too short");
	p = write_bytes("header-only.bin", d, 4);
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "no tokens");

	uint8_t h[64];
	memcpy(h, &max, 4);
	size_t k = 4 + put_record(h + 4, 0, INT32_MAX, NULL);
	p = write_bytes("huge.bin", h, k + 4);
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "claims 2147483647 bytes");
	k = 4 + put_record(h + 4, 0, -5, NULL);
	p = write_bytes("negative.bin", h, k);
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "claims -5 bytes");
	k = 4 + put_record(h + 4, NAN, 1, "a");
	p = write_bytes("nan.bin", h, k);
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "NaN");
	int32_t absurd = -1;
	memcpy(h, &absurd, 4);
	p = write_bytes("maxlen.bin", h, k);
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "max_token_length");
	CHECK(sl_tok_load_llama2c(p, -3, &t, &err) == SL_ERR_ARG, "a negative vocab size is refused");
	CHECK(sl_tok_load_file(tmp_path("absent.bin"), &t, &err) == SL_ERR_IO, "a missing file: %s", err.msg);
}

/* Words merge on their own only while no piece could join across them:
 * here "a b" (stored "a▁b") can, so "▁xa▁b" must end in it. */
static void test_spm_across_words(void)
{
	static const char *const pieces[] = {"<unk>", "<s>", "</s>", "x", "a", "b", " ", " b", "a b"};
	static const float scores[] = {0, 0, 0, 0, 0, 0, 0, 1, 10};
	uint8_t d[256];
	int32_t max = 3;
	memcpy(d, &max, 4);
	size_t n = 4;
	for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
		n += put_record(d + n, scores[i], (int32_t)strlen(pieces[i]), pieces[i]);
	sl_tokenizer *t;
	sl_error err = {0};
	REQUIRE(sl_tok_load_llama2c(write_bytes("across.bin", d, n), 0, &t, &err) == SL_OK, "across.bin: %s", err.msg);
	static const int32_t want[] = {6, 3, 8};
	check_ids(t, "xa b", false, want, 3);
	sl_tok_free(t);
}

/* Writes root to name and loads it as a tokenizer.json. */
static sl_status load_json(const char *name, cJSON *root, sl_tokenizer **t, sl_error *err, const char **path)
{
	char *s = cJSON_PrintUnformatted(root);
	*path = write_bytes(name, s, strlen(s));
	free(s);
	cJSON_Delete(root);
	return sl_tok_load_hf(*path, t, err);
}

typedef struct {
	float score;
	int32_t order, l, r;
} merge;

/* Higher score first; the order of discovery among equals. */
static int by_score(const void *a, const void *b)
{
	const merge *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* A tokenizer.json holding a GGUF vocabulary: byte-level with merges
 * (alternately "a b" and ["a", "b"]) or, for a SentencePiece vocabulary,
 * merges derived from the scores as Hugging Face's converter derives them,
 * with the spaces marked by a Metaspace pre-tokenizer or by normalizers. */
static cJSON *json_from(const sl_tokenizer *g, bool metaspace)
{
	cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
	cJSON_AddStringToObject(model, "type", "BPE");
	cJSON *vocab = cJSON_AddObjectToObject(model, "vocab"), *merges = cJSON_AddArrayToObject(model, "merges");
	cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
	int n = sl_tok_n_vocab(g);
	for (int32_t id = 0; id < n; id++) {
		int ty = sl_tok_type(g, id);
		if (ty == SL_TOKEN_CONTROL || ty == SL_TOKEN_UNKNOWN || ty == SL_TOKEN_USER_DEFINED) {
			cJSON *a = cJSON_CreateObject();
			cJSON_AddNumberToObject(a, "id", id);
			cJSON_AddStringToObject(a, "content", sl_tok_piece(g, id));
			cJSON_AddBoolToObject(a, "special", ty != SL_TOKEN_USER_DEFINED);
			cJSON_AddItemToArray(added, a);
		}
		cJSON_AddNumberToObject(vocab, sl_tok_piece(g, id), id);
	}
	if (sl_tok_kind_of(g) == SL_TOK_BPE) {
		for (size_t i = 0; i < sl_tok_n_merges(g); i++) {
			int32_t l, r;
			sl_tok_merge(g, i, &l, &r);
			if (i % 2) {
				const char *pair[2] = {sl_tok_piece(g, l), sl_tok_piece(g, r)};
				cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
			} else {
				char buf[512];
				snprintf(buf, sizeof buf, "%s %s", sl_tok_piece(g, l), sl_tok_piece(g, r));
				cJSON_AddItemToArray(merges, cJSON_CreateString(buf));
			}
		}
		cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
		cJSON_AddStringToObject(pre, "type", "ByteLevel");
		cJSON_AddBoolToObject(pre, "add_prefix_space", false);
		return root;
	}
	/* Every split of every piece into two pieces, pieces by descending
	 * score, splits by the ids of their halves. */
	size_t cap = 1 << 16, nm = 0;
	merge *m = malloc(cap * sizeof *m);
	for (int32_t id = 0; id < n; id++) {
		const char *s = sl_tok_piece(g, id);
		size_t len = strlen(s);
		if (sl_tok_type(g, id) != SL_TOKEN_NORMAL)
			continue;
		size_t first = nm;
		for (size_t k = 1; k < len; k++) {
			int32_t l = sl_tok_find(g, s, k), r = sl_tok_find(g, s + k, len - k);
			if (l < 0 || r < 0)
				continue;
			if (nm == cap)
				m = realloc(m, (cap *= 2) * sizeof *m);
			m[nm++] = (merge){sl_tok_score(g, id), 0, l, r};
		}
		for (size_t i = first + 1; i < nm; i++)
			for (size_t j = i; j > first && (m[j].l < m[j - 1].l || (m[j].l == m[j - 1].l && m[j].r < m[j - 1].r)); j--) {
				merge x = m[j];
				m[j] = m[j - 1];
				m[j - 1] = x;
			}
	}
	for (size_t i = 0; i < nm; i++)
		m[i].order = (int32_t)i;
	qsort(m, nm, sizeof *m, by_score);
	for (size_t i = 0; i < nm; i++) {
		char buf[512];
		snprintf(buf, sizeof buf, "%s %s", sl_tok_piece(g, m[i].l), sl_tok_piece(g, m[i].r));
		cJSON_AddItemToArray(merges, cJSON_CreateString(buf));
	}
	free(m);
	cJSON_AddBoolToObject(model, "byte_fallback", true);
	cJSON_AddStringToObject(model, "unk_token", "<unk>");
	if (metaspace) {
		/* Mistral's way: a pre-tokenizer puts the "▁"s in. */
		cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
		cJSON_AddStringToObject(pre, "type", "Metaspace");
		cJSON_AddStringToObject(pre, "replacement", "\xe2\x96\x81");
		cJSON_AddStringToObject(pre, "prepend_scheme", "first");
		cJSON_AddBoolToObject(pre, "split", false);
		return root;
	}
	/* Llama 2's way: a normalizer does. */
	cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
	cJSON_AddStringToObject(norm, "type", "Sequence");
	cJSON *list = cJSON_AddArrayToObject(norm, "normalizers");
	cJSON *prepend = cJSON_CreateObject(), *replace = cJSON_CreateObject();
	cJSON_AddStringToObject(prepend, "type", "Prepend");
	cJSON_AddStringToObject(prepend, "prepend", "\xe2\x96\x81");
	cJSON_AddStringToObject(replace, "type", "Replace");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(replace, "pattern"), "String", " ");
	cJSON_AddStringToObject(replace, "content", "\xe2\x96\x81");
	cJSON_AddItemToArray(list, prepend);
	cJSON_AddItemToArray(list, replace);
	return root;
}

static void test_hf_from(const char *vocab, bool metaspace)
{
	char rel[256];
	snprintf(rel, sizeof rel, "tokenizers/ggml-vocab-%s.gguf", vocab);
	sl_tokenizer *g = load(rel), *t;
	if (!g)
		return;
	sl_error err = {0};
	const char *path;
	char name[128];
	snprintf(name, sizeof name, "%s%s.json", vocab, metaspace ? "-metaspace" : "");
	sl_status st = load_json(name, json_from(g, metaspace), &t, &err, &path);
	CHECK(st == SL_OK, "%s: %s", name, err.msg);
	if (st == SL_OK) {
		char what[160];
		snprintf(what, sizeof what, "%s as %s", vocab, name);
		int total, pass = run_vectors(t, vocab, what, &total);
		CHECK(pass == total && total == 46, "%s: %d/%d", what, pass, total);
		CHECK(sl_tok_kind_of(t) == sl_tok_kind_of(g) && strcmp(sl_tok_pre_name(t), "tokenizer.json") == 0,
		      "%s: kind", what);
		sl_tok_free(t);
		/* The same file found by its content. */
		st = sl_tok_load_file(path, &t, &err);
		CHECK(st == SL_OK && sl_tok_n_vocab(t) == sl_tok_n_vocab(g), "%s by content: %s", name, err.msg);
		if (st == SL_OK)
			sl_tok_free(t);
		remove(path);
	}
	sl_tok_free(g);
}

static cJSON *tiny_json(void)
{
	return cJSON_Parse("{\"added_tokens\":[{\"id\":5,\"content\":\"<mask>\",\"special\":false,\"lstrip\":true},"
	                   "{\"id\":6,\"content\":\"<eos>\",\"special\":true}],"
	                   "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
	                   "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{N}\"},\"behavior\":\"Isolated\"},"
	                   "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},"
	                   "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\xc4\xa0\":3,\"1\":4},"
	                   "\"merges\":[\"a b\"],\"continuing_subword_prefix\":\"\",\"end_of_word_suffix\":null}}");
}

static void test_hf_hostile(void)
{
	sl_tokenizer *t;
	sl_error err = {0};
	const char *p;
	/* A small valid one first: user-defined tokens, lstrip, splits. */
	sl_status st = load_json("tiny.json", tiny_json(), &t, &err, &p);
	CHECK(st == SL_OK, "tiny.json: %s", err.msg);
	if (st == SL_OK) {
		static const int32_t want[] = {2, 5, 3, 2, 4, 4};
		check_ids(t, "ab <mask> ab11", false, want, 6);
		CHECK(sl_tok_eos(t) == -1 && sl_tok_type(t, 6) == SL_TOKEN_CONTROL, "tiny.json specials");
		sl_tok_free(t);
	}

	p = write_bytes("truncated.json", "{\"model\": {\"vocab\": {\"a\"", 23);
	check_refused(sl_tok_load_hf(p, &t, &err), SL_ERR_FORMAT, &err, p, "not valid JSON");
	check_refused(sl_tok_load_file(p, &t, &err), SL_ERR_FORMAT, &err, p, "not valid JSON");
	p = write_bytes("array.json", "[1, 2]", 6);
	check_refused(sl_tok_load_hf(p, &t, &err), SL_ERR_FORMAT, &err, p, "not a tokenizer.json");

	static const struct {
		const char *name, *path, *value, *what;
		sl_status st;
	} bad[] = {
		{"wordpiece.json", "model.type", "\"WordPiece\"", "WordPiece", SL_ERR_UNSUPPORTED},
		{"novocab.json", "model.vocab", "[]", "model.vocab", SL_ERR_FORMAT},
		{"strid.json", "model.vocab.b", "\"one\"", "not a token id", SL_ERR_FORMAT},
		{"negid.json", "model.vocab.b", "-4", "not a token id", SL_ERR_FORMAT},
		{"hugeid.json", "model.vocab.b", "1e12", "not a token id", SL_ERR_FORMAT},
		{"dupid.json", "model.vocab.b", "0", "id 0 twice", SL_ERR_FORMAT},
		{"wordprefix.json", "model.continuing_subword_prefix", "\"##\"", "word prefixes", SL_ERR_UNSUPPORTED},
		{"merge.json", "model.merges", "[\"a zz\"]", "merge 0", SL_ERR_FORMAT},
		{"merge-num.json", "model.merges", "[7]", "merges[0]", SL_ERR_FORMAT},
		{"regex.json", "pre_tokenizer.pretokenizers", "[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a|\"},"
		 "\"behavior\":\"Isolated\"},{\"type\":\"ByteLevel\"}]", "missing closing parenthesis", SL_ERR_FORMAT},
		{"removed.json", "pre_tokenizer", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Removed\"}",
		 "Isolated", SL_ERR_UNSUPPORTED},
		{"bert.json", "pre_tokenizer", "{\"type\":\"BertPreTokenizer\"}", "BertPreTokenizer", SL_ERR_UNSUPPORTED},
		{"nopre.json", "pre_tokenizer", "null", "either byte-level", SL_ERR_UNSUPPORTED},
		{"added.json", "added_tokens", "[{\"id\":3}]", "added_tokens", SL_ERR_FORMAT},
		{"added-id.json", "added_tokens", "[{\"id\":99999999999,\"content\":\"x\"}]", "added_tokens", SL_ERR_FORMAT},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cJSON *root = tiny_json(), *at = root;
		char key[64];
		snprintf(key, sizeof key, "%s", bad[i].path);
		char *dot, *part = key;
		while ((dot = strchr(part, '.'))) {
			*dot = 0;
			at = cJSON_GetObjectItem(at, part);
			part = dot + 1;
		}
		cJSON *v = cJSON_Parse(bad[i].value);
		if (cJSON_GetObjectItem(at, part))
			cJSON_ReplaceItemInObject(at, part, v);
		else
			cJSON_AddItemToObject(at, part, v);
		st = load_json(bad[i].name, root, &t, &err, &p);
		check_refused(st, bad[i].st, &err, p, bad[i].what);
	}
}

/* Splits text with the given patterns in turn: the pieces joined by '|',
 * or the error. */
static char *split(const char *const *patterns, const char *text)
{
	size_t len = strlen(text);
	sl_split_pattern *pats[8] = {0};
	size_t n_pats = 0, *ends = NULL, n_ends = 0;
	sl_error err;
	char *out = NULL;
	for (; patterns[n_pats] && !out; n_pats++) {
		if (n_pats == 8)
			out = sl_strdup("more than 8 patterns");
		else if (sl_split_compile(patterns[n_pats], strlen(patterns[n_pats]), &pats[n_pats], &err) != SL_OK)
			out = sl_strdup(err.msg);
	}
	if (!out && sl_split_text(pats, n_pats, text, len, &ends, &n_ends, &err) != SL_OK)
		out = sl_strdup(err.msg);
	for (size_t i = 0; i < n_pats && i < 8; i++)
		sl_split_free(pats[i]);
	if (out)
		return out;
	char *d = out = malloc(2 * len + 2);
	for (size_t i = 0, from = 0; i < n_ends; from = ends[i++]) {
		if (i)
			*d++ = '|';
		memcpy(d, text + from, ends[i] - from);
		d += ends[i] - from;
	}
	*d = 0;
	free(ends);
	return out;
}

static void check_split(const char *pre, const char *text, const char *want)
{
	const sl_tok_pre_type *pt = sl_tok_pre_lookup(pre);
	REQUIRE(pt, "no pre-tokenizer %s", pre);
	char *got = split(pt->patterns, text);
	CHECK(strcmp(got, want) == 0, "%s on \"%s\":\n  expected %s\n  got      %s", pre, text, want, got);
	free(got);
}

static void check_pattern(const char *pattern, const char *text, const char *want)
{
	const char *const list[] = {pattern, NULL};
	char *got = split(list, text);
	CHECK(strcmp(got, want) == 0, "/%s/ on \"%s\":\n  expected %s\n  got      %s", pattern, text, want, got);
	free(got);
}

static void check_bad_pattern(const char *pattern, const char *what)
{
	sl_split_pattern *p;
	sl_error err = {0};
	sl_status st = sl_split_compile(pattern, strlen(pattern), &p, &err);
	CHECK(st == SL_ERR_FORMAT && strstr(err.msg, what), "/%s/: expected an error saying \"%s\", got \"%s\"",
	      pattern, what, st == SL_OK ? "success" : err.msg);
	if (st == SL_OK)
		sl_split_free(p);
}

static void test_pre_tokenizers(void)
{
	/* Every name llama.cpp knows resolves, and its patterns compile. */
	static const char *const names[] = {
		"default", "llama3", "llama-v3", "llama-bpe", "falcon3", "deepseek-llm", "deepseek-coder",
		"deepseek-v3", "falcon", "mpt", "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat",
		"jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "refact", "command-r",
		"qwen2", "deepseek-r1-qwen", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "chatglm-bpe",
		"viking", "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "chameleon",
		"minerva-7b", "megrez",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const sl_tok_pre_type *pt = sl_tok_pre_lookup(names[i]);
		CHECK(pt, "pre-tokenizer %s is unknown", names[i]);
		for (const char *const *p = pt ? pt->patterns : NULL; p && *p; p++) {
			sl_split_pattern *sp;
			sl_error err;
			CHECK(sl_split_compile(*p, strlen(*p), &sp, &err) == SL_OK, "%s: %s", names[i], err.msg);
			sl_split_free(sp);
		}
	}
	CHECK(!sl_tok_pre_lookup("llama") && !sl_tok_pre_lookup("") && !sl_tok_pre_lookup("bpe"),
	      "names match whole");

	check_split("gpt-2", "Hello, world!  It's 2024.", "Hello|,| world|!| | It|'s| 2024|.");
	check_split("gpt-2", "a   b\n\nc  ", "a|  | b|\n|\n|c|  ");
	check_split("llama-bpe", "I'M sure 12345 apples\r\n\n  x", "I|'M| sure| |123|45| apples|\r\n\n| | x");
	check_split("qwen2", "x=12345;", "x|=|1|2|3|4|5|;");
	check_split("starcoder", "v2 = 345", "v|2| =| |3|4|5");
	check_split("default", "3333 x+=1", "333|3| x|+=|1");
	check_split("falcon", "3333 x+=1", "333|3| x|+=|1");
	/* Its punctuation split (!-/:-~) takes ASCII letters too: a word
	 * with other letters falls apart, in the original tokenizer as here. */
	check_split("deepseek-llm", "Hello wörld 123\n", "Hello| w|ö|rld| |123|\n");
	check_split("deepseek-llm", " x  1  ", " x|  |1|  ");
	check_split("tekken", "HelloWorld ABCdef", "Hello|World| ABCdef");
	check_split("bloom", "Hi, you. ok", "Hi|,| you|.| ok");

	check_pattern("\\s+$", "a  b  ", "a  b|  ");
	check_pattern("^a", "aaa", "a|aa");
	check_pattern("a(?=b)", "aab ab", "a|a|b |a|b");
	check_pattern("(?i:ab)+", "xAbaBy", "x|AbaB|y");
	check_pattern("[^a-c]", "abcd", "abc|d");
	check_pattern("[\\p{Lu}]+", "abCDe", "ab|CD|e");
	check_pattern("\\P{L}+", "ab12cd", "ab|12|cd");
	check_pattern("a{2,3}?", "aaaa", "aa|aa");
	/* $ is the end of the piece only, not before a final newline. */
	check_pattern("a$", "aa\n", "aa\n");
	/* Empty matches cut nothing; the search goes on a character later. */
	check_pattern("a*", "baab", "b|aa|b");
	check_pattern("x*", "ab\xc3\xa9", "ab\xc3\xa9");
	/* What PCRE2 brings: lookbehind, atomic groups (no backtracking into
	 * them), possessive repeats, \d by Unicode. */
	check_pattern("(?<=a)b", "abcb", "a|b|cb");
	check_pattern("(?>a+)a|b", "aab", "aa|b");
	check_pattern("\\p{L}++", "ab12cd", "ab|12|cd");
	check_pattern("\\d+", "x12\xd9\xa3y", "x|12\xd9\xa3|y");
	/* Bytes that are not UTF-8 match as U+FFFD (a symbol, \p{So}), one
	 * each, and the pieces keep the bytes. */
	check_pattern("\\p{L}+", "ab\xff\xfe" "cd", "ab|\xff\xfe|cd");
	check_pattern("[^a]", "a\xe2\x82", "a|\xe2|\x82");
	check_pattern("\\p{So}+", "\xc3\x28\xc3\xa9\xef\xbf\xbd\xf0\x9f", "\xc3|(\xc3\xa9|\xef\xbf\xbd\xf0\x9f");
	check_split("gpt-2", "x \xc3\x28 y\xff", "x| \xc3(| y|\xff");
	/* \s is Unicode's White_Space, as in the tokenizers' engines: U+0085
	 * is one, U+180E (a space to PCRE2) and U+200B are not. */
	check_pattern("\\s+", "a\xc2\x85\xe1\xa0\x8e\xe2\x80\x8b b", "a|\xc2\x85|\xe1\xa0\x8e\xe2\x80\x8b| |b");
	check_split("gpt-2", "a\xe1\xa0\x8e!", "a|\xe1\xa0\x8e!");
	/* Contractions fold ASCII case only, as llama.cpp's do: "'ſ" is not
	 * "'s". */
	check_split("llama-bpe", "it'\xc5\xbf" "a it'S", "it|'\xc5\xbf" "a| it|'S");
	check_split("qwen2", "it'\xc5\xbf" "a it'S", "it|'\xc5\xbf" "a| it|'S");

	/* A text too long for the JIT's stack is matched by the interpreter. */
	size_t reps = 20000;
	char *ab = malloc(2 * reps + 2);
	for (size_t i = 0; i < reps; i++)
		memcpy(ab + 2 * i, "ab", 2);
	memcpy(ab + 2 * reps, "c", 2);
	const char *const alt[] = {"(?:a|b)+c", NULL};
	char *got = split(alt, ab);
	CHECK(strcmp(got, ab) == 0, "(?:a|b)+c on %zu bytes: \"%.60s\"", 2 * reps + 1, got);
	free(got);
	free(ab);
	/* Trailing spaces cost linear time, with the JIT or without: a run of
	 * spaces that does not end its piece is not searched from each. */
	size_t n_sp = 100000;
	char *spaces = malloc(n_sp + 2);
	memset(spaces, ' ', n_sp);
	memcpy(spaces + n_sp, "1", 2);
	const sl_tok_pre_type *ds = sl_tok_pre_lookup("deepseek-llm");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	got = split(ds->patterns, spaces);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	CHECK(strlen(got) == n_sp + 2 && got[n_sp] == '|' && secs < 10, "deepseek-llm on %zu spaces and a digit: "
	      "%.1f s, \"%.40s\"", n_sp, secs, got);
	free(got);
	free(spaces);
	/* A match that backtracks without end is cut off with an error. */
	const char *const costly[] = {"(\\p{L}+)+\\p{N}", NULL};
	got = split(costly, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
	CHECK(strstr(got, "pattern 0 failed on this text at byte 0: match limit exceeded"), "costly pattern: %s", got);
	free(got);

	check_bad_pattern("(ab", "pattern offset 3: missing closing parenthesis");
	check_bad_pattern("ab)", "unmatched closing parenthesis");
	check_bad_pattern("[z-a]", "range out of order");
	check_bad_pattern("[ab", "missing terminating ]");
	check_bad_pattern("a{3,1}", "numbers out of order");
	check_bad_pattern("a{70000}", "number too big");
	check_bad_pattern("\\p{Xx}", "unknown property");
	check_bad_pattern("*a", "quantifier does not follow a repeatable item");
	check_bad_pattern("a\\Cb", "\\C is disabled");
	check_bad_pattern("a\xff", "UTF-8 error");
}

/* Vocabularies are read often (every model load): time the largest. */
static void test_load_time(void)
{
	const char *path = test_fixture("tokenizers/ggml-vocab-deepseek-llm.gguf");
	if (!path)
		return;
	double best = 1e9;
	for (int i = 0; i < 3; i++) {
		struct timespec a, b;
		sl_tokenizer *t;
		clock_gettime(CLOCK_MONOTONIC, &a);
		sl_status st = sl_tok_load_file(path, &t, NULL);
		clock_gettime(CLOCK_MONOTONIC, &b);
		REQUIRE(st == SL_OK, "load");
		sl_tok_free(t);
		double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		best = ms < best ? ms : best;
	}
	printf("deepseek-llm (102400 tokens, 99757 merges) loads in %.1f ms\n", best);
}

static void test_all_vectors(const char *how)
{
	static const char *const with_vectors[] = {"deepseek-llm", "falcon", "gpt-2", "llama-spm", "phi-3"};
	vectors_passed = vectors_total = 0;
	for (size_t i = 0; i < sizeof with_vectors / sizeof with_vectors[0]; i++)
		test_vectors(with_vectors[i]);
	if (vectors_total)
		printf("llama.cpp vectors, %s: %d/%d match\n", how, vectors_passed, vectors_total);
}

int main(void)
{
	test_all_vectors("PCRE2 JIT where it works");

	static const struct {
		const char *rel;
		bool all_bytes;
	} others[] = {
		{"tokenizers/ggml-vocab-baichuan.gguf", true},      {"tokenizers/ggml-vocab-deepseek-coder.gguf", false},
		{"tokenizers/ggml-vocab-gpt-neox.gguf", false},     {"tokenizers/ggml-vocab-mpt.gguf", false},
		{"tokenizers/ggml-vocab-refact.gguf", false},       {"tokenizers/ggml-vocab-starcoder.gguf", false},
		{"tokenizers/ggml-vocab-deepseek-llm.gguf", false}, {"tokenizers/ggml-vocab-falcon.gguf", false},
		{"tokenizers/ggml-vocab-gpt-2.gguf", true},         {"tokenizers/ggml-vocab-llama-spm.gguf", true},
		{"tokenizers/ggml-vocab-phi-3.gguf", true},         {"tokenizers/llama2c-tokenizer-32000.bin", true},
		{"models/tok512.bin", true},                        {"models/stories260K.gguf", true},
	};
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
		test_round_trips(others[i].rel, others[i].all_bytes);

	test_llama2c_reference();
	test_gguf_facts();
	test_hf_from("gpt-2", false);
	test_hf_from("llama-spm", false);
	test_hf_from("llama-spm", true);
	test_pre_tokenizers();
	test_gguf_hostile();
	test_llama2c_hostile();
	test_spm_across_words();
	test_hf_hostile();
	test_load_time();

	/* PCRE2's interpreter, where the JIT is missing, splits the same. */
	setenv("SL_NO_JIT", "1", 1);
	test_all_vectors("PCRE2 interpreter");
	test_pre_tokenizers();
	unsetenv("SL_NO_JIT");
	return test_finish();
}
