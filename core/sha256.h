/* SHA-256 (FIPS 180-4): sessions record the hash of the model they were
 * made with, so a session is never replayed on different weights. */
#ifndef SL_SHA256_H
#define SL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "progress.h"

typedef struct {
	uint32_t h[8];
	uint64_t n_bytes;
	uint8_t buf[64];
	size_t n_buf;
} sl_sha256_ctx;

void sl_sha256_init(sl_sha256_ctx *c);
void sl_sha256_update(sl_sha256_ctx *c, const void *data, size_t len);
void sl_sha256_final(sl_sha256_ctx *c, uint8_t digest[32]);
/* digest as 64 lower-case hex digits and a NUL. */
void sl_sha256_hex(const uint8_t digest[32], char hex[65]);
void sl_sha256(const void *data, size_t len, uint8_t digest[32]);

/* Hashes a whole file, reporting progress and honouring cancellation
 * (p may be NULL). */
sl_status sl_sha256_file(const char *path, const sl_progress *p, uint8_t digest[32], sl_error *err);

#endif
