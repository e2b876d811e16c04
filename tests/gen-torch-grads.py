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
import math
import struct
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, style, theta, rot):
    # x: [B, T, H, D]; position t rotates pairs by t * theta^(-2i/rot).
    T, half = x.shape[1], rot // 2
    inv = theta ** (-torch.arange(0, half, dtype=torch.float64) * 2 / rot)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    if style == "neox":
        a, b = x[..., :half], x[..., half:rot]
    else:
        a, b = x[..., 0:rot:2], x[..., 1:rot:2]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    if style == "neox":
        out = torch.cat([ra, rb], dim=-1)
    else:
        out = torch.stack([ra, rb], dim=-1).flatten(-2)
    return torch.cat([out, x[..., rot:]], dim=-1)


def attention(q, k, v):
    # q: [B, T, H, D], k/v: [B, T, Hkv, D] -> [B, T, H*D]; causal, grouped.
    B, T, H, D = q.shape
    rep = H // k.shape[2]
    k = k.repeat_interleave(rep, dim=2).transpose(1, 2)
    v = v.repeat_interleave(rep, dim=2).transpose(1, 2)
    q = q.transpose(1, 2)
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    o = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v
    return o.transpose(1, 2).reshape(B, T, H * D)


def forward(cfg, W, tokens):
    B, T = tokens.shape
    hd, H, Hkv = cfg["head_dim"], cfg["n_heads"], cfg["n_kv_heads"]
    x = W["token_embd.weight"][tokens]
    for l in range(cfg["n_layers"]):
        p = f"blk.{l}."
        h = rms_norm(x, W[p + "attn_norm.weight"], cfg["eps"])
        q = F.linear(h, W[p + "attn_q.weight"], W.get(p + "attn_q.bias")).view(B, T, H, hd)
        k = F.linear(h, W[p + "attn_k.weight"], W.get(p + "attn_k.bias")).view(B, T, Hkv, hd)
        v = F.linear(h, W[p + "attn_v.weight"], W.get(p + "attn_v.bias")).view(B, T, Hkv, hd)
        q = rope(q, cfg["rope"], cfg["theta"], cfg["rope_dim"])
        k = rope(k, cfg["rope"], cfg["theta"], cfg["rope_dim"])
        x = x + F.linear(attention(q, k, v), W[p + "attn_output.weight"])
        h = rms_norm(x, W[p + "ffn_norm.weight"], cfg["eps"])
        g = F.silu(F.linear(h, W[p + "ffn_gate.weight"])) * F.linear(h, W[p + "ffn_up.weight"])
        x = x + F.linear(g, W[p + "ffn_down.weight"])
    x = rms_norm(x, W["output_norm.weight"], cfg["eps"])
    return F.linear(x, W.get("output.weight", W["token_embd.weight"]))


def make(g, cfg):
    D, hd, H, Hkv, F_, V = cfg["dim"], cfg["head_dim"], cfg["n_heads"], cfg["n_kv_heads"], cfg["hidden"], cfg["vocab"]
    r = lambda *s, scale=0.3: (torch.randn(*s, generator=g, dtype=torch.float32) * scale).double()
    W = {"token_embd.weight": r(V, D, scale=1.0), "output_norm.weight": 1 + r(D, scale=0.1)}
    if not cfg["tied"]:
        W["output.weight"] = r(V, D)
    for l in range(cfg["n_layers"]):
        p = f"blk.{l}."
        W[p + "attn_norm.weight"] = 1 + r(D, scale=0.1)
        W[p + "attn_q.weight"] = r(H * hd, D)
        W[p + "attn_k.weight"] = r(Hkv * hd, D)
        W[p + "attn_v.weight"] = r(Hkv * hd, D)
        if cfg["qkv_bias"]:
            W[p + "attn_q.bias"] = r(H * hd)
            W[p + "attn_k.bias"] = r(Hkv * hd)
            W[p + "attn_v.bias"] = r(Hkv * hd)
        W[p + "attn_output.weight"] = r(D, H * hd)
        W[p + "ffn_norm.weight"] = 1 + r(D, scale=0.1)
        W[p + "ffn_gate.weight"] = r(F_, D)
        W[p + "ffn_up.weight"] = r(F_, D)
        W[p + "ffn_down.weight"] = r(D, F_)
    return W


def loss_fn(kind, logits, teacher, targets, temp, ce_weight):
    # Mean over scored positions (target >= 0) of the per-position loss.
    V = logits.shape[-1]
    z, y = logits.reshape(-1, V), targets.reshape(-1)
    keep = y >= 0
    z, y = z[keep], y[keep]
    ce = F.cross_entropy(z, y, reduction="none")
    if kind == "ce":
        return ce.mean()
    t = teacher.reshape(-1, V)[keep]
    lq, lp = F.log_softmax(z / temp, -1), F.log_softmax(t / temp, -1)
    if kind == "kl_forward":
        kl = (lp.exp() * (lp - lq)).sum(-1)
    else:
        kl = (lq.exp() * (lq - lp)).sum(-1)
    return (ce_weight * ce + (1 - ce_weight) * temp * temp * kl).mean()


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


def record(f, name, t):
    b = name.encode()
    f.write(struct.pack("<I", len(b)) + b)
    f.write(struct.pack("<I", t.dim()) + b"".join(struct.pack("<Q", d) for d in t.shape))
    f.write(t.detach().contiguous().float().numpy().tobytes())


def main(out):
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
