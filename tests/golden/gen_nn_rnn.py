#!/usr/bin/python3
"""gen_nn_rnn.py: reference tensors for models/nn_rnn.c (tests/test_nn_rnn.c).

What it writes: tests/golden/nn_rnn.safetensors, for each kernel (gru, augru,
lstm, bilstm) and each case (0: B=6 T=7 C=5 H=4; 1: B=8 T=12 C=16 H=16) the
inputs, weights, outputs, final states, the upstream gradients and every
gradient of
    L = sum(out * dout) + sum(hfinal * dhfinal) [+ sum(cfinal * dcfinal)]
under the names "<kernel>.<case>.<tensor>" (e.g. "gru.0.dw"). Lengths are
I32 and include 0, 1, T and values in between, in no particular order.

How: GRU and AUGRU are written by hand from the DIEN equations (a Python loop
over t, torch ops, masking by length, autograd for the gradients), in
float64 from float32-rounded inputs; the results are stored as float32.
The LSTM is a manual loop too (it handles len 0 and the per-sequence reversal
of the Bi-LSTM), checked here against torch.nn.LSTM on packed sequences; the
GRU is checked against torch.nn.GRU with converted weights (the conversion
nn_rnn.h documents). Padded inputs, attention scores and upstream gradients
are random on purpose: the kernels must ignore them.

Run: /usr/bin/python3 tests/golden/gen_nn_rnn.py   (PyTorch 1.13, CPU)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

torch.set_default_dtype(torch.float64)
CASES = [
    # B, T, C, H, lengths
    (6, 7, 5, 4, [7, 3, 0, 1, 5, 7]),
    (8, 12, 16, 16, [12, 1, 9, 0, 12, 4, 7, 11]),
]


def rnd(*shape, scale=1.0):
    """float32 values (so the C side sees the same numbers), as float64."""
    return (torch.randn(*shape, dtype=torch.float32) * scale).double()


def uni(*shape, k=0.5):
    return ((torch.rand(*shape, dtype=torch.float32) * 2 - 1) * k).double()


# ---------------- GRU / AUGRU (DIEN) ----------------

def gru_ref(x, lens, W, U, b, att=None):
    """x (B,T,C), lens (B) int64, W (3H,C), U (3H,H), b (3H), att (B,T) or None."""
    B, T, _ = x.shape
    H = U.shape[1]
    h = torch.zeros(B, H)
    outs = []
    for t in range(T):
        m = (lens > t).double().unsqueeze(1)
        xp = x[:, t] @ W.T + b
        rp = h @ U.T
        u = torch.sigmoid(xp[:, :H] + rp[:, :H])
        r = torch.sigmoid(xp[:, H:2 * H] + rp[:, H:2 * H])
        hh = torch.tanh(xp[:, 2 * H:] + r * rp[:, 2 * H:])
        if att is not None:
            u = att[:, t:t + 1] * u
        hn = (1 - u) * h + u * hh
        outs.append(m * hn)
        h = m * hn + (1 - m) * h
    return torch.stack(outs, 1), h


def check_gru_vs_torch(x, lens, W, U, b):
    """nn_rnn.h's conversion claim: nn.GRU with [r, z, n] blocks, z negated, b_hn = 0."""
    H = U.shape[1]
    g = torch.nn.GRU(x.shape[2], H, batch_first=True).double()
    Wu, Wr, Wh = W[:H], W[H:2 * H], W[2 * H:]
    Uu, Ur, Uh = U[:H], U[H:2 * H], U[2 * H:]
    bu, br, bh = b[:H], b[H:2 * H], b[2 * H:]
    with torch.no_grad():
        g.weight_ih_l0.copy_(torch.cat([Wr, -Wu, Wh]))
        g.weight_hh_l0.copy_(torch.cat([Ur, -Uu, Uh]))
        g.bias_ih_l0.copy_(torch.cat([br, -bu, bh]))
        g.bias_hh_l0.zero_()
    out, _ = g(x)
    ref, _ = gru_ref(x, torch.full_like(lens, x.shape[1]), W, U, b)
    err = (out - ref).abs().max().item()
    assert err < 1e-10, f"GRU vs nn.GRU (converted): {err}"


def make_gru(case, seed, augru):
    torch.manual_seed(seed)
    B, T, C, H, L = case
    lens = torch.tensor(L, dtype=torch.int64)
    x = rnd(B, T, C)
    W, U, b = uni(3 * H, C), uni(3 * H, H), uni(3 * H)
    att = torch.rand(B, T, dtype=torch.float32).double() if augru else None
    dout, dh = rnd(B, T, H), rnd(B, H)
    leaves = [x, W, U, b] + ([att] if augru else [])
    for p in leaves:
        p.requires_grad_(True)
    out, hT = gru_ref(x, lens, W, U, b, att)
    ((out * dout).sum() + (hT * dh).sum()).backward()
    if not augru:
        check_gru_vs_torch(x.detach(), lens, W.detach(), U.detach(), b.detach())
    d = {"inp": x, "len": lens.int(), "w": W, "u": U, "b": b, "out": out, "hfinal": hT,
         "dout": dout, "dhfinal": dh, "dinp": x.grad, "dw": W.grad, "du": U.grad, "db": b.grad}
    if augru:
        d["att"], d["datt"] = att, att.grad
    return d


# ---------------- LSTM / Bi-LSTM (PyTorch equations) ----------------

def lstm_ref(x, lens, w_ih, w_hh, b_ih, b_hh):
    B, T, _ = x.shape
    H = w_hh.shape[1]
    h, c = torch.zeros(B, H), torch.zeros(B, H)
    outs = []
    for t in range(T):
        m = (lens > t).double().unsqueeze(1)
        z = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H])
        g, o = torch.tanh(z[:, 2 * H:3 * H]), torch.sigmoid(z[:, 3 * H:])
        cn = f * c + i * g
        hn = o * torch.tanh(cn)
        outs.append(m * hn)
        h = m * hn + (1 - m) * h
        c = m * cn + (1 - m) * c
    return torch.stack(outs, 1), h, c


def reverse_within(x, lens):
    """x (B,T,...) with each row's first lens[b] steps reversed (padding in place)."""
    B, T = x.shape[:2]
    t = torch.arange(T).unsqueeze(0).expand(B, T)
    L = lens.unsqueeze(1)
    idx = torch.where(t < L, L - 1 - t, t)
    idx = idx.view(B, T, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)


def bilstm_ref(x, lens, w_ih, w_hh, b_ih, b_hh):
    of, hf, cf = lstm_ref(x, lens, w_ih[0], w_hh[0], b_ih[0], b_hh[0])
    orr, hr, cr = lstm_ref(reverse_within(x, lens), lens, w_ih[1], w_hh[1], b_ih[1], b_hh[1])
    return of + reverse_within(orr, lens), torch.stack([hf, hr]), torch.stack([cf, cr]), of, reverse_within(orr, lens)


def check_lstm_vs_torch(x, lens, w_ih, w_hh, b_ih, b_hh):
    """The manual LSTM / Bi-LSTM against nn.LSTM on packed sequences (len > 0 only)."""
    B, T, C = x.shape
    H = w_hh.shape[-1]
    keep = lens > 0
    xs, ls = x[keep], lens[keep]
    for bidir in (False, True):
        m = torch.nn.LSTM(C, H, batch_first=True, bidirectional=bidir).double()
        with torch.no_grad():
            m.weight_ih_l0.copy_(w_ih[0]), m.weight_hh_l0.copy_(w_hh[0])
            m.bias_ih_l0.copy_(b_ih[0]), m.bias_hh_l0.copy_(b_hh[0])
            if bidir:
                m.weight_ih_l0_reverse.copy_(w_ih[1]), m.weight_hh_l0_reverse.copy_(w_hh[1])
                m.bias_ih_l0_reverse.copy_(b_ih[1]), m.bias_hh_l0_reverse.copy_(b_hh[1])
        pk = torch.nn.utils.rnn.pack_padded_sequence(xs, ls, batch_first=True, enforce_sorted=False)
        po, (hn, cn) = m(pk)
        po, _ = torch.nn.utils.rnn.pad_packed_sequence(po, batch_first=True, total_length=T)
        if bidir:
            out, hT, cT, of, ob = bilstm_ref(x, lens, w_ih, w_hh, b_ih, b_hh)
            ref_o = torch.cat([of, ob], 2)[keep]
            ref_h, ref_c = hT[:, keep], cT[:, keep]
            assert (out[keep] - (po[..., :H] + po[..., H:])).abs().max() < 1e-10
        else:
            o, hT, cT = lstm_ref(x, lens, w_ih[0], w_hh[0], b_ih[0], b_hh[0])
            ref_o, ref_h, ref_c = o[keep], hT[keep].unsqueeze(0), cT[keep].unsqueeze(0)
        for name, a, r in (("out", po, ref_o), ("h_n", hn, ref_h), ("c_n", cn, ref_c)):
            err = (a - r).abs().max().item()
            assert err < 1e-10, f"LSTM bidir={bidir} {name} vs nn.LSTM: {err}"


def make_lstm(case, seed, bidir):
    torch.manual_seed(seed)
    B, T, C, H, L = case
    nd = 2 if bidir else 1
    lens = torch.tensor(L, dtype=torch.int64)
    x = rnd(B, T, C)
    w_ih, w_hh = uni(nd, 4 * H, C), uni(nd, 4 * H, H)
    b_ih, b_hh = uni(nd, 4 * H), uni(nd, 4 * H)
    dout = rnd(B, T, H)
    dh, dc = rnd(nd, B, H), rnd(nd, B, H)
    if bidir:
        check_lstm_vs_torch(x, lens, w_ih, w_hh, b_ih, b_hh)
    for p in (x, w_ih, w_hh, b_ih, b_hh):
        p.requires_grad_(True)
    if bidir:
        out, hT, cT, _, _ = bilstm_ref(x, lens, w_ih, w_hh, b_ih, b_hh)
    else:
        out, h1, c1 = lstm_ref(x, lens, w_ih[0], w_hh[0], b_ih[0], b_hh[0])
        hT, cT = h1.unsqueeze(0), c1.unsqueeze(0)
    ((out * dout).sum() + (hT * dh).sum() + (cT * dc).sum()).backward()
    d = {"inp": x, "len": lens.int(), "w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh,
         "out": out, "hfinal": hT, "cfinal": cT, "dout": dout, "dhfinal": dh, "dcfinal": dc,
         "dinp": x.grad, "dw_ih": w_ih.grad, "dw_hh": w_hh.grad, "db_ih": b_ih.grad, "db_hh": b_hh.grad}
    if not bidir:  # plain shapes for the one-direction LSTM
        for k in ("w_ih", "w_hh", "b_ih", "b_hh", "hfinal", "cfinal", "dhfinal", "dcfinal",
                  "dw_ih", "dw_hh", "db_ih", "db_hh"):
            d[k] = d[k][0]
    return d


def main():
    tensors = {}
    for ci, case in enumerate(CASES):
        parts = {
            "gru": make_gru(case, 100 + ci, False),
            "augru": make_gru(case, 200 + ci, True),
            "lstm": make_lstm(case, 300 + ci, False),
            "bilstm": make_lstm(case, 400 + ci, True),
        }
        for kern, d in parts.items():
            for k, v in d.items():
                v = v.detach()
                tensors[f"{kern}.{ci}.{k}"] = v if v.dtype == torch.int32 else v.float()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_rnn.safetensors")
    meta = {"generator": "tests/golden/gen_nn_rnn.py", "torch": torch.__version__,
            "cases": ";".join(f"B={c[0]} T={c[1]} C={c[2]} H={c[3]} len={c[4]}" for c in CASES),
            "loss": "sum(out*dout) + sum(hfinal*dhfinal) [+ sum(cfinal*dcfinal)]"}
    safetensors_io.save(path, tensors, meta)
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
