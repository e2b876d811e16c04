#!/usr/bin/python3
"""Writes tests/data/torch-heal.bin: what PyTorch computes for healing a
compressed model, as tests/test-heal.c checks slimlab's trainer against.

A small random Llama (tests/torch_llama.py) whose block matrices pass
through fake quantization, written here from the formats' published
definitions (independently of slimlab's code), with the scales fixed on
the weights training starts from and a straight-through gradient that
stops where the format clipped a value or where a value is held (the
element of each run that fixed its scale keeps its quantized value, so
that the healed weights pack into the same scales):

  int4-g32, q4_0  runs of 32: d = f16(ext / -8), ext the value of largest
                  magnitude; levels d*k, k in -8..7; straight through while
                  w/d lies in [-8.5, 7.5]
  nvfp4           the tensor's S = amax / (448 * 6); runs of 16: d = e4m3(
                  run amax / 6 / S) * S; values d * e2m1(w/d) (E2M1 rounds
                  to nearest, ties to even, and saturates at 6); straight
                  through while |w/d| <= 6

Cases, each with the loss and every gradient (float64):
  fq.<format>     cross-entropy through fake quantization of every block matrix
  lora            int4-g32 frozen, a rank-4 adapter (alpha 8) on every block
                  matrix, B not zero: the adapters' gradients
  qad             ten AdamW steps of quantization-aware distillation (int4-g32,
                  T^2 KL at T = 2 from the unquantized model): the loss curve

Run by hand with Debian's python3-torch (/usr/bin/python3); the output is
committed, so the tests do not need PyTorch. Record layout: tests/torch_llama.py.
"""
import json
import math
import struct
import sys

import numpy as np
import torch

from torch_llama import FakeQuant, forward, loss_fn, make, record

CFG = dict(rope="norm", dim=32, head_dim=8, n_heads=4, n_kv_heads=2, hidden=64, n_layers=2, vocab=48,
           eps=1e-5, theta=10000.0, rope_dim=8, qkv_bias=False, tied=False)
MATS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
B, T = 2, 11
f32 = np.float32


def minifloat(ebits, mbits, ieee, max_code):
    """Encode and decode of an OCP minifloat, round to nearest even."""
    bias = (1 << (ebits - 1)) - 1
    emin = 1 - bias

    def decode(c):
        e, m = (c >> mbits) & ((1 << ebits) - 1), c & ((1 << mbits) - 1)
        if e == 0:
            return f32(math.ldexp(m, 1 - bias - mbits))
        return f32(math.ldexp((1 << mbits) + m, e - bias - mbits))

    top = decode(max_code)

    def encode(a):  # magnitude only
        a = f32(a)
        if a >= top:
            return max_code
        if a == 0:
            return 0
        _, k = math.frexp(float(a))
        e = k - 1
        if e < emin:
            return int(round(math.ldexp(float(a), mbits - emin)))
        q = int(round(math.ldexp(float(a), mbits - e)))
        if q == 2 << mbits:
            q, e = 1 << mbits, e + 1
        return ((e + bias) << mbits) | (q - (1 << mbits))

    return encode, decode, top


E4M3 = minifloat(4, 3, False, 0x7E)
E2M1 = minifloat(2, 1, False, 0x7)


def e2m1_round(x):
    enc, dec, _ = E2M1
    v = dec(enc(abs(x)))
    return f32(-v) if x < 0 else v


def f16(x):
    return f32(np.float16(f32(x)))


def grid_int4(W):
    """Per run of 32 (rows x cols/32): d, and the held element with its value."""
    rows, cols = W.shape
    d = np.zeros((rows, cols // 32), f32)
    pin = np.zeros((rows, cols // 32), np.int64)
    pinv = np.zeros((rows, cols // 32), f32)
    for r in range(rows):
        for b in range(cols // 32):
            x = W[r, b * 32:(b + 1) * 32]
            amax, ext = f32(0), f32(0)
            for v in x:
                if abs(v) > amax:
                    amax, ext = abs(v), v
            dd = f32(ext / f32(-8))
            idd = f32(1) / dd if dd != 0 else f32(0)
            codes = [min(15, max(0, int(f32(v * idd + f32(8.5))))) for v in x]
            dh = f16(dd)
            deq = [f32(f32(c - 8) * dh) for c in codes]
            big = 0
            for j in range(1, 32):
                if abs(deq[j]) > abs(deq[big]):
                    big = j
            d[r, b], pin[r, b], pinv[r, b] = dh, big, deq[big]
    return d, pin, pinv


def fq_int4(W, grid):
    d, pin, pinv = grid
    rows, cols = W.shape
    out = np.zeros_like(W)
    inside = np.zeros_like(W)
    for r in range(rows):
        for c in range(cols):
            b, j = c // 32, c % 32
            dd = d[r, b]
            if j == pin[r, b]:
                out[r, c] = pinv[r, b]
                continue
            if dd == 0:
                out[r, c], inside[r, c] = 0, float(W[r, c] == 0)
                continue
            k = f32(W[r, c] / dd)
            inside[r, c] = float(-8.5 <= k <= 7.5)
            out[r, c] = f32(dd * f32(min(7, max(-8, np.rint(k)))))
    return out, inside


def grid_nvfp4(W):
    rows, cols = W.shape
    enc, dec, _ = E4M3
    S = f32(np.max(np.abs(W)) / f32(448.0 * 6.0))
    d = np.zeros((rows, cols // 16), f32)
    pin = np.zeros((rows, cols // 16), np.int64)
    pinv = np.zeros((rows, cols // 16), f32)
    for r in range(rows):
        for b in range(cols // 16):
            x = W[r, b * 16:(b + 1) * 16]
            amax = f32(np.max(np.abs(x)))
            sb = enc(f32(f32(amax / f32(6)) / S)) if S != 0 else 0
            dd = f32(dec(sb) * S)
            deq = [f32(e2m1_round(f32(v / dd)) * dd) if dd != 0 else f32(0) for v in x]
            big = 0
            for j in range(1, 16):
                if abs(deq[j]) > abs(deq[big]):
                    big = j
            d[r, b], pin[r, b], pinv[r, b] = dd, big, deq[big]
    return d, pin, pinv


def fq_nvfp4(W, grid):
    d, pin, pinv = grid
    rows, cols = W.shape
    out = np.zeros_like(W)
    inside = np.zeros_like(W)
    for r in range(rows):
        for c in range(cols):
            b, j = c // 16, c % 16
            dd = d[r, b]
            if j == pin[r, b]:
                out[r, c] = pinv[r, b]
                continue
            if dd == 0:
                out[r, c], inside[r, c] = 0, 1
                continue
            k = f32(W[r, c] / dd)
            inside[r, c] = float(abs(k) <= 6)
            out[r, c] = f32(dd * e2m1_round(k))
    return out, inside


FORMATS = {"int4-g32": (grid_int4, fq_int4), "q4_0": (grid_int4, fq_int4), "nvfp4": (grid_nvfp4, fq_nvfp4)}


def fq_weights(W, grids, fmt):
    """W with every block matrix through fake quantization (torch float64)."""
    E = dict(W)
    for name, grid in grids.items():
        out, inside = FORMATS[fmt][1](W[name].detach().float().numpy(), grid)
        E[name] = FakeQuant.apply(W[name], torch.from_numpy(out).double(), torch.from_numpy(inside).double())
    return E


def block_names():
    return [f"blk.{l}.{m}.weight" for l in range(CFG["n_layers"]) for m in MATS]


def main(out):
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(20261206)
    W0 = make(g, CFG)
    inputs = torch.randint(0, CFG["vocab"], (B, T), generator=g)
    targets = torch.randint(0, CFG["vocab"], (B, T), generator=g)
    targets[1, 4] = -1
    with open(out, "wb") as f:
        record(f, "config", torch.tensor(list(json.dumps(CFG).encode()), dtype=torch.float32))
        for name, t in W0.items():
            record(f, name, t)
        record(f, "inputs", inputs.double())
        record(f, "targets", targets.double())
        # Fake quantization, cross-entropy, every gradient.
        for fmt in FORMATS:
            grids = {n: FORMATS[fmt][0](W0[n].float().numpy()) for n in block_names()}
            W = {k: v.clone().requires_grad_(True) for k, v in W0.items()}
            loss = loss_fn("ce", forward(CFG, fq_weights(W, grids, fmt), inputs), None, targets, 1.0, 1.0)
            loss.backward()
            record(f, f"fq.{fmt}.loss", loss.detach().reshape(1))
            for name, t in W.items():
                record(f, f"fq.{fmt}.grad.{name}", t.grad)
        # LoRA over frozen int4-g32: rank 4, alpha 8, B not zero.
        grids = {n: grid_int4(W0[n].float().numpy()) for n in block_names()}
        base = {}
        for n in block_names():
            o, _ = fq_int4(W0[n].float().numpy(), grids[n])
            base[n] = torch.from_numpy(o).double()
        r, scale = 4, 8.0 / 4
        A, Bm = {}, {}
        for n in block_names():
            rows, cols = W0[n].shape
            A[n] = (torch.randn(r, cols, generator=g, dtype=torch.float32) * 0.2).double().requires_grad_(True)
            Bm[n] = (torch.randn(rows, r, generator=g, dtype=torch.float32) * 0.2).double().requires_grad_(True)
            record(f, f"lora.a.{n}", A[n])
            record(f, f"lora.b.{n}", Bm[n])
        E = dict(W0)
        for n in block_names():
            E[n] = base[n] + scale * Bm[n] @ A[n]
        loss = loss_fn("ce", forward(CFG, E, inputs), None, targets, 1.0, 1.0)
        loss.backward()
        record(f, "lora.loss", loss.detach().reshape(1))
        for n in block_names():
            record(f, f"lora.grad.a.{n}", A[n].grad)
            record(f, f"lora.grad.b.{n}", Bm[n].grad)
        # Ten steps of quantization-aware distillation with AdamW.
        grids = {n: grid_int4(W0[n].float().numpy()) for n in block_names()}
        W = {k: v.clone().requires_grad_(True) for k, v in W0.items()}
        decay = [t for n, t in W.items() if t.dim() >= 2]
        plain = [t for n, t in W.items() if t.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}],
                                lr=2e-3, betas=(0.9, 0.95), eps=1e-8)
        with torch.no_grad():
            teacher = forward(CFG, W0, inputs)
        losses = []
        for step in range(10):
            opt.zero_grad()
            logits = forward(CFG, fq_weights(W, grids, "int4-g32"), inputs)
            loss = loss_fn("kl_forward", logits, teacher, targets, 2.0, 0.0)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        record(f, "qad.losses", torch.tensor(losses))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/torch-heal.bin")
