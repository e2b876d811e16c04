/* libFuzzer: recipe JSON, then the checks, resolution and serialization of
 * what parses, and a reparse of that serialization. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sl_recipe *r = NULL;
	sl_error err;
	if (sl_recipe_parse((const char *)data, size, &r, &err) != SL_OK)
		return 0;
	sl_recipe_issue issues[8];
	sl_recipe_check(r, NULL, issues, 8);
	sl_module mod = {.name = "blk.3.ffn_down", .layer = 3, .kind = SL_MOD_FFN_DOWN};
	sl_module_plan plan;
	sl_recipe_resolve(r, &mod, &plan);
	char *js = sl_recipe_to_json(r);
	sl_recipe *again = NULL;
	/* What slimlab writes, slimlab reads back. */
	if (js && sl_recipe_parse(js, strlen(js), &again, &err) != SL_OK)
		abort();
	free(js);
	sl_recipe_free(again);
	sl_recipe_free(r);
	return 0;
}
