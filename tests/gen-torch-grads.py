#!/usr/bin/python3
"""Writes tests/data/torch-grads.bin: small random Llama-family models, a
batch of tokens, and the loss and gradient of every parameter that
PyTorch's autograd computes (in float64) for cross-entropy and for
distillation from a teacher (forward KL with temperature mixed with
cross-entropy, reverse KL). tests/test-grad.c checks slimlab's training
backward against them.

Run by hand with Debian's python3-torch (/usr/bin/python3); the output is
committed, so the tests do not need PyTorch.

File layout: the records of tests/gen-torch-reference.py
  u32 name length, name (utf-8), u32 ndims, u64 dims[ndims], f32 data
in this order per case: "config" (JSON bytes, one per f32), the student's
weights, the teacher's weights (names prefixed "teacher."), "inputs",
"targets" ([B, T]; -1 = not scored), then per loss "loss.<kind>" and
"grad.<kind>.<tensor name>".
"""
import json
import sys

import torch

from torch_llama import forward, loss_fn, make, record

CASES = [
    # Llama-like: grouped-query, interleaved rotary, untied head.
    dict(name="llama-gqa", rope="norm", dim=32, head_dim=8, n_heads=4, n_kv_heads=2, hidden=48,
         n_layers=2, vocab=53, eps=1e-5, theta=10000.0, rope_dim=8, qkv_bias=False, tied=False),
    # Qwen2-like: multi-query, NeoX rotary on part of each head, q/k/v
    # biases, tied head, heads wider than the embedding split.
    dict(name="qwen2-mqa-tied", rope="neox", dim=24, head_dim=12, n_heads=3, n_kv_heads=1, hidden=40,
         n_layers=2, vocab=41, eps=1e-6, theta=1e6, rope_dim=8, qkv_bias=True, tied=True),
]
TEACHER = dict(rope="norm", dim=16, head_dim=8, n_heads=2, n_kv_heads=2, hidden=24, n_layers=1,
               eps=1e-5, theta=10000.0, rope_dim=8, qkv_bias=False, tied=True)
LOSSES = [("ce", 1.0, 1.0), ("kl_forward", 2.0, 0.25), ("kl_reverse", 1.5, 0.0)]
B, T = 2, 11


def main(out):
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(20261123)
    with open(out, "wb") as f:
        for cfg in CASES:
            tcfg = dict(TEACHER, vocab=cfg["vocab"])
            W, TW = make(g, cfg), make(g, tcfg)
            inputs = torch.randint(0, cfg["vocab"], (B, T), generator=g)
            targets = torch.randint(0, cfg["vocab"], (B, T), generator=g)
            targets[0, 3] = -1
            targets[1, T - 1] = -1
            cfg = dict(cfg, losses=[[k, t, w] for k, t, w in LOSSES], teacher=tcfg)
            record(f, "config", torch.tensor(list(json.dumps(cfg).encode()), dtype=torch.float32))
            for name, t in W.items():
                record(f, name, t)
            for name, t in TW.items():
                record(f, "teacher." + name, t)
            record(f, "inputs", inputs.double())
            record(f, "targets", targets.double())
            with torch.no_grad():
                teacher = forward(tcfg, TW, inputs)
            for kind, temp, ce_weight in LOSSES:
                P = {n: t.clone().requires_grad_(True) for n, t in W.items()}
                loss = loss_fn(kind, forward(cfg, P, inputs), teacher, targets, temp, ce_weight)
                loss.backward()
                record(f, "loss." + kind, loss.reshape(1))
                for name, t in P.items():
                    record(f, f"grad.{kind}.{name}", t.grad)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/torch-grads.bin")
