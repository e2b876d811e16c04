/* slimlab train CONFIG.json: runs a training job from a configuration,
 * printing loss, tokens/s and the time left as it goes. Ctrl-C stops it
 * with a checkpoint that --resume continues from. The model and the loss
 * table go where the configuration says, but over existing files only
 * with --force or a yes on a terminal. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/fileio.h"
#include "core/train-run.h"

static const char train_usage[] =
	"Usage: slimlab train CONFIG.json [--resume] [--force] [--threads N] [--log-every N]\n"
	"Trains a Llama-architecture model as CONFIG.json says (model shape or a model\n"
	"to start from, tokenizer, data, schedule, loss, seed, outputs; see slimlab(1)).\n"
	"Ctrl-C writes a checkpoint and stops; --resume goes on from it exactly.\n"
	"  --resume         continue from the configuration's checkpoint when it exists\n"
	"  --force          a new run writes over an existing model and loss table\n"
	"                   (a checkpoint is never written over: resume it or remove it)\n"
	"  --threads N      CPU threads (default: the configuration's, else one per core)\n"
	"  --log-every N    print a line every N steps (default 10)\n";

static atomic_int cancel_flag;

static void on_sigint(int sig)
{
	(void)sig;
	atomic_store(&cancel_flag, 1);
	signal(SIGINT, SIG_DFL); /* a second Ctrl-C stops at once */
}

typedef struct {
	bool tty;
	long log_every;
	double loss_sum;
	int n_loss;
} printer;

static void fmt_time(double s, char *buf, size_t n)
{
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
	else if (t >= 60)
		snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(buf, n, "%lds", t);
}

static void on_report(void *ctx, const sl_train_report *r)
{
	printer *p = ctx;
	char el[32], eta[32];
	fmt_time(r->elapsed_s, el, sizeof el);
	fmt_time(r->eta_s, eta, sizeof eta);
	if (p->tty)
		fputs("\r\033[K", stderr);
	switch (r->event) {
	case SL_TRAIN_NOTE:
		printf("%s\n", r->note);
		break;
	case SL_TRAIN_STEP:
		p->loss_sum += r->loss;
		p->n_loss++;
		if (r->step % p->log_every == 0 || r->step == r->steps) {
			printf("step %6lld/%lld  loss %.4f  lr %.2e  |grad| %.3f  %7.0f tok/s  elapsed %s  ETA %s\n",
			       (long long)r->step, (long long)r->steps, p->loss_sum / p->n_loss, r->lr, r->grad_norm,
			       r->tokens_per_s, el, eta);
			p->loss_sum = 0;
			p->n_loss = 0;
		} else if (p->tty) {
			fprintf(stderr, "step %lld/%lld  loss %.4f  %.0f tok/s  ETA %s", (long long)r->step,
			        (long long)r->steps, r->loss, r->tokens_per_s, eta);
		}
		break;
	case SL_TRAIN_EVAL:
		printf("eval%s at step %lld: validation loss %.4f, perplexity %.2f\n", r->note ? " (final)" : "",
		       (long long)r->step, r->val_loss, r->val_ppl);
		break;
	case SL_TRAIN_CHECKPOINT:
		printf("checkpoint at step %lld: %s\n", (long long)r->step, r->note);
		break;
	case SL_TRAIN_DONE:
		printf("done: %lld steps in %s; model written to %s\n", (long long)r->step, el, r->note);
		break;
	}
	fflush(stdout);
	fflush(stderr);
}

int sl_cmd_train(int argc, char **argv)
{
	static const struct option opts[] = {
		{"resume", no_argument, 0, 'r'},
		{"force", no_argument, 0, 'y'},
		{"threads", required_argument, 0, 'T'},
		{"log-every", required_argument, 0, 'l'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	bool resume = false, force = false;
	long threads = 0, log_every = 10;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': resume = true; break;
		case 'y': force = true; break;
		case 'T': if (!cli_parse_int("train", "--threads", optarg, 1, 256, &threads)) return CLI_USAGE; break;
		case 'l': if (!cli_parse_int("train", "--log-every", optarg, 1, 1 << 30, &log_every)) return CLI_USAGE; break;
		case 'h': fputs(train_usage, stdout); return CLI_OK;
		default: return cli_usage_error("train", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("train", "expects one CONFIG.json");
	sl_error err = {0};
	sl_train_config *cfg = malloc(sizeof *cfg);
	if (!cfg)
		return CLI_FAIL;
	if (sl_train_config_load(argv[optind], cfg, &err)) {
		free(cfg);
		return cli_error(&err);
	}
	if (threads)
		cfg->threads = (int)threads;
	/* A checkpoint is resumed (it wrote the loss table) or refused by the
	 * run; without one, the run is new. */
	bool fresh = !cfg->checkpoint[0] || !sl_file_exists(cfg->checkpoint);
	if (fresh && (!cli_may_write(cfg->output, force, "change output.path in the configuration") ||
	              (cfg->log[0] && !cli_may_write(cfg->log, force, "change output.log in the configuration")))) {
		free(cfg);
		return CLI_FAIL;
	}
	printer pr = {isatty(STDERR_FILENO), log_every, 0, 0};
	sl_progress prog = {.cancel = &cancel_flag};
	sl_train_run_opts o = {.resume = resume, .on_report = on_report, .ctx = &pr, .progress = &prog};
	signal(SIGINT, on_sigint);
	sl_status st = sl_train_run(cfg, &o, &err);
	signal(SIGINT, SIG_DFL);
	free(cfg);
	if (pr.tty)
		fputs("\r\033[K", stderr);
	return st ? cli_error(&err) : CLI_OK;
}
