/* A small test harness: CHECK records failures and goes on, fixtures are
 * found through $SL_FIXTURES, and a test with nothing to run exits 77 so
 * automake reports SKIP with the printed reason. */
#ifndef SL_TEST_H
#define SL_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model.h"

static int test_failures;
static int test_checks;

/* Evaluates cond once; returns whether it held. */
#define TEST_EVAL(cond, ...)                                                    \
	({                                                                      \
		int test_ok_ = !!(cond);                                        \
		test_checks++;                                                  \
		if (!test_ok_) {                                                \
			test_failures++;                                        \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
		test_ok_;                                                       \
	})

#define CHECK(cond, ...) ((void)TEST_EVAL(cond, __VA_ARGS__))

/* Aborts the current test function (not the program) when cond fails. */
#define REQUIRE(cond, ...)                                                      \
	do {                                                                    \
		if (!TEST_EVAL(cond, __VA_ARGS__))                              \
			return;                                                 \
	} while (0)

#define CHECK_NEAR(a, b, tol, what)                                             \
	CHECK(fabs((double)(a) - (double)(b)) <= (tol), "%s: %.9g vs %.9g (tol %g)", \
	      what, (double)(a), (double)(b), (double)(tol))

/* Path of a fixture, or NULL (with the reason printed once) when absent. */
static inline const char *test_fixture(const char *rel)
{
	static char buf[8][4096];
	static int slot;
	const char *root = getenv("SL_FIXTURES");
	if (!root || !*root)
		root = "../shared/fixtures";
	char *p = buf[slot++ % 8];
	snprintf(p, 4096, "%s/%s", root, rel);
	if (access(p, R_OK) != 0) {
		printf("SKIP: fixture %s is absent (set SL_FIXTURES to the fixtures folder)\n", p);
		return NULL;
	}
	return p;
}

/* A path in the source tree ($SL_SRCDIR, else "."). */
static inline const char *test_srcpath(const char *rel)
{
	static char buf[4][4096];
	static int slot;
	const char *root = getenv("SL_SRCDIR");
	char *p = buf[slot++ % 4];
	snprintf(p, 4096, "%s/%s", root && *root ? root : ".", rel);
	return p;
}

/* A scratch directory unique to this test run. */
static inline const char *test_tmpdir(void)
{
	static char dir[256];
	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/sltest.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(99);
		}
	}
	return dir;
}

/* Loads a model, counting a failure (with the message) when it does not. */
static inline sl_model *test_load(const char *path)
{
	sl_error err = {0};
	sl_model *m = NULL;
	CHECK(sl_model_load(path, NULL, &m, &err) == SL_OK, "load %s: %s", path, err.msg);
	return m;
}

/* Deterministic random numbers: uniform in [0, 1) from a xorshift64
 * state, and standard normal deviates (Box-Muller) from the same. */
static inline double test_uniform(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (double)(*s >> 11) / 9007199254740992.0;
}

static inline float test_gauss(uint64_t *s)
{
	double u1 = test_uniform(s), u2 = test_uniform(s);
	if (u1 < 1e-12)
		u1 = 1e-12;
	return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

/* H = X^T X / T of T rows of n inputs, in double sums (malloc'ed). */
static inline float *test_hessian(const float *X, int n, int T)
{
	float *H = calloc((size_t)n * n, sizeof *H);
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++) {
			double s = 0;
			for (int t = 0; t < T; t++)
				s += (double)X[(size_t)t * n + a] * X[(size_t)t * n + b];
			H[(size_t)a * n + b] = (float)(s / T);
		}
	return H;
}

/* CI runs every test three times: in the normal build, on the portable
 * kernels (SL_NO_AVX2) and in a sanitizer build, where the engine is
 * several times slower (tests/light.sh says the same for the scripts).
 * There a test may run a smaller real case of a check whose figures the
 * normal build asserts: test_light() says whether, test_light_note()
 * prints what was left out and why. The build knows whether it has
 * AddressSanitizer (GCC defines __SANITIZE_ADDRESS__). */
static inline int test_light(void)
{
#ifdef __SANITIZE_ADDRESS__
	return 1;
#else
	const char *s = getenv("SL_NO_AVX2");
	return s && *s;
#endif
}

#define test_light_note(...)                                                     \
	do {                                                                    \
		printf("note: a sanitizer or portable-kernel build: ");         \
		printf(__VA_ARGS__);                                            \
		putchar('\n');                                                  \
	} while (0)

/* Ends main: 0 when all passed, 1 on failure, 77 (skip) when nothing ran. */
static inline int test_finish(void)
{
	printf("%d checks, %d failed\n", test_checks, test_failures);
	if (test_failures)
		return 1;
	return test_checks ? 0 : 77;
}

#endif
