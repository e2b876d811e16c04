/* bench/train: training speed (tokens per second through forward, backward
 * and the AdamW update) of slimlab against the same model, batch and
 * optimizer in PyTorch on the CPU, which bench/train-torch.py times in the
 * same run; prints the ratio. The model is the workshop model's shape
 * unless options say otherwise.
 *
 *   bench/train [--dim N] [--hidden N] [--layers N] [--heads N] [--kv-heads N]
 *               [--vocab N] [--batch N] [--seq N] [--steps N] [--threads N] */
#include "train-common.h"

static double slimlab_tokens_per_s(const bench_shape *s)
{
	sl_trainer *tr = NULL;
	sl_adamw opt = {0};
	sl_error err;
	double tps = 0;
	sl_model *m = bench_shape_model(s, &err);
	if (!m || sl_trainer_new(m, sl_train_kernels_cpu(), s->batch, s->seq, NULL, &tr, &err) ||
	    sl_adamw_init(&opt, sl_trainer_n_weights(tr), &err)) {
		fprintf(stderr, "bench/train: %s\n", err.msg);
		goto done;
	}
	size_t n = (size_t)s->batch * s->seq;
	int32_t *in = malloc(n * sizeof(int32_t)), *tg = malloc(n * sizeof(int32_t));
	bench_shape_batch(s, in, tg);
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

int main(int argc, char **argv)
{
	bench_shape s;
	if (!bench_shape_parse(&s, argc, argv, "bench/train"))
		return 2;
	double ours = slimlab_tokens_per_s(&s);
	printf("slimlab  %9.1f tokens/s\n", ours);
	double theirs = bench_torch_tokens_per_s(&s, "bench/train-torch.py");
	if (theirs > 0)
		printf("PyTorch  %9.1f tokens/s\nratio    %9.2f (slimlab / PyTorch)\n", theirs, ours / theirs);
	else
		printf("PyTorch  not measured (/usr/bin/python3 with torch is needed)\n");
	return ours > 0 ? 0 : 1;
}
