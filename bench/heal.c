/* bench/heal: the speed of a step of quantization-aware distillation
 * (teacher forward, student forward and backward through int4-g32 fake
 * quantization of every block matrix, T^2 KL, AdamW) against a plain
 * training step of the same model and batch, and against PyTorch doing
 * the same distillation step (bench/heal-torch.py, timed in the same run,
 * its BLAS and OpenMP held to the same threads); prints tokens per second
 * (of the fastest step on each side) and per CPU-second (of the step that
 * used the least CPU time: the steadier figure where other jobs share the
 * machine), and the ratios. The model is the workshop model's shape unless
 * options say otherwise.
 *
 *   bench/heal [--dim N] [--hidden N] [--layers N] [--heads N] [--kv-heads N]
 *              [--vocab N] [--batch N] [--seq N] [--steps N] [--threads N] */
#include "train-common.h"

static void int4_blocks(void *ctx, const sl_tensor *t, sl_heal_spec *spec)
{
	if (!strncmp(t->name, "blk.", 4) && t->n_dims == 2)
		spec->format = ctx;
}

/* The speed of steps on the shape's batch; heal: QAD, else a plain
 * cross-entropy step. */
static bench_rate tokens_per_s(const bench_shape *s, bool heal)
{
	sl_trainer *tr = NULL;
	sl_error err;
	bench_rate r = {0, 0};
	sl_model *m = bench_shape_model(s, &err), *teacher = heal ? bench_shape_model(s, &err) : NULL;
	sl_trainer_opts to = {.spec = int4_blocks, .ctx = (void *)sl_format_find("int4-g32")};
	if (!m || (heal && !teacher) ||
	    sl_trainer_new(m, sl_train_kernels_cpu(), s->batch, s->seq, heal ? &to : NULL, &tr, &err)) {
		fprintf(stderr, "bench/heal: %s\n", err.msg);
	} else {
		sl_adamw_opts o = {.lr = 1e-4f, .min_lr = 1e-5f, .warmup = 1, .total = s->steps + 1, .beta1 = 0.9f,
		                   .beta2 = 0.95f, .eps = 1e-8f, .clip = 1.0f};
		sl_loss loss = {heal ? SL_LOSS_KL_FORWARD : SL_LOSS_CE, 1, 0};
		r = bench_step_tokens_per_s(s, tr, &o, &loss, teacher, "bench/heal");
	}
	sl_trainer_free(tr);
	sl_model_free(m);
	sl_model_free(teacher);
	return r;
}

int main(int argc, char **argv)
{
	bench_shape s;
	if (!bench_shape_parse(&s, argc, argv, "bench/heal"))
		return 2;
	bench_rate plain = tokens_per_s(&s, false), qad = tokens_per_s(&s, true);
	printf("                    tokens/s  tokens/CPU-s\n");
	printf("slimlab plain step  %9.1f  %9.1f\n", plain.wall, plain.cpu);
	printf("slimlab QAD step    %9.1f  %9.1f  (%.2f of a plain step by the clock)\n", qad.wall, qad.cpu,
	       plain.wall > 0 ? qad.wall / plain.wall : 0);
	bench_rate theirs = bench_torch_tokens_per_s(&s, "bench/heal-torch.py");
	if (theirs.wall > 0 && theirs.cpu > 0)
		printf("PyTorch QAD step    %9.1f  %9.1f\nratio               %9.2f  %9.2f (slimlab / PyTorch, QAD)\n",
		       theirs.wall, theirs.cpu, qad.wall / theirs.wall, qad.cpu / theirs.cpu);
	else
		printf("PyTorch  not measured (/usr/bin/python3 with torch is needed)\n");
	return qad.wall > 0 ? 0 : 1;
}
