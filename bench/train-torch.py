#!/usr/bin/python3
"""bench/train-torch.py: the PyTorch side of bench/train. Times steps of
forward, backward and the AdamW update of the same Llama-shaped model, batch
and optimizer settings on the CPU, through tests/torch_llama.py, and prints
"tokens/s N" of the fastest step for bench/train to read. Needs Debian's
python3-torch."""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_llama import forward, make  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for name in ("dim", "hidden", "layers", "heads", "kv-heads", "vocab", "batch", "seq", "steps", "threads"):
        ap.add_argument("--" + name, type=int, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = dict(dim=a.dim, head_dim=a.dim // a.heads, n_heads=a.heads, n_kv_heads=a.kv_heads, hidden=a.hidden,
               n_layers=a.layers, vocab=a.vocab, eps=1e-5, theta=10000.0, rope="norm", rope_dim=a.dim // a.heads,
               qkv_bias=False, tied=True)
    W = make(torch.Generator().manual_seed(7), cfg)
    for t in W.values():
        t.requires_grad_(True)
    # Weight decay on matrices only, as slimlab's AdamW does.
    decay = [t for t in W.values() if t.dim() == 2]
    rest = [t for t in W.values() if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    n = a.batch * a.seq
    idx = torch.arange(n)
    inputs = ((idx * 7919 + 13) % a.vocab).view(a.batch, a.seq)
    targets = ((idx * 104729 + 5) % a.vocab).view(a.batch, a.seq)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = forward(cfg, W, inputs)
        loss = F.cross_entropy(logits.reshape(n, a.vocab), targets.reshape(n))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(W.values()), 1.0)
        opt.step()

    step()  # warm-up, as bench/train does
    best = 0.0
    for _ in range(a.steps):  # the fastest step, as bench/train-common.h times its own
        t0 = time.perf_counter()
        step()
        best = max(best, n / (time.perf_counter() - t0))
    print("tokens/s %.1f" % best)


if __name__ == "__main__":
    main()
