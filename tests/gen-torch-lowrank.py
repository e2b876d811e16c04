#!/usr/bin/python3
"""Writes tests/data/torch-lowrank.bin: what PyTorch computes for training
a model whose weights are products of two factors, W = A B (A rows x r,
B r x cols), as tests/test-heal.c checks slimlab's trainer against. Here
the forward multiplies by the product PyTorch forms and autograd gives
the factors' gradients, independently of slimlab's two thin products.

Cases, each with its configuration, weights, factors, the loss and the
gradient of every tensor that trains (float64):
  llama  a Llama (tests/torch_llama.py) whose block matrices and tied token
         embeddings (so the output head too) are factored, each at its own
         rank; ffn_up of blocks 0 and 1 share one B (Basis Sharing), named
         after block 0's; loss T^2 KL at T = 2 from the dense model, with
         a fifth of cross-entropy mixed in
  gpt2   a GPT-2 (tests/torch_gpt2.py) whose fused qkv matrix and ffn_down
         are factored, on cross-entropy

Factor names: a weight NAME.weight has NAME.lr_a and NAME.lr_b. Run by hand
with Debian's python3-torch (/usr/bin/python3); the output is committed, so
the tests do not need PyTorch. Record layout: tests/torch_llama.py.
"""
import json
import sys

import torch

import torch_gpt2
import torch_llama
from torch_llama import loss_fn, record

LLAMA = dict(rope="norm", dim=32, head_dim=8, n_heads=4, n_kv_heads=2, hidden=64, n_layers=2, vocab=48,
             eps=1e-5, theta=10000.0, rope_dim=8, qkv_bias=False, tied=True)
GPT2 = dict(arch="gpt2", dim=32, n_heads=4, hidden=64, n_layers=2, vocab=40, n_pos=12, eps=1e-5)
B, T = 2, 11


def stem(name):
    return name[:-len(".weight")]


def factor(g, W, names, shared):
    """Factors for each name (rank 3 + its index mod 5), B shared where
    shared maps a name to the name whose B it uses."""
    F = {}
    for i, n in enumerate(names):
        rows, cols = W[n].shape
        r = 3 + i % 5
        if n in shared:
            r = F[stem(shared[n]) + ".lr_b"].shape[0]
        F[stem(n) + ".lr_a"] = (torch.randn(rows, r, generator=g, dtype=torch.float32) * 0.5 / r ** 0.5).double()
        if n not in shared:
            F[stem(n) + ".lr_b"] = (torch.randn(r, cols, generator=g, dtype=torch.float32) * 0.6).double()
    return F


def product(W, F, names, shared):
    E = dict(W)
    for n in names:
        E[n] = F[stem(n) + ".lr_a"] @ F[stem(shared.get(n, n)) + ".lr_b"]
    return E


def case(f, tag, cfg, mod, names, shared, loss_args, g):
    W0 = mod.make(g, cfg)
    inputs = torch.randint(0, cfg["vocab"], (B, T), generator=g)
    targets = torch.randint(0, cfg["vocab"], (B, T), generator=g)
    targets[1, 4] = -1
    F0 = factor(g, W0, names, shared)
    with torch.no_grad():
        teacher = mod.forward(cfg, W0, inputs)
    record(f, f"{tag}.config", torch.tensor(list(json.dumps(cfg).encode()), dtype=torch.float32))
    record(f, f"{tag}.inputs", inputs.double())
    record(f, f"{tag}.targets", targets.double())
    for n, t in list(W0.items()) + list(F0.items()):
        record(f, f"{tag}.{n}", t)
    W = {k: v.clone().requires_grad_(True) for k, v in W0.items() if k not in names}
    F = {k: v.clone().requires_grad_(True) for k, v in F0.items()}
    loss = loss_fn(loss_args[0], mod.forward(cfg, product(W, F, names, shared), inputs), teacher, targets,
                   *loss_args[1:])
    loss.backward()
    record(f, f"{tag}.loss", loss.detach().reshape(1))
    for n, t in list(W.items()) + list(F.items()):
        record(f, f"{tag}.grad.{n}", t.grad)


def main(out):
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(20261207)
    mats = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
    llama = ["token_embd.weight"] + [f"blk.{l}.{m}.weight" for l in range(2) for m in mats]
    gpt2 = [f"blk.{l}.{m}.weight" for l in range(2) for m in ("attn_qkv", "ffn_down")]
    with open(out, "wb") as f:
        case(f, "llama", LLAMA, torch_llama, llama, {"blk.1.ffn_up.weight": "blk.0.ffn_up.weight"},
             ("kl_forward", 2.0, 0.2), g)
        case(f, "gpt2", GPT2, torch_gpt2, gpt2, {}, ("ce", 1.0, 1.0), g)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/torch-lowrank.bin")
