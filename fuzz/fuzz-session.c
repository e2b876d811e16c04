/* libFuzzer: session files, and a round trip of what parses. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "sessions/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sl_session *s = NULL;
	sl_error err;
	if (sl_session_parse((const char *)data, size, "fuzz.json", &s, &err) != SL_OK)
		return 0;
	const char *path = fuzz_file(NULL, 0, ".session");
	if (sl_session_write(s, path, false, &err) == SL_OK) {
		sl_session *again = NULL;
		if (sl_session_load(path, &again, &err) != SL_OK)
			abort(); /* what slimlab writes, slimlab reads back */
		sl_session_free(again);
	}
	sl_session_free(s);
	return 0;
}
