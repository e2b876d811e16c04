#!/usr/bin/python3
"""bench/heal-torch.py: the PyTorch side of bench/heal. Times steps of
quantization-aware distillation of the same Llama-shaped model: the
teacher's forward without gradients, the student's forward with every block
matrix through int4-g32 fake quantization (scales fixed from the starting
weights, straight-through gradient where the value stayed inside the grid),
T^2 KL at T = 1, backward, clipping and AdamW. Prints "tokens/s N" of the
fastest step by the clock and "cpu tokens/s N" by CPU time (every thread
of the process) for bench/heal to read. Needs Debian's python3-torch;
bench/heal sets OMP_NUM_THREADS to --threads and runs it with OpenBLAS at
--threads and at one thread (OPENBLAS_NUM_THREADS), keeping the faster."""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_llama import forward, make  # noqa: E402

MATS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


class FakeQuant(torch.autograd.Function):
    """int4 in groups of 32 on fixed scales d: forward d*clamp(round(w/d)),
    backward straight through where w/d stayed inside [-8.5, 7.5]."""

    @staticmethod
    def forward(ctx, w, d):
        k = w.view(w.shape[0], -1, 32) / d
        inside = (k >= -8.5) & (k <= 7.5)
        ctx.save_for_backward(inside)
        return (k.round().clamp(-8, 7) * d).view_as(w)

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved_tensors
        return (g.view(inside.shape) * inside).view_as(g), None


def main():
    ap = argparse.ArgumentParser()
    for name in ("dim", "hidden", "layers", "heads", "kv-heads", "vocab", "batch", "seq", "steps", "threads"):
        ap.add_argument("--" + name, type=int, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = dict(dim=a.dim, head_dim=a.dim // a.heads, n_heads=a.heads, n_kv_heads=a.kv_heads, hidden=a.hidden,
               n_layers=a.layers, vocab=a.vocab, eps=1e-5, theta=10000.0, rope="norm", rope_dim=a.dim // a.heads,
               qkv_bias=False, tied=True)
    teacher = make(torch.Generator().manual_seed(7), cfg)
    W = {k: v.clone().requires_grad_(True) for k, v in teacher.items()}
    names = [f"blk.{l}.{m}.weight" for l in range(a.layers) for m in MATS]
    scales = {}
    with torch.no_grad():
        for n in names:
            g = W[n].view(W[n].shape[0], -1, 32)
            amax = g.abs().amax(-1, keepdim=True)
            scales[n] = torch.where(amax > 0, amax / 8, torch.ones_like(amax))
    decay = [t for t in W.values() if t.dim() == 2]
    rest = [t for t in W.values() if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    n = a.batch * a.seq
    idx = torch.arange(n)
    inputs = ((idx * 7919 + 13) % a.vocab).view(a.batch, a.seq)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            p = F.log_softmax(forward(cfg, teacher, inputs).reshape(n, a.vocab), -1)
        E = dict(W)
        for name in names:
            E[name] = FakeQuant.apply(W[name], scales[name])
        q = F.log_softmax(forward(cfg, E, inputs).reshape(n, a.vocab), -1)
        loss = F.kl_div(q, p, log_target=True, reduction="batchmean")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(W.values()), 1.0)
        opt.step()

    step()  # warm-up, as bench/heal does
    best, best_cpu = 0.0, 0.0
    for _ in range(a.steps):  # the fastest step, as bench/train-common.h times its own
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        best = max(best, n / (time.perf_counter() - t0))
        best_cpu = max(best_cpu, n / (time.process_time() - c0))
    print("tokens/s %.1f" % best)
    print("cpu tokens/s %.1f" % best_cpu)


if __name__ == "__main__":
    main()
