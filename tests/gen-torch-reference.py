#!/usr/bin/python3
"""Writes tests/data/torch-forward.bin: small random transformers and the
logits PyTorch computes for them (Llama-family ones through torch_llama.py,
GPT-2 here), the independent reference that tests/test-arch.c checks
slimlab's forward pass against.

Run by hand with Debian's python3-torch (/usr/bin/python3); the output is
committed, so the tests do not need PyTorch.

File layout: repeated records, each
  u32 name length, name (utf-8), u32 ndims, u64 dims[ndims], f32 data
A record named "model" (ndims 0) starts a model; the JSON config of the
model follows as a record named "config" holding the JSON bytes as one
u8-per-f32 vector (kept simple to parse in C).
"""
import json
import sys

import torch

import torch_gpt2
from torch_llama import forward, make, record


MODELS = [
    # Qwen2-like: grouped-query, NeoX rotary, q/k/v biases, untied output.
    dict(name="qwen2-gqa", arch="llama", rope="neox", dim=48, head_dim=8, n_heads=6, n_kv_heads=2,
         hidden=80, n_layers=2, vocab=97, eps=1e-6, theta=1e6, rope_dim=8, qkv_bias=True, tied=False),
    # Llama-like: multi-query, interleaved rotary, tied output.
    dict(name="llama-mqa", arch="llama", rope="norm", dim=32, head_dim=8, n_heads=4, n_kv_heads=1,
         hidden=64, n_layers=3, vocab=61, eps=1e-5, theta=10000.0, rope_dim=8, qkv_bias=False, tied=True),
    # Plain multi-head with a head size that is not the embedding split (Gemma-like head_dim).
    dict(name="llama-mha-wide-head", arch="llama", rope="norm", dim=32, head_dim=16, n_heads=4,
         n_kv_heads=4, hidden=48, n_layers=2, vocab=50, eps=1e-5, theta=500000.0, rope_dim=16,
         qkv_bias=False, tied=False),
    dict(name="gpt2", arch="gpt2", dim=32, n_heads=4, hidden=128, n_layers=2, vocab=70, n_pos=64, eps=1e-5),
]


def main(out):
    g = torch.Generator().manual_seed(20261122)
    with open(out, "wb") as f:
        for cfg in MODELS:
            W = torch_gpt2.make(g, cfg) if cfg["arch"] == "gpt2" else make(g, cfg)
            tokens = torch.randint(0, cfg["vocab"], (24,), generator=g)
            with torch.no_grad():
                if cfg["arch"] == "gpt2":
                    logits = torch_gpt2.forward(cfg, W, tokens[None])[0]
                else:
                    logits = forward(cfg, W, tokens[None])[0]
            record(f, "config", torch.tensor(list(json.dumps(cfg).encode()), dtype=torch.float32))
            for name, t in W.items():
                record(f, name, t)
            record(f, "tokens", tokens.float())
            record(f, "logits", logits)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/torch-forward.bin")
