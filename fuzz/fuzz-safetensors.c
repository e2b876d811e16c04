/* libFuzzer: a Hugging Face model folder (the safetensors header, config.json
 * and tokenizer.json, split from one input as fuzz.h says) loaded as a
 * user's would be, and, when it loads, one forward step. */
#include <stdint.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_load_and_step(fuzz_safetensors_dir(data, size));
	return 0;
}
