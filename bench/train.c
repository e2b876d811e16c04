/* bench/train: training speed (tokens per second through forward, backward
 * and the AdamW update) of slimlab against the same model, batch and
 * optimizer in PyTorch on the CPU, which bench/train-torch.py times in the
 * same run; prints the ratio. The model is the workshop model's shape
 * unless options say otherwise.
 *
 *   bench/train [--dim N] [--hidden N] [--layers N] [--heads N] [--kv-heads N]
 *               [--vocab N] [--batch N] [--seq N] [--steps N] [--threads N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/optim.h"

typedef struct {
	int dim, hidden, layers, heads, kv_heads, vocab, batch, seq, steps, threads;
} shape;

static double slimlab_tokens_per_s(const shape *s)
{
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = s->dim, .hidden_dim = s->hidden, .n_layers = s->layers,
	               .n_heads = s->heads, .n_kv_heads = s->kv_heads, .vocab_size = s->vocab,
	               .max_seq_len = s->seq, .rope_style = SL_ROPE_NORM};
	sl_model *m = NULL;
	sl_trainer *tr = NULL;
	sl_adamw opt = {0};
	sl_error err;
	double tps = 0;
	if (sl_model_init_random(&c, true, 0.02f, 7, &m, &err) ||
	    sl_trainer_new(m, sl_train_kernels_cpu(), s->batch, s->seq, NULL, &tr, &err) ||
	    sl_adamw_init(&opt, sl_trainer_n_weights(tr), &err)) {
		fprintf(stderr, "bench/train: %s\n", err.msg);
		goto done;
	}
	size_t n = (size_t)s->batch * s->seq;
	int32_t *in = malloc(n * sizeof(int32_t)), *tg = malloc(n * sizeof(int32_t));
	for (size_t i = 0; i < n; i++) {
		in[i] = (int32_t)((i * 7919 + 13) % (size_t)s->vocab);
		tg[i] = (int32_t)((i * 104729 + 5) % (size_t)s->vocab);
	}
	sl_adamw_opts o = {.lr = 1e-3f, .min_lr = 1e-4f, .warmup = 1, .total = s->steps + 1, .beta1 = 0.9f,
	                   .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .clip = 1.0f};
	sl_loss loss = {SL_LOSS_CE, 1, 1};
	sl_step_info info;
	/* one step to warm caches and the pool */
	if (sl_train_step(tr, &opt, &o, in, tg, 1, s->batch, &loss, NULL, &info, &err) == SL_OK) {
		double t0 = bench_now();
		for (int i = 0; i < s->steps; i++)
			sl_train_step(tr, &opt, &o, in, tg, 1, s->batch, &loss, NULL, &info, &err);
		tps = (double)n * s->steps / (bench_now() - t0);
	}
	free(in);
	free(tg);
done:
	sl_adamw_free(&opt);
	sl_trainer_free(tr);
	sl_model_free(m);
	return tps;
}

/* Runs bench/train-torch.py with the same shape; 0 when it cannot. */
static double torch_tokens_per_s(const shape *s, const char *srcdir)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
	         "/usr/bin/python3 '%s/bench/train-torch.py' --dim %d --hidden %d --layers %d --heads %d "
	         "--kv-heads %d --vocab %d --batch %d --seq %d --steps %d --threads %d",
	         srcdir, s->dim, s->hidden, s->layers, s->heads, s->kv_heads, s->vocab, s->batch, s->seq, s->steps,
	         s->threads);
	FILE *p = popen(cmd, "r");
	if (!p)
		return 0;
	char line[256];
	double tps = 0;
	while (fgets(line, sizeof line, p))
		if (sscanf(line, "tokens/s %lf", &tps) != 1)
			fputs(line, stdout);
	return pclose(p) == 0 ? tps : 0;
}

int main(int argc, char **argv)
{
	shape s = {256, 768, 6, 8, 4, 4096, 8, 256, 5, 0};
	struct {
		const char *opt;
		int *v;
	} opts[] = {{"--dim", &s.dim}, {"--hidden", &s.hidden}, {"--layers", &s.layers}, {"--heads", &s.heads},
	            {"--kv-heads", &s.kv_heads}, {"--vocab", &s.vocab}, {"--batch", &s.batch}, {"--seq", &s.seq},
	            {"--steps", &s.steps}, {"--threads", &s.threads}};
	for (int i = 1; i < argc; i++) {
		size_t k = 0;
		while (k < sizeof opts / sizeof opts[0] && strcmp(argv[i], opts[k].opt))
			k++;
		if (k == sizeof opts / sizeof opts[0] || i + 1 >= argc || atoi(argv[i + 1]) < 1) {
			fprintf(stderr, "bench/train: bad option '%s' (see the comment at the top of bench/train.c)\n",
			        argv[i]);
			return 2;
		}
		*opts[k].v = atoi(argv[++i]);
	}
	if (s.threads)
		sl_kernels_set_threads(s.threads);
	s.threads = sl_kernels_threads();
	const char *src = getenv("SL_SRCDIR");
	printf("model: dim %d, hidden %d, %d layers, %d heads (%d kv), vocab %d, tied; batch %d x %d tokens; "
	       "%d steps; %d threads\n",
	       s.dim, s.hidden, s.layers, s.heads, s.kv_heads, s.vocab, s.batch, s.seq, s.steps, s.threads);
	double ours = slimlab_tokens_per_s(&s);
	printf("slimlab  %9.1f tokens/s\n", ours);
	double theirs = torch_tokens_per_s(&s, src && *src ? src : ".");
	if (theirs > 0)
		printf("PyTorch  %9.1f tokens/s\nratio    %9.2f (slimlab / PyTorch)\n", theirs, ours / theirs);
	else
		printf("PyTorch  not measured (/usr/bin/python3 with torch is needed)\n");
	return ours > 0 ? 0 : 1;
}
