#!/usr/bin/env python3
"""gen_esu.py: SIM's Exact Search Unit (multi-head target attention with the
time-interval embedding concatenated) in PyTorch, from the SIM paper,
independently of esu/esu_attention.c; writes tests/golden/esu.safetensors.

Run: /usr/bin/python3 tests/golden/gen_esu.py

Cases "t." (with time info, d_time 4) and "n." (without). Each holds the
weights, the padded inputs (ea, el, ts, len, now), a random upstream
gradient dout, the output U_lt and the gradients of sum(U_lt * dout) with
respect to ea, el, and every weight.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

N_BUCKETS = 24


def bucket(delta_seconds):
    """floor(log2(1 + delta / 60)), minutes on a log scale, capped (esu_attention.h)."""
    b = (int(delta_seconds) // 60 + 1).bit_length() - 1
    return min(b, N_BUCKETS - 1)


def esu(ea, el, lens, buckets, wa, wb, temb, heads, d_head):
    """ea (B, E), el (B, K, E), lens (B), buckets (B, K) -> U_lt (B, heads * Z)."""
    b, k, e = el.shape
    z = torch.cat([el, temb[buckets]], -1) if temb is not None else el          # (B, K, Z)
    q = (ea @ wa.T).reshape(b, heads, d_head)                                  # (B, q, d)
    kk = (z @ wb.T).reshape(b, k, heads, d_head)                               # (B, K, q, d)
    s = torch.einsum("bkhd,bhd->bhk", kk, q)                                   # (B, q, K)
    mask = (torch.arange(k)[None, :] < lens[:, None])[:, None, :]              # (B, 1, K)
    att = torch.softmax(s.masked_fill(~mask, float("-inf")), -1)
    att = torch.where(mask, att, torch.zeros_like(att))                         # empty rows: 0, not NaN
    heads_out = torch.einsum("bhk,bkz->bhz", att, z)                           # (B, q, Z)
    return heads_out.reshape(b, -1)


def case(prefix, seed, d_time, out):
    torch.manual_seed(seed)
    B, K, E, Q, D = 6, 7, 8, 3, 5
    lens = torch.tensor([0, 1, K, 3, 5, 2])
    now = torch.randint(1_500_000_000, 1_510_000_000, (B,))
    # deltas from 1 second to ~20 years, so buckets span the whole table
    deltas = (10 ** (torch.rand(B, K) * 8.8)).long() + 1
    ts = now[:, None] - deltas
    buckets = torch.tensor([[bucket(deltas[i, j]) for j in range(K)] for i in range(B)])
    ea = torch.randn(B, E, requires_grad=True)
    el = torch.randn(B, K, E, requires_grad=True)
    wa = (torch.randn(Q * D, E) * 0.5).requires_grad_()
    wb = (torch.randn(Q * D, E + d_time) * 0.5).requires_grad_()
    temb = (torch.randn(N_BUCKETS, d_time)).requires_grad_() if d_time else None
    y = esu(ea, el, lens, buckets, wa, wb, temb, Q, D)
    dout = torch.randn_like(y)
    (y * dout).sum().backward()
    t = {"ea": ea, "el": el, "wa": wa, "wb": wb, "out": y, "dout": dout,
         "grad.ea": ea.grad, "grad.el": el.grad, "grad.wa": wa.grad, "grad.wb": wb.grad,
         "len": lens.to(torch.int32), "now": now, "ts": ts, "bucket": buckets.to(torch.int32),
         "dims": torch.tensor([E, d_time, Q, D, N_BUCKETS], dtype=torch.int32)}
    if d_time:
        t["time_emb"] = temb
        t["grad.time_emb"] = temb.grad
    for k, v in t.items():
        out[prefix + k] = v.detach().clone()


def main():
    out = {}
    case("t.", 3, 4, out)
    case("n.", 4, 0, out)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "esu.safetensors")
    safetensors_io.save(path, out, {"generator": "tests/golden/gen_esu.py", "torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
