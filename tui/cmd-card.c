/* slimlab card [KIND] NAME, slimlab card --list: the technique cards the
 * workbench's ? shows, as Markdown (for handouts) or JSON. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "core/card.h"

static const char card_usage[] =
	"Usage: slimlab card [KIND] NAME [--json]\n"
	"       slimlab card --list [--json]\n"
	"Prints a technique's card (what it does, its formula, what to watch in the\n"
	"workbench, a common pitfall, its paper) as Markdown, or every card's kind,\n"
	"name and title. KIND is format, method, prune, pattern, heal, metric or\n"
	"speculate; NAME as recipes and commands spell it (a pattern also by the\n"
	"names it takes, 2:4); without KIND, the first kind that knows NAME.\n"
	"  --list   every card, one line each: kind, name, title\n"
	"  --json   print JSON\n";

static cJSON *card_json(sl_card_kind kind, const char *name, const sl_card *c)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", sl_card_kind_name(kind));
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "title", c->title);
	cJSON_AddStringToObject(o, "what", c->what);
	cJSON_AddStringToObject(o, "formula", c->formula);
	cJSON_AddStringToObject(o, "watch", c->watch);
	cJSON_AddStringToObject(o, "pitfall", c->pitfall);
	cJSON_AddStringToObject(o, "paper", c->paper);
	return o;
}

static int list(bool json)
{
	cJSON *a = json ? cJSON_CreateArray() : NULL;
	sl_card_entry e;
	for (int i = 0; sl_card_at(i, &e); i++) {
		if (a)
			cJSON_AddItemToArray(a, card_json(e.kind, e.name, e.card));
		else
			printf("%-10s %-14s %s\n", sl_card_kind_name(e.kind), e.name, e.card->title);
	}
	if (a)
		cli_print_json(a);
	return CLI_OK;
}

int sl_cmd_card(int argc, char **argv)
{
	static const struct option opts[] = {
		{"list", no_argument, 0, 'l'},
		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	bool json = false, all = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': all = true; break;
		case 'j': json = true; break;
		case 'h': fputs(card_usage, stdout); return CLI_OK;
		default: return cli_usage_error("card", "unknown option");
		}
	}
	int left = argc - optind;
	if (all)
		return left ? cli_usage_error("card", "--list takes no NAME") : list(json);
	if (left < 1 || left > 2)
		return cli_usage_error("card", "expects [KIND] NAME, or --list");
	sl_card_kind kind = SL_CARD_FORMAT;
	const char *name = argv[argc - 1];
	if (left == 2 && !sl_card_kind_parse(argv[optind], &kind))
		return cli_usage_error("card", "no kind of card '%s' (format, method, prune, pattern, heal, metric, speculate)",
		                       argv[optind]);
	const sl_card *card = left == 2 ? sl_card_find(kind, name) : sl_card_search(name, &kind);
	if (!card) {
		sl_error err = {0};
		sl_errorf(&err, SL_ERR_ARG, "no card for %s%s'%s' (slimlab card --list shows them all)",
		          left == 2 ? argv[optind] : "", left == 2 ? " " : "", name);
		return cli_error(&err);
	}
	if (json) {
		cli_print_json(card_json(kind, name, card));
		return CLI_OK;
	}
	printf("## %s\n\n(%s %s)\n\n**What it does.** %s\n\n**Formula.** %s\n\n**What to watch.** %s\n\n**Pitfall.** %s\n\n"
	       "**Paper.** %s\n",
	       card->title, sl_card_kind_name(kind), name, card->what, card->formula, card->watch, card->pitfall,
	       card->paper);
	return CLI_OK;
}
