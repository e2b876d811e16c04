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
	sl_error err;
	double tps = 0;
	sl_model *m = bench_shape_model(s, &err);
	if (!m || sl_trainer_new(m, sl_train_kernels_cpu(), s->batch, s->seq, NULL, &tr, &err)) {
		fprintf(stderr, "bench/train: %s\n", err.msg);
	} else {
		sl_adamw_opts o = {.lr = 1e-3f, .min_lr = 1e-4f, .warmup = 1, .total = s->steps + 1, .beta1 = 0.9f,
		                   .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .clip = 1.0f};
		sl_loss loss = {SL_LOSS_CE, 1, 1};
		tps = bench_step_tokens_per_s(s, tr, &o, &loss, NULL, "bench/train").wall;
	}
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
	double theirs = bench_torch_tokens_per_s(&s, "bench/train-torch.py").wall;
	if (theirs > 0)
		printf("PyTorch  %9.1f tokens/s\nratio    %9.2f (slimlab / PyTorch)\n", theirs, ours / theirs);
	else
		printf("PyTorch  not measured (/usr/bin/python3 with torch is needed)\n");
	return ours > 0 ? 0 : 1;
}
