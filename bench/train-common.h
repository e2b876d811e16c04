/* What bench/train and bench/heal share: the model's shape and batch from
 * the command line, the model and batch themselves, and running the
 * PyTorch side of the comparison with the same shape. */
#ifndef SL_BENCH_TRAIN_COMMON_H
#define SL_BENCH_TRAIN_COMMON_H

#include "bench.h"
#include "core/optim.h"

typedef struct {
	int dim, hidden, layers, heads, kv_heads, vocab, batch, seq, steps, threads;
} bench_shape;

/* The workshop model's shape, batch 8 x 256, changed by the options
 * (--dim N ... --threads N); false with the problem printed. */
static inline bool bench_shape_parse(bench_shape *s, int argc, char **argv, const char *prog)
{
	*s = (bench_shape){256, 768, 6, 8, 4, 4096, 8, 256, 5, 0};
	struct {
		const char *opt;
		int *v;
	} opts[] = {{"--dim", &s->dim}, {"--hidden", &s->hidden}, {"--layers", &s->layers}, {"--heads", &s->heads},
	            {"--kv-heads", &s->kv_heads}, {"--vocab", &s->vocab}, {"--batch", &s->batch}, {"--seq", &s->seq},
	            {"--steps", &s->steps}, {"--threads", &s->threads}};
	for (int i = 1; i < argc; i++) {
		size_t k = 0;
		while (k < sizeof opts / sizeof opts[0] && strcmp(argv[i], opts[k].opt))
			k++;
		if (k == sizeof opts / sizeof opts[0] || i + 1 >= argc || atoi(argv[i + 1]) < 1) {
			fprintf(stderr, "%s: bad option '%s' (see the comment at the top of %s.c)\n", prog, argv[i], prog);
			return false;
		}
		*opts[k].v = atoi(argv[++i]);
	}
	if (s->threads)
		sl_kernels_set_threads(s->threads);
	s->threads = sl_kernels_threads();
	printf("model: dim %d, hidden %d, %d layers, %d heads (%d kv), vocab %d, tied; batch %d x %d tokens; "
	       "the fastest of %d steps; %d threads\n",
	       s->dim, s->hidden, s->layers, s->heads, s->kv_heads, s->vocab, s->batch, s->seq, s->steps, s->threads);
	return true;
}

/* A model of the shape with weights from N(0, 0.02^2), seed 7. */
static inline sl_model *bench_shape_model(const bench_shape *s, sl_error *err)
{
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = s->dim, .hidden_dim = s->hidden, .n_layers = s->layers,
	               .n_heads = s->heads, .n_kv_heads = s->kv_heads, .vocab_size = s->vocab,
	               .max_seq_len = s->seq, .rope_style = SL_ROPE_NORM};
	sl_model *m = NULL;
	return sl_model_init_random(&c, true, 0.02f, 7, &m, err) ? NULL : m;
}

/* The batch both sides train on (the same integer formula as the scripts). */
static inline void bench_shape_batch(const bench_shape *s, int32_t *in, int32_t *tg)
{
	for (size_t i = 0; i < (size_t)s->batch * s->seq; i++) {
		in[i] = (int32_t)((i * 7919 + 13) % (size_t)s->vocab);
		tg[i] = (int32_t)((i * 104729 + 5) % (size_t)s->vocab);
	}
}

/* A side's speed: tokens per second of its fastest step by the clock, and
 * tokens per CPU-second of its step that used the least CPU time (every
 * thread of the process: on a machine shared with other jobs the clock
 * measures the neighbours too, CPU time much less; with several threads it
 * also counts time spent waiting in a spin). */
typedef struct {
	double wall, cpu;
} bench_rate;

/* One run of the PyTorch script (relative to $SL_SRCDIR, else .) with the
 * shape, its OpenMP threads at the shape's count and OpenBLAS's at blas;
 * reads its "tokens/s N" and "cpu tokens/s N"; 0 where it cannot. */
static inline bench_rate bench_torch_run(const bench_shape *s, const char *script, int blas)
{
	const char *src = getenv("SL_SRCDIR");
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
	         "OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d /usr/bin/python3 '%s/%s' --dim %d --hidden %d --layers %d "
	         "--heads %d --kv-heads %d --vocab %d --batch %d --seq %d --steps %d --threads %d",
	         blas, s->threads, src && *src ? src : ".", script, s->dim, s->hidden, s->layers, s->heads,
	         s->kv_heads, s->vocab, s->batch, s->seq, s->steps, s->threads);
	bench_rate r = {0, 0};
	FILE *p = popen(cmd, "r");
	if (!p)
		return r;
	char line[256];
	while (fgets(line, sizeof line, p))
		if (sscanf(line, "tokens/s %lf", &r.wall) != 1 && sscanf(line, "cpu tokens/s %lf", &r.cpu) != 1)
			fputs(line, stdout);
	if (pclose(p) != 0)
		r = (bench_rate){0, 0};
	return r;
}

/* PyTorch's speed on the shape at its best on these threads. Its
 * torch.set_num_threads does not reach OpenBLAS's own threads, and with
 * both at N threads its products can run slower than with one (the two
 * pools fight over the cores), so with more than one thread it runs twice:
 * OpenBLAS at N threads and at one (parallel only through PyTorch's own
 * OpenMP), and the faster by the clock counts. Says which it was. */
static inline bench_rate bench_torch_tokens_per_s(const bench_shape *s, const char *script)
{
	bench_rate r = bench_torch_run(s, script, s->threads);
	if (s->threads > 1) {
		bench_rate one = bench_torch_run(s, script, 1);
		printf("PyTorch's OpenBLAS at %d threads: %.1f tokens/s; at 1 thread: %.1f (the faster counts)\n",
		       s->threads, r.wall, one.wall);
		if (one.wall > r.wall)
			r = one;
	}
	return r;
}

/* The speed of tr's steps on the shape's batch (one warm-up step, then
 * s->steps timed one by one: on a shared machine the fastest step is the
 * one least disturbed, and the PyTorch scripts time theirs the same way),
 * the teacher's logits feeding KL losses when given; 0 when it cannot run.
 * prog names the program in errors. */
static inline bench_rate bench_step_tokens_per_s(const bench_shape *s, sl_trainer *tr, const sl_adamw_opts *o,
                                                 const sl_loss *loss, const sl_model *teacher, const char *prog)
{
	sl_adamw opt = {0};
	sl_error err;
	bench_rate best = {0, 0};
	size_t n = (size_t)s->batch * s->seq;
	int32_t *in = malloc(n * sizeof(int32_t)), *tg = malloc(n * sizeof(int32_t));
	sl_step_info info;
	if (!in || !tg || sl_adamw_init(&opt, sl_trainer_n_weights(tr), &err)) {
		fprintf(stderr, "%s: %s\n", prog, in && tg ? err.msg : "out of memory");
	} else {
		bench_shape_batch(s, in, tg);
		/* one step to warm caches and the pool */
		if (sl_train_step(tr, &opt, o, in, tg, 1, s->batch, loss, teacher, &info, &err) == SL_OK) {
			for (int i = 0; i < s->steps; i++) {
				double t0 = bench_now(), c0 = bench_cpu_now();
				sl_train_step(tr, &opt, o, in, tg, 1, s->batch, loss, teacher, &info, &err);
				double w = (double)n / (bench_now() - t0), c = (double)n / (bench_cpu_now() - c0);
				best.wall = w > best.wall ? w : best.wall;
				best.cpu = c > best.cpu ? c : best.cpu;
			}
		} else {
			fprintf(stderr, "%s: %s\n", prog, err.msg);
		}
	}
	sl_adamw_free(&opt);
	free(in);
	free(tg);
	return best;
}

#endif
