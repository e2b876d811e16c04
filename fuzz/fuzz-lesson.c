/* libFuzzer: lesson files, every goal described and the handout written
 * of what parses. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "sessions/lesson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sl_lesson *l = NULL;
	sl_error err;
	if (sl_lesson_parse((const char *)data, size, "fuzz.json", NULL, &l, &err) != SL_OK)
		return 0;
	char goal[1024];
	for (int i = 0; i < l->n_steps; i++)
		sl_goal_describe(&l->steps[i].goal, goal, sizeof goal);
	free(sl_lesson_handout(l));
	sl_lesson_free(l);
	return 0;
}
