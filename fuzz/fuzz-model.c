/* libFuzzer: a model file (GGUF or llama2.c checkpoint) loaded as a user's
 * would be, and, when it loads, one forward step. */
#include <stdint.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A tokenizer beside llama2.c checkpoints is not needed to reach the
	 * header and weight checks; the loader reports its absence. */
	fuzz_load_and_step(fuzz_file(data, size, ".bin"));
	return 0;
}
