/* SHA-256 against the FIPS 180-4 / NIST example vectors, fed whole and in
 * uneven pieces, and the file hash against the in-memory one. */
#include <stdint.h>

#include "core/sha256.h"
#include "test.h"

static void hex_of(const void *data, size_t len, char out[65])
{
	uint8_t d[32];
	sl_sha256(data, len, d);
	sl_sha256_hex(d, out);
}

static void test_vectors(void)
{
	static const struct {
		const char *msg, *hex;
	} v[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
		{"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
		 "nopqrstu",
		 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char h[65];
		hex_of(v[i].msg, strlen(v[i].msg), h);
		CHECK(!strcmp(h, v[i].hex), "vector %zu: %s, expected %s", i, h, v[i].hex);
	}
}

/* One million 'a', in pieces whose sizes cross every block boundary case. */
static void test_million_a(void)
{
	static char a[1000000];
	memset(a, 'a', sizeof a);
	sl_sha256_ctx c;
	sl_sha256_init(&c);
	size_t done = 0, step = 1;
	while (done < sizeof a) {
		size_t n = step < sizeof a - done ? step : sizeof a - done;
		sl_sha256_update(&c, a + done, n);
		done += n;
		step = step * 7 % 131 + 1;
	}
	uint8_t d[32];
	char h[65];
	sl_sha256_final(&c, d);
	sl_sha256_hex(d, h);
	CHECK(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a: %s", h);
}

/* Lengths around the padding boundary (55, 56, 63, 64, 65 bytes) give the
 * same digest whole and byte by byte. */
static void test_pieces(void)
{
	char msg[200];
	for (int i = 0; i < (int)sizeof msg; i++)
		msg[i] = (char)(i * 31 + 7);
	for (size_t len = 0; len <= sizeof msg; len++) {
		uint8_t whole[32], bytes[32];
		sl_sha256(msg, len, whole);
		sl_sha256_ctx c;
		sl_sha256_init(&c);
		for (size_t i = 0; i < len; i++)
			sl_sha256_update(&c, msg + i, 1);
		sl_sha256_final(&c, bytes);
		CHECK(!memcmp(whole, bytes, 32), "length %zu: byte-wise digest differs", len);
	}
}

static void test_file(void)
{
	char path[512];
	snprintf(path, sizeof path, "%s/blob", test_tmpdir());
	FILE *f = fopen(path, "wb");
	REQUIRE(f, "cannot create %s", path);
	static char data[3 << 20];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)(i ^ (i >> 9));
	fwrite(data, 1, sizeof data, f);
	fclose(f);
	uint8_t a[32], b[32];
	sl_sha256(data, sizeof data, a);
	sl_error err = {0};
	CHECK(sl_sha256_file(path, NULL, b, &err) == SL_OK, "%s", err.msg);
	CHECK(!memcmp(a, b, 32), "file digest differs from the in-memory one");
	atomic_int cancel = 1;
	sl_progress p = {NULL, NULL, &cancel};
	CHECK(sl_sha256_file(path, &p, b, &err) == SL_ERR_CANCELLED, "a raised cancel flag stops hashing");
	CHECK(sl_sha256_file("/nonexistent/x", NULL, b, &err) == SL_ERR_IO && strstr(err.msg, "/nonexistent/x"),
	      "a missing file is named: %s", err.msg);
	unlink(path);
}

int main(void)
{
	test_vectors();
	test_million_a();
	test_pieces();
	test_file();
	rmdir(test_tmpdir());
	return test_finish();
}
