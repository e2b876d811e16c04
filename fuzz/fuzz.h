/* Shared by the libFuzzer harnesses: parsers that read files get the
 * input through a temporary file, as a user's file would reach them. */
#ifndef SL_FUZZ_H
#define SL_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes the input to a per-process file with the given suffix; returns
 * its path (static storage). */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
	static char path[256];
	snprintf(path, sizeof path, "/tmp/slimlab-fuzz-%ld%s", (long)getpid(), suffix);
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, size, 1, f) != 1)
		abort();
	fclose(f);
	return path;
}

#endif
