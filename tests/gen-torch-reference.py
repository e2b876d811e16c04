#!/usr/bin/python3
"""Writes tests/data/torch-forward.bin: small random transformers and the
logits PyTorch computes for them, the independent reference that
tests/test-arch.c checks slimlab's forward pass against.

Run by hand with Debian's python3-torch (/usr/bin/python3); the output is
committed, so the tests do not need PyTorch.

File layout: repeated records, each
  u32 name length, name (utf-8), u32 ndims, u64 dims[ndims], f32 data
A record named "model" (ndims 0) starts a model; the JSON config of the
model follows as a record named "config" holding the JSON bytes as one
u8-per-f32 vector (kept simple to parse in C).
"""
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_neox(x, pos, theta, rot):
    # x: [T, H, D]; rotate the first `rot` dims as (i, i + rot/2) pairs.
    half = rot // 2
    inv = 1.0 / (theta ** (torch.arange(0, half, dtype=torch.float64) * 2 / rot))
    ang = pos[:, None].double() * inv[None, :]
    cos, sin = ang.cos().float()[:, None, :], ang.sin().float()[:, None, :]
    x1, x2, rest = x[..., :half], x[..., half:rot], x[..., rot:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)


def rope_interleaved(x, pos, theta, rot):
    # Adjacent pairs (2i, 2i+1) as complex numbers, as Meta's reference does.
    half = rot // 2
    inv = 1.0 / (theta ** (torch.arange(0, half, dtype=torch.float64) * 2 / rot))
    ang = pos[:, None].double() * inv[None, :]
    rotor = torch.polar(torch.ones_like(ang), ang).to(torch.complex64)[:, None, :]
    xc = torch.view_as_complex(x[..., :rot].reshape(*x.shape[:-1], half, 2).contiguous())
    out = torch.view_as_real(xc * rotor).flatten(-2)
    return torch.cat([out, x[..., rot:]], dim=-1)


def attention(q, k, v):
    # q: [T, H, D], k/v: [T, Hkv, D] -> [T, H*D], causal, grouped-query.
    T, H, D = q.shape
    rep = H // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    scores = q @ k.transpose(1, 2) / math.sqrt(D)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    o = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ v
    return o.transpose(0, 1).reshape(T, H * D)


def llama_forward(cfg, W, tokens):
    T = len(tokens)
    pos = torch.arange(T)
    hd, H, Hkv = cfg["head_dim"], cfg["n_heads"], cfg["n_kv_heads"]
    rope = rope_neox if cfg["rope"] == "neox" else rope_interleaved
    x = W["token_embd.weight"][tokens]
    for l in range(cfg["n_layers"]):
        p = f"blk.{l}."
        h = rms_norm(x, W[p + "attn_norm.weight"], cfg["eps"])
        q = F.linear(h, W[p + "attn_q.weight"], W.get(p + "attn_q.bias")).view(T, H, hd)
        k = F.linear(h, W[p + "attn_k.weight"], W.get(p + "attn_k.bias")).view(T, Hkv, hd)
        v = F.linear(h, W[p + "attn_v.weight"], W.get(p + "attn_v.bias")).view(T, Hkv, hd)
        q = rope(q, pos, cfg["theta"], cfg["rope_dim"])
        k = rope(k, pos, cfg["theta"], cfg["rope_dim"])
        x = x + F.linear(attention(q, k, v), W[p + "attn_output.weight"])
        h = rms_norm(x, W[p + "ffn_norm.weight"], cfg["eps"])
        g = F.silu(F.linear(h, W[p + "ffn_gate.weight"])) * F.linear(h, W[p + "ffn_up.weight"])
        x = x + F.linear(g, W[p + "ffn_down.weight"])
    x = rms_norm(x, W["output_norm.weight"], cfg["eps"])
    return F.linear(x, W.get("output.weight", W["token_embd.weight"]))


def gpt2_forward(cfg, W, tokens):
    T = len(tokens)
    D, H = cfg["dim"], cfg["n_heads"]
    x = W["token_embd.weight"][tokens] + W["position_embd.weight"][:T]
    for l in range(cfg["n_layers"]):
        p = f"blk.{l}."
        h = F.layer_norm(x, (D,), W[p + "attn_norm.weight"], W[p + "attn_norm.bias"], cfg["eps"])
        qkv = F.linear(h, W[p + "attn_qkv.weight"], W[p + "attn_qkv.bias"])
        q, k, v = (t.reshape(T, H, D // H) for t in qkv.split(D, dim=-1))
        x = x + F.linear(attention(q, k, v), W[p + "attn_output.weight"], W[p + "attn_output.bias"])
        h = F.layer_norm(x, (D,), W[p + "ffn_norm.weight"], W[p + "ffn_norm.bias"], cfg["eps"])
        h = F.gelu(F.linear(h, W[p + "ffn_up.weight"], W[p + "ffn_up.bias"]), approximate="tanh")
        x = x + F.linear(h, W[p + "ffn_down.weight"], W[p + "ffn_down.bias"])
    x = F.layer_norm(x, (D,), W["output_norm.weight"], W["output_norm.bias"], cfg["eps"])
    return F.linear(x, W["token_embd.weight"])


def make_llama(g, cfg):
    D, hd, H, Hkv, F_, V = cfg["dim"], cfg["head_dim"], cfg["n_heads"], cfg["n_kv_heads"], cfg["hidden"], cfg["vocab"]
    r = lambda *s, scale=0.3: torch.randn(*s, generator=g) * scale
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


def make_gpt2(g, cfg):
    D, F_, V = cfg["dim"], cfg["hidden"], cfg["vocab"]
    r = lambda *s, scale=0.3: torch.randn(*s, generator=g) * scale
    W = {"token_embd.weight": r(V, D, scale=1.0), "position_embd.weight": r(cfg["n_pos"], D),
         "output_norm.weight": 1 + r(D, scale=0.1), "output_norm.bias": r(D, scale=0.1)}
    for l in range(cfg["n_layers"]):
        p = f"blk.{l}."
        for n in ("attn_norm", "ffn_norm"):
            W[p + n + ".weight"] = 1 + r(D, scale=0.1)
            W[p + n + ".bias"] = r(D, scale=0.1)
        W[p + "attn_qkv.weight"] = r(3 * D, D)
        W[p + "attn_qkv.bias"] = r(3 * D, scale=0.1)
        W[p + "attn_output.weight"] = r(D, D)
        W[p + "attn_output.bias"] = r(D, scale=0.1)
        W[p + "ffn_up.weight"] = r(F_, D)
        W[p + "ffn_up.bias"] = r(F_, scale=0.1)
        W[p + "ffn_down.weight"] = r(D, F_)
        W[p + "ffn_down.bias"] = r(D, scale=0.1)
    return W


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


def record(f, name, t):
    b = name.encode()
    f.write(struct.pack("<I", len(b)) + b)
    f.write(struct.pack("<I", t.dim()) + b"".join(struct.pack("<Q", d) for d in t.shape))
    f.write(t.contiguous().float().numpy().tobytes())


def main(out):
    g = torch.Generator().manual_seed(20261122)
    with open(out, "wb") as f:
        for cfg in MODELS:
            W = make_gpt2(g, cfg) if cfg["arch"] == "gpt2" else make_llama(g, cfg)
            tokens = torch.randint(0, cfg["vocab"], (24,), generator=g)
            with torch.no_grad():
                fwd = gpt2_forward if cfg["arch"] == "gpt2" else llama_forward
                logits = fwd(cfg, W, tokens)
            record(f, "config", torch.tensor(list(json.dumps(cfg).encode()), dtype=torch.float32))
            for name, t in W.items():
                record(f, name, t)
            record(f, "tokens", tokens.float())
            record(f, "logits", logits)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/torch-forward.bin")
