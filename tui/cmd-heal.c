/* slimlab heal MODEL (--recipe R | --format FMT ...) --heal qat|qad|kd|lora
 * --out OUT.gguf [--adapter OUT-lora.gguf]: compresses MODEL, trains the
 * compressed model back towards it, packs it into the recipe's formats
 * again (or keeps LoRA's adapters apart in a file of their own) and writes
 * it, with the held-out figures before and after. Ctrl-C stops with a
 * checkpoint that --resume continues from. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/fileio.h"
#include "core/heal.h"

static const char heal_usage[] =
	"Usage: slimlab heal MODEL (--recipe FILE | --format FMT [--method M] [--sparsity S --pattern P])\n"
	"                    --heal qat|qad|kd|lora --out OUT.gguf [options]\n"
	"Compresses MODEL as the recipe says, then heals it by training and writes it\n"
	"packed in the recipe's formats (GGUF that llama.cpp runs):\n"
	"  qat    every weight trains through its format's fake quantization (scales fixed\n"
	"         where post-training calibration left them), on cross-entropy\n"
	"  qad    the same on T^2 KL(MODEL || student), MODEL running beside it as teacher\n"
	"  kd     distillation from MODEL after pruning (pruned weights and structure stay pruned)\n"
	"  lora   the compressed weights stay frozen; rank-R adapters train, then merge in\n"
	"         (or, with --adapter, stay apart in a file llama.cpp loads with --lora)\n"
	"Figures come from the evaluation text against MODEL: KL, PPL and top-1 before\n"
	"healing and after, and the share of the KL recovered.\n";

static const char heal_usage_tail[] =
	"  --heal METHOD      qat, qad, kd or lora\n"
	"  --out FILE         the healed model (refused if it exists, unless --force)\n"
	"  --steps N          updates (default 300; lora may take 0)\n"
	"  --lr LR            peak learning rate (default 6e-4; lora 1e-3)\n"
	"  --batch B          sequences per update (default 8)\n"
	"  --seq-len N        tokens per sequence (default min(128, context))\n"
	"  --temperature T    of the KL losses (default 1)\n"
	"  --ce-weight W      cross-entropy mixed into the KL losses, 0..1 (default 0)\n"
	"  --loss ce|kl       override the method's loss (lora trains on ce unless told kl)\n"
	"  --lsq              learned step sizes: the formats' scales train too (formats with\n"
	"                     uniform levels and one scale per block)\n"
	"  --rank R           LoRA rank (default 8); --alpha A its scale A/R (default R)\n"
	"  --loftq [N]        lora over quantization alone: LoftQ, N alternations (default 5) of\n"
	"                     quantizing W - sBA and fitting BA to what that left, from BA = 0;\n"
	"                     the adapters start there and OUT.gguf holds that quantization\n"
	"  --adapter FILE     lora: write the adapters here as a LoRA adapter GGUF instead of\n"
	"                     merging them; OUT.gguf keeps the compressed weights as they were\n"
	"                     frozen, and the after figures are of the two together\n"
	"  --text FILE        training text (default the shipped data/calib.txt)\n"
	"  --eval-text FILE   held-out text for every figure (default the shipped data/eval.txt)\n"
	"  --chunks N         evaluation windows before and after (default: all)\n"
	"  --eval-every N     held-out KL every N updates (default 50; 0: none)\n"
	"  --checkpoint FILE  where Ctrl-C writes a checkpoint (default OUT.gguf.ckpt)\n"
	"  --resume           continue from the checkpoint\n"
	"  --seed N           batch order and adapters (default 1)\n"
	"  --threads N        CPU threads (default: one per core)\n"
	"  --force            write over OUT.gguf when it exists\n"
	"  --json             print one JSON object\n";

static atomic_int cancel_flag;

static void on_sigint(int sig)
{
	(void)sig;
	atomic_store(&cancel_flag, 1);
	signal(SIGINT, SIG_DFL);
}

typedef struct {
	bool tty, quiet;
	int log_every;
} printer;

static void on_report(void *ctx, const sl_heal_report *r)
{
	const printer *p = ctx;
	if (p->tty)
		fputs("\r\033[K", stderr);
	FILE *f = p->quiet ? stderr : stdout;
	switch (r->event) {
	case SL_TRAIN_STEP:
		if (!p->quiet && (r->step % p->log_every == 0 || r->step == r->steps))
			fprintf(f, "step %5lld/%lld  loss %.4f  lr %.2e  |grad| %.3f  %6.0f tok/s  ETA %.0fs\n",
			        (long long)r->step, (long long)r->steps, r->loss, r->lr, r->grad_norm, r->tokens_per_s, r->eta_s);
		else if (p->tty)
			fprintf(stderr, "healing: step %lld/%lld  loss %.4f  ETA %.0fs", (long long)r->step, (long long)r->steps,
			        r->loss, r->eta_s);
		break;
	case SL_TRAIN_EVAL:
		if (!p->quiet)
			fprintf(f, "held-out at step %lld: KL %.5f  top-1 %.4f  PPL %.3f\n", (long long)r->step,
			        r->eval->kl_mean, r->eval->top1, r->eval->ppl);
		break;
	case SL_TRAIN_CHECKPOINT:
		fprintf(stderr, "checkpoint at step %lld: %s\n", (long long)r->step, r->note);
		break;
	case SL_TRAIN_NOTE:
		if (!p->quiet && r->eval)
			fprintf(f, "%s: KL %.5f  top-1 %.4f  PPL %.3f\n", r->note, r->eval->kl_mean, r->eval->top1, r->eval->ppl);
		else if (!p->quiet)
			fprintf(f, "%s\n", r->note);
		break;
	default:
		break;
	}
	fflush(f);
}

static cJSON *figures(const sl_eval_result *e, const char *text)
{
	cJSON *o = cli_eval_json(e, text);
	cJSON_AddNumberToObject(o, "kl", e->kl_mean);
	cJSON_AddNumberToObject(o, "top1", e->top1);
	return o;
}

int sl_cmd_heal(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_RECIPE_OPTIONS,
		{"heal", required_argument, 0, 'H'},
		{"out", required_argument, 0, 'o'},
		{"steps", required_argument, 0, 'n'},
		{"lr", required_argument, 0, 'l'},
		{"batch", required_argument, 0, 'b'},
		{"seq-len", required_argument, 0, 'q'},
		{"temperature", required_argument, 0, 'e'},
		{"ce-weight", required_argument, 0, 'w'},
		{"loss", required_argument, 0, 'L'},
		{"rank", required_argument, 0, 'r'},
		{"lsq", no_argument, 0, 'Q'},
		{"alpha", required_argument, 0, 'a'},
		{"adapter", required_argument, 0, 'A'},
		{"loftq", optional_argument, 0, 'Z'},
		{"text", required_argument, 0, 'f'},
		{"eval-text", required_argument, 0, 'E'},
		{"chunks", required_argument, 0, 'k'},
		{"eval-every", required_argument, 0, 'v'},
		{"checkpoint", required_argument, 0, 'K'},
		{"resume", no_argument, 0, 'z'},
		{"seed", required_argument, 0, 's'},
		{"threads", required_argument, 0, 'T'},
		{"force", no_argument, 0, 'y'},
		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	cli_recipe_opts ro = {0};
	const char *method = NULL, *out_path = NULL, *loss = NULL, *ckpt = NULL;
	sl_heal_opts ho;
	sl_heal_opts_init(&ho, SL_HEAL_QAT);
	long v, threads = 0;
	double d;
	bool json = false, force = false;
	int c;
	optind = 1;
	/* Heal's own --rank and --alpha (LoRA's) come first and so win over
	 * the low-rank methods' parameters of the same names. */
	static struct option all[96];
	cli_recipe_longopts(opts, all, 96);
	while ((c = getopt_long(argc, argv, "o:f:h", all, NULL)) != -1) {
		int used = cli_recipe_opt("heal", c, optarg, &ro);
		if (used < 0)
			return CLI_USAGE;
		if (used)
			continue;
		switch (c) {
		case 'H': method = optarg; break;
		case 'o': out_path = optarg; break;
		case 'n': if (!cli_parse_int("heal", "--steps", optarg, 0, 10000000, &v)) return CLI_USAGE; ho.steps = (int)v; break;
		case 'l': if (!cli_parse_float("heal", "--lr", optarg, 1e-9, 1, &d)) return CLI_USAGE; ho.lr = (float)d; break;
		case 'b': if (!cli_parse_int("heal", "--batch", optarg, 1, 4096, &v)) return CLI_USAGE; ho.batch = (int)v; break;
		case 'q': if (!cli_parse_int("heal", "--seq-len", optarg, 2, 1 << 20, &v)) return CLI_USAGE; ho.seq_len = (int)v; break;
		case 'e': if (!cli_parse_float("heal", "--temperature", optarg, 1e-3, 100, &d)) return CLI_USAGE; ho.temperature = (float)d; break;
		case 'w': if (!cli_parse_float("heal", "--ce-weight", optarg, 0, 1, &d)) return CLI_USAGE; ho.ce_weight = (float)d; break;
		case 'L': loss = optarg; break;
		case 'r': if (!cli_parse_int("heal", "--rank", optarg, 1, 4096, &v)) return CLI_USAGE; ho.rank = (int)v; break;
		case 'a': if (!cli_parse_float("heal", "--alpha", optarg, 0, 1e6, &d)) return CLI_USAGE; ho.alpha = (float)d; break;
		case 'A': ho.adapter_out = optarg; break;
		case 'Z': {
			/* "--loftq 3" as well as "--loftq=3" */
			const char *n = optarg;
			if (!n && optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9')
				n = argv[optind++];
			if (n && !cli_parse_int("heal", "--loftq", n, 1, 100, &v))
				return CLI_USAGE;
			ho.loftq = n ? (int)v : 5;
			break;
		}
		case 'f': ho.train_text = optarg; break;
		case 'E': ho.eval_text = optarg; break;
		case 'k': if (!cli_parse_int("heal", "--chunks", optarg, 1, 1 << 30, &v)) return CLI_USAGE; ho.eval_chunks = (int)v; break;
		case 'v': if (!cli_parse_int("heal", "--eval-every", optarg, 0, 1 << 30, &v)) return CLI_USAGE; ho.eval_every = (int)v; break;
		case 'K': ckpt = optarg; break;
		case 'z': ho.resume = true; break;
		case 's': if (!cli_parse_int("heal", "--seed", optarg, 0, 1L << 62, &v)) return CLI_USAGE; ho.seed = (uint64_t)v; break;
		case 'T': if (!cli_parse_int("heal", "--threads", optarg, 1, 256, &threads)) return CLI_USAGE; break;
		case 'y': force = true; break;
		case 'Q': ho.lsq = true; break;
		case 'j': json = true; break;
		case 'h': fputs(heal_usage, stdout); cli_recipe_help(stdout); fputs(heal_usage_tail, stdout); return CLI_OK;
		default: return cli_usage_error("heal", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("heal", "expects one MODEL");
	if (!method || !sl_heal_method_parse(method, &ho.method))
		return cli_usage_error("heal", "--heal takes qat, qad, kd or lora");
	if (!cli_recipe_given(&ro))
		return cli_usage_error("heal", "a recipe (--recipe FILE or --format FMT ...) says what to compress");
	if (!out_path)
		return cli_usage_error("heal", "--out FILE is required");
	if (loss) {
		if (!strcmp(loss, "ce"))
			ho.loss = SL_LOSS_CE;
		else if (!strcmp(loss, "kl"))
			ho.loss = SL_LOSS_KL_FORWARD;
		else if (!strcmp(loss, "reverse-kl"))
			ho.loss = SL_LOSS_KL_REVERSE;
		else
			return cli_usage_error("heal", "--loss takes ce, kl or reverse-kl");
	}
	char ckpt_buf[SL_PATH_MAX];
	if (!ckpt) {
		if (snprintf(ckpt_buf, sizeof ckpt_buf, "%s.ckpt", out_path) >= (int)sizeof ckpt_buf)
			return cli_usage_error("heal", "--out path too long");
		ckpt = ckpt_buf;
	}
	ho.checkpoint = ckpt;
	if (ho.adapter_out && ho.method != SL_HEAL_LORA)
		return cli_usage_error("heal", "--adapter keeps LoRA's adapters apart: it needs --heal lora");
	if (ho.loftq && ho.method != SL_HEAL_LORA)
		return cli_usage_error("heal", "--loftq starts LoRA's adapters: it needs --heal lora");
	if (ho.adapter_out && !strcmp(ho.adapter_out, out_path))
		return cli_usage_error("heal", "--adapter and --out must name two files");
	if (!cli_may_write(out_path, force, "another --out") ||
	    (ho.adapter_out && !cli_may_write(ho.adapter_out, force, "another --out")))
		return CLI_FAIL;
	if (threads)
		sl_kernels_set_threads((int)threads);

	int rc = CLI_FAIL;
	sl_error err = {0};
	sl_model *base = cli_load_model(argv[optind], NULL), *healed = NULL;
	sl_recipe *recipe = NULL;
	sl_heal_result res = {0};
	if (!base || !(recipe = cli_recipe_load("heal", &ro, base)))
		goto done;
	printer pr = {.tty = isatty(STDERR_FILENO), .quiet = json, .log_every = ho.steps >= 20 ? ho.steps / 20 : 1};
	sl_progress prog = {.cancel = &cancel_flag};
	ho.progress = &prog;
	ho.on_report = on_report;
	ho.ctx = &pr;
	signal(SIGINT, on_sigint);
	sl_status st = sl_heal(base, recipe, &ho, &healed, &res, &err);
	signal(SIGINT, SIG_DFL);
	if (pr.tty)
		fputs("\r\033[K", stderr);
	if (st) {
		cli_error(&err);
		goto done;
	}
	if (sl_export_gguf(healed, recipe, out_path, NULL, &err)) {
		cli_error(&err);
		goto done;
	}
	if (sl_file_exists(ckpt) && remove(ckpt))
		fprintf(stderr, "slimlab: could not remove the checkpoint %s\n", ckpt);
	const char *eval_text = ho.eval_text ? ho.eval_text : "data/eval.txt";
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "model", argv[optind]);
		cJSON_AddStringToObject(o, "heal", method);
		cJSON_AddStringToObject(o, "loss", res.loss_name);
		cJSON_AddNumberToObject(o, "steps", (double)res.steps);
		cJSON_AddNumberToObject(o, "tensors_trained", res.n_trained);
		cJSON_AddNumberToObject(o, "train_seconds", res.train_seconds);
		cJSON_AddNumberToObject(o, "tokens_per_s", res.tokens_per_s);
		cJSON_AddItemToObject(o, "before", figures(&res.before, eval_text));
		cJSON_AddItemToObject(o, "after", figures(&res.after, eval_text));
		cJSON_AddNumberToObject(o, "recovered", res.recovered);
		cJSON_AddNumberToObject(o, "repacked_moved", (double)res.repacked_moved);
		cJSON *curve = cJSON_AddArrayToObject(o, "held_out_kl");
		for (int i = 0; i < res.n_probe; i++) {
			cJSON *pt = cJSON_CreateArray();
			cJSON_AddItemToArray(pt, cJSON_CreateNumber(res.probe[2 * i]));
			cJSON_AddItemToArray(pt, cJSON_CreateNumber(res.probe[2 * i + 1]));
			cJSON_AddItemToArray(curve, pt);
		}
		cJSON_AddStringToObject(o, "out", out_path);
		if (ho.adapter_out)
			cJSON_AddStringToObject(o, "adapter", ho.adapter_out);
		if (ho.loftq)
			cJSON_AddNumberToObject(o, "loftq", ho.loftq);
		cli_print_json(o);
	} else {
		printf("\n%-8s %10s %10s %8s\n", "", "KL", "PPL", "top-1");
		printf("%-8s %10.5f %10.3f %8.4f\n", "before", res.before.kl_mean, res.before.ppl, res.before.top1);
		printf("%-8s %10.5f %10.3f %8.4f\n", "after", res.after.kl_mean, res.after.ppl, res.after.top1);
		if (res.recovered == res.recovered)
			printf("recovered %.1f%% of the KL", 100 * res.recovered);
		else
			printf("nothing to recover: the compressed model already matches the base");
		printf(" (%s, %lld steps of %s loss, %.0f tok/s); written to %s\n", eval_text, (long long)res.steps,
		       res.loss_name, res.tokens_per_s, out_path);
		if (ho.adapter_out)
			printf("the adapters apart in %s (llama.cpp: -m %s --lora %s)\n", ho.adapter_out, out_path,
			       ho.adapter_out);
		if (res.repacked_moved)
			printf("note: packing moved %lld weights off the values trained\n", res.repacked_moved);
	}
	rc = CLI_OK;
done:
	sl_heal_result_free(&res);
	sl_recipe_free(recipe);
	sl_model_free(healed);
	sl_model_free(base);
	return rc;
}
