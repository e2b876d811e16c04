"""A Llama-family transformer in plain PyTorch, written from the equations:
the independent reference that tests/gen-torch-grads.py computes gradients
with, tests/gen-torch-reference.py computes logits with and
bench/train-torch.py times. Weights are a dict of tensors named as GGUF
names them; any float dtype. Also the record layout those generators write
for the C tests: u32 name length, name, u32 ndims, u64 dims, f32 data; and
the straight-through fake quantization the healing generators share."""
import math
import struct

import torch
import torch.nn.functional as F


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, style, theta, rot):
    # x: [B, T, H, D]; position t rotates pairs by t * theta^(-2i/rot).
    T, half = x.shape[1], rot // 2
    inv = theta ** (-torch.arange(0, half, dtype=x.dtype) * 2 / rot)
    ang = torch.arange(T, dtype=x.dtype)[:, None] * inv[None, :]
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
    r = lambda *s, scale=0.3: (torch.randn(*s, generator=g, dtype=torch.float32) * scale).to(torch.get_default_dtype())
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


def record(f, name, t):
    b = name.encode()
    f.write(struct.pack("<I", len(b)) + b)
    f.write(struct.pack("<I", t.dim()) + b"".join(struct.pack("<Q", d) for d in t.shape))
    f.write(t.detach().contiguous().float().numpy().tobytes())


class FakeQuant(torch.autograd.Function):
    """Forward: the fixed grid's value; backward: straight through where inside."""

    @staticmethod
    def forward(ctx, w, out, inside):
        ctx.save_for_backward(inside)
        return out

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved_tensors
        return g * inside, None, None
