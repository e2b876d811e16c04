#!/usr/bin/python3
"""Writes tests/data/nf4-ref.bin: NF4 quantization (QLoRA, Dettmers et al.
2023) of two weight matrices, computed here from the paper's definitions
independently of slimlab's code, as tests/test-nf4.c checks slimlab against.

NF4       sixteen values: quantiles of a standard normal, 8 for the positive
          half and 7 for the negative one (so that 0 is a value), at evenly
          spaced probabilities from 0.5 to delta = (1 - 1/32 + 1 - 1/30) / 2,
          scaled to [-1, 1]; derived below and checked against the table
          QLoRA publishes, which is what is used. Blocks of 64 consecutive
          weights of a row: absmax a; the code of w is the value nearest
          f32(w / a) (the lower on a tie; a = 0 gives the code of 0), and
          w' = f32(nf4[code] * a).
double    the absmaxes of the whole tensor (its blocks in row order) less
quant.    their mean c (summed in float64, rounded to f32) in runs of 256
          consecutive blocks, each with s = max |a - c| (f32); each a gets
          the code k of the dynamic map's value nearest f32((a - c) / s)
          (0 where s = 0), and the block's scale becomes
          f32(f32(map[k] * s) + c); the NF4 codes stay those chosen with a.
          The dynamic map (Dettmers' 8-bit approximations, which QLoRA's
          reference implementation quantizes the absmaxes to): for i = 0..6
          the 2^i midpoints of 2^i equal steps from 0.1 to 1 (float64),
          times 10^(i-6), with both signs; then 0 and 1; as f32, ascending.
fake      healing's fake quantization on scales fixed where training starts:
quant.    each block keeps the scale d that quantizing W gave it (a, or the
          double-quantized scale) and the element of largest |w'| (the
          first) keeps its value; a moved weight v goes to nf4[code] * d with
          code the value nearest f32(v / d) (0 where d = 0), and passes a
          straight-through gradient unless it is the kept element or
          |f32(v / d)| > 1. The weights move by
          f32(f32(((i * 7919) % 201) - 100) * f32(2e-4)), i the flat index.

The matrices (stored as f16, so their values are exact in any float type):
  normal  66 x 256, N(0, 0.02): 264 blocks, double-quantized as 256 + 8
  heavy   20 x 512, Student's t (3 degrees of freedom) times 0.01, rows
          scaled by a log-normal factor, three outlier columns times 8 and
          one block of zeros: 160 blocks, one run of 160
Runs of 256 blocks hold whole rows here (256 / blocks per row of them).

Records: u32 name length, name, u32 kind (0 f32, 1 f16, 2 u8), u64 count,
the data, little-endian. Per matrix M: M.shape (f32 rows, cols); M.w
(f16); M.codes (u8, code of
weight 2i in the low nibble of byte i, 2i + 1 in the high one); M.absmax
(f32 per block); M.dq.mean (f32); M.dq.scale (f32 per run of 256);
M.dq.code (u8 per block); M.dq.absmax (f32 per block, the dequantized
scales); for the first FQ_ROWS rows, M.fq.nf4.codes and M.fq.nf4-dq.codes
(packed as M.codes) and M.fq.nf4.inside, M.fq.nf4-dq.inside (u8, weight 8i
+ b in bit b of byte i). Then nf4.table (f32 x 16) and dyn.map (f32 x 256).

Run by hand with Debian's python3-torch (/usr/bin/python3); the output is
committed, so the tests do not need PyTorch.
"""
import math
import struct
import sys

import numpy as np
import torch

f32 = np.float32
BLOCK, RUN, FQ_ROWS = 64, 256, 8

# The table as QLoRA publishes it (f32 values).
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=f32)


def derive_nf4():
    """The table from its definition, in float64."""
    delta = ((1 - 1 / 32) + (1 - 1 / 30)) / 2
    ppf = lambda p: torch.special.ndtri(torch.tensor(p, dtype=torch.float64)).numpy()
    pos = ppf(np.linspace(delta, 0.5, 9)[:-1])
    neg = -ppf(np.linspace(delta, 0.5, 8)[:-1])
    v = np.sort(np.concatenate([pos, neg, [0.0]]))
    return v / v.max()


def dynamic_map():
    vals = []
    for i in range(7):
        b = np.linspace(0.1, 1.0, 2 ** i + 1)
        m = 10.0 ** (i - 6) * ((b[:-1] + b[1:]) / 2.0)
        vals += list(m) + list(-m)
    vals += [0.0, 1.0]
    return np.sort(np.array(vals, dtype=f32))


def nearest(x, table):
    """Index of the value of table nearest each x (f32), the lower on a tie."""
    return np.argmin(np.abs(x[:, None] - table[None, :]), axis=1)


def quantize(W, dyn):
    blocks = W.reshape(-1, BLOCK)
    a = np.max(np.abs(blocks), axis=1).astype(f32)
    safe = np.where(a == 0, f32(1), a)
    codes = nearest((blocks / safe[:, None]).astype(f32).ravel(), NF4).reshape(blocks.shape)
    codes[a == 0] = 7
    c = f32(math.fsum(a.astype(np.float64)) / len(a))
    cen = (a - c).astype(f32)
    n_runs = (len(a) + RUN - 1) // RUN
    s = np.array([np.max(np.abs(cen[r * RUN:(r + 1) * RUN])) for r in range(n_runs)], dtype=f32)
    srun = np.repeat(s, RUN)[:len(a)]
    x = np.where(srun == 0, f32(0), cen / np.where(srun == 0, f32(1), srun)).astype(f32)
    k = nearest(x, dyn)
    dq = ((dyn[k] * srun).astype(f32) + c).astype(f32)
    return codes, a, c, s, k, dq


def fake_quant(W, codes, d):
    """Healing's rounding of the moved weights on the scales d of W's blocks."""
    blocks = W.reshape(-1, BLOCK)
    i = np.arange(W.size, dtype=np.int64)
    moved = (blocks.ravel() + ((i * 7919) % 201 - 100).astype(f32) * f32(2e-4)).astype(f32).reshape(blocks.shape)
    deq = (NF4[codes] * d[:, None]).astype(f32)
    pin = np.argmax(np.abs(deq), axis=1)
    dsafe = np.where(d == 0, f32(1), d)
    k = (moved / dsafe[:, None]).astype(f32)
    out = nearest(k.ravel(), NF4).reshape(blocks.shape)
    inside = np.abs(k) <= 1
    out[d == 0] = 7
    inside[d == 0] = True
    rows = np.arange(len(blocks))
    out[rows, pin] = codes[rows, pin]
    inside[rows, pin] = False
    return out, inside


def pack4(codes):
    c = codes.ravel().astype(np.uint8)
    return c[0::2] | (c[1::2] << 4)


def record(f, name, kind, data):
    b = name.encode()
    f.write(struct.pack("<I", len(b)) + b + struct.pack("<IQ", kind, data.size))
    f.write(np.ascontiguousarray(data, dtype=["<f4", "<f2", "u1"][kind]).tobytes())


def matrices():
    g = np.random.default_rng(20261207)
    normal = (g.standard_normal((66, 256)) * 0.02).astype(np.float16)
    heavy = g.standard_t(3, (20, 512)) * 0.01 * np.exp(0.5 * g.standard_normal((20, 1)))
    heavy[:, [17, 300, 301]] *= 8
    heavy[5, 64:128] = 0
    return {"normal": normal, "heavy": heavy.astype(np.float16)}


def main(out):
    derived = derive_nf4()
    assert np.max(np.abs(derived - NF4)) < 2e-7, "the published table is not the definition's"
    dyn = dynamic_map()
    assert len(dyn) == 256 and dyn[127] == 0 and dyn[255] == 1
    with open(out, "wb") as f:
        for name, w16 in matrices().items():
            W = w16.astype(f32)
            codes, a, c, s, k, dq = quantize(W, dyn)
            record(f, f"{name}.shape", 0, np.array(W.shape))
            record(f, f"{name}.w", 1, w16.ravel())
            record(f, f"{name}.codes", 2, pack4(codes))
            record(f, f"{name}.absmax", 0, a)
            record(f, f"{name}.dq.mean", 0, np.array([c]))
            record(f, f"{name}.dq.scale", 0, s)
            record(f, f"{name}.dq.code", 2, k)
            record(f, f"{name}.dq.absmax", 0, dq)
            nb = FQ_ROWS * W.shape[1] // BLOCK
            for fmt, d in (("nf4", a), ("nf4-dq", dq)):
                fq, inside = fake_quant(W, codes, d)
                record(f, f"{name}.fq.{fmt}.codes", 2, pack4(fq[:nb]))
                record(f, f"{name}.fq.{fmt}.inside", 2, np.packbits(inside[:nb].ravel(), bitorder="little"))
            print(f"{name}: {W.shape[0]} x {W.shape[1]}, absmax {a.min():.3g}..{a.max():.3g}, mean {c:.4g}, "
                  f"double-quantized scales within {np.max(np.abs(dq - a)[a > 0] / a[a > 0]):.3g} of the absmax")
        record(f, "nf4.table", 0, NF4)
        record(f, "dyn.map", 0, dyn)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/nf4-ref.bin")
