#!/usr/bin/python3
"""Writes tests/data/torch-gpt2.bin: what PyTorch computes for training and
healing a small random GPT-2 (tests/torch_gpt2.py), as tests/test-train-gpt2.c
and tests/test-lsq.c check slimlab's trainer against.

Block matrices go through fake quantization written here from the formats'
published definitions (independently of slimlab's code). Each run of 32
weights of a row gets its grid from the format's quantizer:

  int4-g32, q4_0  d = f16(ext / -8), ext the value of largest magnitude;
                  levels d*k, k in -8..7
  q8_0            d = f16(amax / 127); levels d*k, k in -127..127
  int4-g32-asym   d = f16((max - min) / 15), m = f16(min); levels m + d*k,
                  k in 0..15

and the element of each run that fixed its scale (the largest magnitude;
the least and the greatest with a minimum, by their quantized values) is
kept at its level, so that the healed weights pack into the same scales.

  fixed grid      the scales stay where training starts; straight through
                  while (w - m)/d lies within half a step beyond the levels
  learned steps   LSQ (Esser et al. 2020) as its paper writes it: the step
                  d of each run is a parameter, q = m + s * round_pass(clamp(
                  (w - m)/s, kmin, kmax)) with s = grad_scale(d, 1/sqrt(32 *
                  kmax)); kept elements at m + s * their level. The rounding
                  decisions are taken in float32, as slimlab takes them.

Cases (losses and gradients in float64):
  ce              cross-entropy, every gradient
  adamw           five AdamW steps (weight decay on matrices and
                  embeddings, none on norms and biases): the loss curve
  heal            int4-g32 on every block matrix (fixed grid): attn_qkv
                  with a rank-4 LoRA adapter (alpha 8, B not zero),
                  attn_output frozen, a quarter of ffn_up pruned; every
                  gradient
  lsq.<format>    learned steps on every block matrix: the loss and the
                  steps' gradients (for int4 every gradient), and for int4
                  five AdamW steps' losses

Run by hand with Debian's python3-torch (/usr/bin/python3); the output is
committed, so the tests do not need PyTorch. Record layout: tests/torch_llama.py.
"""
import json
import math
import sys

import numpy as np
import torch

from torch_gpt2 import forward, make
from torch_llama import FakeQuant, loss_fn, record

CFG = dict(arch="gpt2", dim=32, n_heads=4, hidden=64, n_layers=2, vocab=40, n_pos=12, eps=1e-5)
MATS = ["attn_qkv", "attn_output", "ffn_up", "ffn_down"]
B, T, G = 2, 11, 32
f32 = np.float32
ADAMW = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
WD = 0.1


def f16(x):
    return f32(np.float16(f32(x)))


def roundf(v):
    """C's roundf: half away from zero."""
    return math.copysign(math.floor(abs(float(v)) + 0.5), float(v))


def fit_run(x, fmt):
    """d, m, kmin, kmax, and the kept (column, level) pairs of one run."""
    x = x.astype(f32)
    if fmt == "int4":
        ext = f32(0)
        for v in x:
            if abs(v) > abs(ext):
                ext = v
        d = f32(ext / f32(-8))
        idd = f32(1) / d if d != 0 else f32(0)
        codes = [min(15, max(0, int(f32(v * idd + f32(8.5))))) for v in x]
        dh, m, kmin, kmax = f16(d), f32(0), -8, 7
        deq = [f32(f32(c - 8) * dh) for c in codes]
    elif fmt == "q8_0":
        d = f32(np.max(np.abs(x)) / f32(127))
        idd = f32(1) / d if d != 0 else f32(0)
        codes = [min(127, max(-127, roundf(f32(v * idd)))) for v in x]
        dh, m, kmin, kmax = f16(d), f32(0), -127, 127
        deq = [f32(f32(c) * dh) for c in codes]
    else:  # int4-g32-asym
        lo, hi = np.min(x), np.max(x)
        d = f32(f32(hi - lo) / f32(15))
        idd = f32(1) / d if d != 0 else f32(0)
        codes = [min(15, max(0, int(f32(f32(v - lo) * idd + f32(0.5))))) for v in x]
        dh, m, kmin, kmax = f16(d), f16(lo), 0, 15
        deq = [f32(f32(f32(c) * dh) + m) for c in codes]
    if fmt == "asym":
        pins = [int(np.argmin(deq)), int(np.argmax(deq))]
    else:
        pins = [max(range(len(deq)), key=lambda j: (abs(deq[j]), -j))]
    kept = [(j, int(np.rint((deq[j] - m) / dh)) if dh != 0 else 0) for j in pins]
    return dh, m, kmin, kmax, kept, [deq[j] for j in pins]


class Grid:
    """A matrix's grid: per run d, m, the kept columns with levels and values."""

    def __init__(self, W, fmt):
        W = W.detach().float().numpy()
        rows, cols = W.shape
        nb = cols // G
        self.d = np.zeros((rows, nb), f32)
        self.m = np.zeros((rows, nb), f32)
        self.pin = np.zeros((rows, cols), bool)
        self.level = np.zeros((rows, cols), f32)
        self.value = np.zeros((rows, cols), f32)
        for r in range(rows):
            for b in range(nb):
                d, m, self.kmin, self.kmax, kept, vals = fit_run(W[r, b * G:(b + 1) * G], fmt)
                self.d[r, b], self.m[r, b] = d, m
                for (j, k), v in zip(kept, vals):
                    self.pin[r, b * G + j] = True
                    self.level[r, b * G + j] = k
                    self.value[r, b * G + j] = v

    def fixed(self, W):
        """Fake quantization on the fixed grid, straight through within half a step beyond the levels."""
        w = W.detach().float().numpy()
        d, m = np.repeat(self.d, G, 1), np.repeat(self.m, G, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = ((w - m) / d).astype(f32)
        out = (m + d * np.clip(np.rint(x), self.kmin, self.kmax)).astype(f32)
        out = np.where(self.pin, self.value, out)
        inside = (x >= self.kmin - 0.5) & (x <= self.kmax + 0.5) & ~self.pin
        return FakeQuant.apply(W, torch.from_numpy(out).double(), torch.from_numpy(inside.astype(np.float64)))

    def learned(self, W, D):
        """LSQ with steps D (rows x runs); rounding decided in float32."""
        g = 1.0 / math.sqrt(G * self.kmax)
        s = grad_scale(D, g).repeat_interleave(G, dim=1)
        m = torch.from_numpy(np.repeat(self.m, G, 1)).double()
        v = torch.clamp((W - m) / s, self.kmin, self.kmax)
        with np.errstate(divide="ignore", invalid="ignore"):
            x32 = ((W.detach().float().numpy() - m.float().numpy()) / s.detach().float().numpy()).astype(f32)
        k = torch.from_numpy(np.clip(np.rint(x32), self.kmin, self.kmax)).double()
        q = m + s * ((k - v).detach() + v)
        kept = m + s * torch.from_numpy(self.level).double()
        return torch.where(torch.from_numpy(self.pin), kept, q)


def grad_scale(x, scale):
    return (x - x * scale).detach() + x * scale


def block_names(mat=None):
    return [f"blk.{l}.{m}.weight" for l in range(CFG["n_layers"]) for m in MATS if mat in (None, m)]


def optimizer(params):
    decay = [t for t in params if t.dim() >= 2]
    plain = [t for t in params if t.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": plain, "weight_decay": 0.0}],
                             **ADAMW)


def lsq_forward(W, D, grids, inputs):
    E = dict(W)
    for n in block_names():
        E[n] = grids[n].learned(W[n], D[n])
    return forward(CFG, E, inputs)


def main(out):
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(20261207)
    W0 = make(g, CFG)
    inputs = torch.randint(0, CFG["vocab"], (B, T), generator=g)
    targets = torch.randint(0, CFG["vocab"], (B, T), generator=g)
    targets[0, 5] = -1
    ce = lambda logits: loss_fn("ce", logits, None, targets, 1.0, 1.0)
    with open(out, "wb") as f:
        record(f, "config", torch.tensor(list(json.dumps(CFG).encode()), dtype=torch.float32))
        for name, t in W0.items():
            record(f, name, t)
        record(f, "inputs", inputs.double())
        record(f, "targets", targets.double())

        W = {k: v.clone().requires_grad_(True) for k, v in W0.items()}
        loss = ce(forward(CFG, W, inputs))
        loss.backward()
        record(f, "ce.loss", loss.detach().reshape(1))
        for name, t in W.items():
            record(f, f"ce.grad.{name}", t.grad)

        W = {k: v.clone().requires_grad_(True) for k, v in W0.items()}
        opt, losses = optimizer(list(W.values())), []
        for step in range(5):
            opt.zero_grad()
            loss = ce(forward(CFG, W, inputs))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        record(f, "adamw.losses", torch.tensor(losses))

        # Healing: fixed int4 grids; an adapter, a frozen matrix, a mask.
        W = {k: v.clone() for k, v in W0.items()}
        keep = {}
        for n in block_names("ffn_up"):
            mask = torch.rand(W[n].shape, generator=g) < 0.25
            W[n][mask] = 0
            keep[n] = (~mask).double()
            record(f, f"heal.mask.{n}", mask.double())
        grids = {n: Grid(W[n], "int4") for n in block_names()}
        W = {k: v.requires_grad_(k not in block_names("attn_output")) for k, v in W.items()}
        A, Bm = {}, {}
        for n in block_names("attn_qkv"):
            rows, cols = W[n].shape
            A[n] = (torch.randn(4, cols, generator=g, dtype=torch.float32) * 0.2).double().requires_grad_(True)
            Bm[n] = (torch.randn(rows, 4, generator=g, dtype=torch.float32) * 0.2).double().requires_grad_(True)
        E = dict(W)
        for n in block_names():
            E[n] = grids[n].fixed(W[n] * keep[n] if n in keep else W[n])
        for n in block_names("attn_qkv"):
            E[n] = E[n] + 8.0 / 4 * Bm[n] @ A[n]
        loss = ce(forward(CFG, E, inputs))
        loss.backward()
        record(f, "heal.loss", loss.detach().reshape(1))
        for name, t in W.items():
            if t.requires_grad:
                record(f, f"heal.grad.{name}", t.grad)
        for n in block_names("attn_qkv"):
            record(f, f"heal.lora_a.{n}", A[n])
            record(f, f"heal.lora_b.{n}", Bm[n])
            record(f, f"heal.grad.{n}.lora_a", A[n].grad)
            record(f, f"heal.grad.{n}.lora_b", Bm[n].grad)

        # Learned steps.
        for fmt in ("int4", "q8_0", "asym"):
            grids = {n: Grid(W0[n], fmt) for n in block_names()}
            W = {k: v.clone().requires_grad_(True) for k, v in W0.items()}
            D = {n: torch.from_numpy(grids[n].d).double().requires_grad_(True) for n in block_names()}
            loss = ce(lsq_forward(W, D, grids, inputs))
            loss.backward()
            record(f, f"lsq.{fmt}.loss", loss.detach().reshape(1))
            for n in block_names():
                record(f, f"lsq.{fmt}.grad.{n}.scale", D[n].grad)
            if fmt != "int4":
                continue
            for name, t in W.items():
                record(f, f"lsq.{fmt}.grad.{name}", t.grad)
            W = {k: v.clone().requires_grad_(True) for k, v in W0.items()}
            D = {n: torch.from_numpy(grids[n].d).double().requires_grad_(True) for n in block_names()}
            opt, losses = optimizer(list(W.values())), []
            opt.add_param_group({"params": list(D.values()), "weight_decay": 0.0})
            for step in range(5):
                opt.zero_grad()
                loss = ce(lsq_forward(W, D, grids, inputs))
                loss.backward()
                opt.step()
                losses.append(loss.item())
            record(f, f"lsq.{fmt}.losses", torch.tensor(losses))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/torch-gpt2.bin")
