#!/usr/bin/env python3
"""gen_dsin.py: DSIN in PyTorch, from the DSIN paper (sessions, bias encoding,
transformer session interest extractor, Bi-LSTM, two activation units),
independently of the C code; writes tests/golden/dsin.safetensors.

Run: /usr/bin/python3 tests/golden/gen_dsin.py   (PyTorch 1.13, CPU)

The sessions are cut here in plain Python (a new session when the gap to the
previous behavior is > 1800 s), the extractor is torch.nn.TransformerEncoderLayer
(batch_first, dropout 0, post-norm, ReLU) with src_key_padding_mask, the
interacting layer torch.nn.LSTM(bidirectional=True) on packed sequences with
its two directions summed. Everything runs in float64 from float32 weights
and inputs; results are stored as float32.

Cases (prefixes):
  enc.  the transformer block alone: inputs (N, T, C) with lengths incl. 0 and
        T (padded inputs and padded upstream gradients random: they must be
        ignored), the layer's state_dict under "enc.", out, and every gradient
        of L = sum(out * dout) over the valid rows ("enc.grad.*", "enc.dinp").
  d.    DSIN, K = 3, T = 4, E = 8, 2 heads, FFN 12, Bi-LSTM hidden 6, sessions
        of 1 behavior kept. Samples: no behaviors; one behavior; more than K
        sessions; sessions longer than T; equal timestamps; gaps of exactly
        1800 s (same session) and 1801 s (new session); all gaps > 30 min
        (sessions of one behavior); random.
  m.    DSIN with the official code's session filter (min_session_len 3),
        K = 2, T = 3, 4 heads, d_ffn and d_lstm 0 (4E and E), incl. a sample
        whose sessions are all dropped.
Each DSIN case holds parameters and buffers under the C names (esu/dsin.h),
the batch (hist_ts I64), config dims, the session layout ("sessions" (B, K, T)
I32 positions, -1 at padding), training logits and loss, every gradient, the
running statistics after the step, and inference logits.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from gen_sim import Head  # noqa: E402

GAP = 1800
ENC_NAMES = ["self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
             "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
             "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"]


def split_sessions(ts, n, K, T, min_len):
    """The kept sessions of one sample: lists of positions, time order."""
    sessions, cur = [], []
    for i in range(n):
        if cur and ts[i] - ts[i - 1] > GAP:
            sessions.append(cur)
            cur = []
        cur.append(i)
    if cur:
        sessions.append(cur)
    sessions = [s for s in sessions if len(s) >= min_len]
    return [s[-T:] for s in sessions[-K:]]


def make_encoder(c, heads, ffn):
    enc = nn.TransformerEncoderLayer(c, heads, dim_feedforward=ffn, dropout=0.0, batch_first=True)
    with torch.no_grad():  # away from PyTorch's 1 / 0 so a mix-up of gamma and beta shows
        enc.norm1.weight.uniform_(0.5, 1.5), enc.norm2.weight.uniform_(0.5, 1.5)
        enc.norm1.bias.normal_(0, 0.2), enc.norm2.bias.normal_(0, 0.2)
        enc.self_attn.in_proj_bias.normal_(0, 0.2), enc.self_attn.out_proj.bias.normal_(0, 0.2)
        enc.self_attn.in_proj_weight.mul_(1.5)
    return enc


def encode(enc, x, lens):
    """The block on padded x (N, T, C), lengths (N): 0 at padded rows, 0 for len 0 (PyTorch gives NaN there)."""
    N, T, C = x.shape
    keep = lens > 0
    out = torch.zeros(N, T, C, dtype=x.dtype)
    if keep.any():
        pad = torch.arange(T)[None, :] >= lens[keep][:, None]
        y = enc(x[keep], src_key_padding_mask=pad)
        y = y * (~pad)[:, :, None]
        out = out.index_add(0, keep.nonzero().squeeze(1), y)
    return out


def check_encoder(enc, x, lens):
    """Padding is inert: each sequence alone, unpadded, gives the same rows."""
    with torch.no_grad():
        y = encode(enc, x, lens)
        for n in range(x.shape[0]):
            L = int(lens[n])
            if L:
                alone = enc(x[n:n + 1, :L])
                assert (alone[0] - y[n, :L]).abs().max() < 1e-12, "padding leaked"


def enc_case(out):
    torch.manual_seed(5)
    N, T, C, heads, ffn = 6, 5, 8, 2, 12
    lens = torch.tensor([5, 0, 3, 1, 5, 2])
    enc = make_encoder(C, heads, ffn).double()
    x = torch.randn(N, T, C, dtype=torch.float32).double()
    dout = torch.randn(N, T, C, dtype=torch.float32).double()
    check_encoder(enc, x, lens)
    x.requires_grad_(True)
    y = encode(enc, x, lens)
    (y * dout).sum().backward()
    p = "enc."
    for k, v in enc.named_parameters():
        out[p + k] = v.detach().float()
        out[p + "grad." + k] = v.grad.detach().float()
    out[p + "inp"] = x.detach().float()
    out[p + "len"] = lens.to(torch.int32)
    out[p + "dout"] = dout.float()
    out[p + "out"] = y.detach().float()
    out[p + "dinp"] = x.grad.float()
    out[p + "dims"] = torch.tensor([N, T, C, ffn, heads], dtype=torch.int32)


class DSIN(nn.Module):
    def __init__(self, n_items, n_cats, d_item, d_cat, K, T, heads, ffn, H, mlp, min_len, momentum=0.01):
        super().__init__()
        self.n_items, self.n_cats, self.K, self.T, self.H, self.min_len = n_items, n_cats, K, T, H, min_len
        e = d_item + d_cat
        self.emb_item = nn.Embedding(n_items + 1, d_item)
        self.emb_cat = nn.Embedding(n_cats + 1, d_cat)
        with torch.no_grad():
            self.emb_item.weight.normal_(0, 0.5)
            self.emb_cat.weight.normal_(0, 0.5)
        self.be_k = nn.Parameter(torch.randn(K) * 0.3)
        self.be_t = nn.Parameter(torch.randn(T) * 0.3)
        self.be_c = nn.Parameter(torch.randn(e) * 0.3)
        self.enc = make_encoder(e, heads, ffn)
        self.lstm = nn.LSTM(e, H, batch_first=True, bidirectional=True)
        self.att_i = nn.Parameter(torch.randn(e, e) * 0.4)
        self.att_h = nn.Parameter(torch.randn(H, e) * 0.4)
        self.head = Head(2 * e + H, mlp[0], mlp[1], momentum)

    def embed(self, item, cat):
        return torch.cat([self.emb_item(item.clamp(max=self.n_items)), self.emb_cat(cat.clamp(max=self.n_cats))], -1)

    def sessions(self, bt):
        B = bt["hist_item"].shape[0]
        return [split_sessions(bt["hist_ts"][b].tolist(), int(bt["hist_len"][b]), self.K, self.T, self.min_len)
                for b in range(B)]

    @staticmethod
    def unit(v, q, n):
        """sum_k softmax_k(v_k . q) v_k over k < n; 0 when n = 0."""
        K = v.shape[1]
        mask = torch.arange(K)[None, :] < n[:, None]
        sc = (v * q[:, None, :]).sum(-1)
        sc = torch.where(mask, sc, torch.full_like(sc, -1e30))
        att = torch.softmax(sc, -1) * mask
        return (att[:, :, None] * v).sum(1)

    def forward(self, bt):
        K, T, H = self.K, self.T, self.H
        ea = self.embed(bt["target_item"], bt["target_cat"])
        B, e = ea.shape
        sess = self.sessions(bt)
        rows = [(b, k, s) for b in range(B) for k, s in enumerate(sess[b])]
        n_sess = torch.tensor([len(s) for s in sess])
        I = torch.zeros(B * K, e, dtype=ea.dtype)
        if rows:
            xs = []
            for b, k, s in rows:
                pos = torch.tensor(s)
                q = self.embed(bt["hist_item"][b, pos], bt["hist_cat"][b, pos])          # (L, e)
                q = q + self.be_k[k] + self.be_t[:len(s), None] + self.be_c[None, :]     # bias encoding
                xs.append(torch.cat([q, torch.zeros(T - len(s), e, dtype=q.dtype)]))
            lens = torch.tensor([len(s) for _, _, s in rows])
            y = encode(self.enc, torch.stack(xs), lens)                                 # (Nv, T, e)
            ik = y.sum(1) / lens[:, None]
            I = I.index_add(0, torch.tensor([b * K + k for b, k, _ in rows]), ik)
        I = I.view(B, K, e)
        Hs = torch.zeros(B, K, H, dtype=ea.dtype)
        keep = n_sess > 0
        if keep.any():
            pk = nn.utils.rnn.pack_padded_sequence(I[keep], n_sess[keep], batch_first=True, enforce_sorted=False)
            o, _ = self.lstm(pk)
            o, _ = nn.utils.rnn.pad_packed_sequence(o, batch_first=True, total_length=K)
            Hs = Hs.index_add(0, keep.nonzero().squeeze(1), o[..., :H] + o[..., H:])
        u_i = self.unit(I, ea @ self.att_i.T, n_sess)
        u_h = self.unit(Hs, ea @ self.att_h.T, n_sess)
        return self.head(torch.cat([ea, u_i, u_h], -1)), sess

    def named_for_c(self):
        """name -> parameter; the Bi-LSTM's entries are (forward, reverse) pairs, stacked when written."""
        p = {"emb.item": self.emb_item.weight, "emb.cat": self.emb_cat.weight,
             "dsin.bias.k": self.be_k, "dsin.bias.t": self.be_t, "dsin.bias.c": self.be_c}
        for k, v in self.enc.named_parameters():
            p["dsin.encoder." + k] = v
        L = self.lstm
        p["dsin.lstm.w_ih"] = (L.weight_ih_l0, L.weight_ih_l0_reverse)
        p["dsin.lstm.w_hh"] = (L.weight_hh_l0, L.weight_hh_l0_reverse)
        p["dsin.lstm.b_ih"] = (L.bias_ih_l0, L.bias_ih_l0_reverse)
        p["dsin.lstm.b_hh"] = (L.bias_hh_l0, L.bias_hh_l0_reverse)
        p["dsin.att_i.w"], p["dsin.att_h.w"] = self.att_i, self.att_h
        p.update(self.head.named("mlp"))
        return p, self.head.buffers_named("mlp")


def value(v, grad=False):
    if isinstance(v, tuple):
        return torch.stack([(x.grad if grad else x).detach() for x in v]).float()
    return (v.grad if grad else v).detach().float()


def timestamps(gaps, base):
    ts = [base]
    for g in gaps:
        ts.append(ts[-1] + g)
    return ts


def dsin_case(out, prefix, seed, dims, samples):
    """dims: d_item, d_cat, K, T, heads, ffn (0: 4E), H (0: E), mlp1, mlp2, min_len; samples: (len, gaps)."""
    torch.manual_seed(seed)
    d_item, d_cat, K, T, heads, ffn, H, h1, h2, min_len = dims
    e = d_item + d_cat
    n_items, n_cats, B, S = 30, 5, len(samples), 14
    model = DSIN(n_items, n_cats, d_item, d_cat, K, T, heads, ffn or 4 * e, H or e, (h1, h2), min_len)
    model.double()  # float32 values, computed in float64
    params, bufs = model.named_for_c()
    with torch.no_grad():
        for name, t in bufs.items():
            t.normal_(0, 0.1) if name.endswith("running_mean") else t.uniform_(0.5, 1.5)
    for k, v in params.items():
        out[prefix + k] = value(v)
    for k, v in bufs.items():
        out[prefix + "init." + k] = v.detach().float().clone()
    ts = torch.randint(0, 1 << 40, (B, S), dtype=torch.int64)  # garbage beyond len: must be ignored
    lens = []
    for b, (n, gaps) in enumerate(samples):
        assert len(gaps) == max(0, n - 1) and n <= S
        if n:
            ts[b, :n] = torch.tensor(timestamps(gaps, 1_500_000_000 + 100_000 * b))
        lens.append(n)
    bt = {
        "target_item": torch.randint(0, n_items + 3, (B,)), "target_cat": torch.randint(0, n_cats + 2, (B,)),
        "hist_item": torch.randint(0, n_items + 3, (B, S)), "hist_cat": torch.randint(0, n_cats + 2, (B, S)),
        "hist_len": torch.tensor(lens), "hist_ts": ts,
        "label": torch.randint(0, 2, (B,)).double(),
    }
    for k, v in bt.items():
        out[prefix + k] = v if k == "hist_ts" else (v.to(torch.int32) if v.dtype == torch.int64 else v.float())
    model.train()
    logit, sess = model(bt)
    loss = F.binary_cross_entropy_with_logits(logit, bt["label"])
    loss.backward()
    lay = torch.full((B, K, T), -1, dtype=torch.int32)
    for b, ss in enumerate(sess):
        for k, s in enumerate(ss):
            lay[b, k, :len(s)] = torch.tensor(s, dtype=torch.int32)
    out[prefix + "sessions"] = lay
    out[prefix + "logits"] = logit.detach().float()
    out[prefix + "loss"] = loss.detach().float().reshape(())
    for k, v in params.items():
        out[prefix + "grad." + k] = value(v, grad=True)
    for k, v in bufs.items():
        out[prefix + "after." + k] = v.detach().float()
    model.eval()
    model.enc.train()  # dropout 0 either way; keeps the same (non fast-path) encoder code in eval
    with torch.no_grad():
        out[prefix + "logits_eval"] = model(bt)[0].float()
    out[prefix + "dims"] = torch.tensor(dims, dtype=torch.int32)
    return sess


def main():
    out = {}
    enc_case(out)
    m = 60
    samples_d = [
        (0, []),                                           # no behaviors
        (1, []),                                           # one session of one behavior
        (12, [m, 2000, m, 4000, 2 * m, m, 1900, 10000, m, 5000, m]),  # 6 sessions > K = 3
        (11, [m, m, m, m, m, m, 3600, m, m, m]),           # sessions of 7 and 4 behaviors > T = 4
        (7, [0, 0, 1801, 0, 0, 0]),                        # equal timestamps
        (7, [1800, 1801, 1800, 0, 3600, 1800]),            # exactly 30 min stays, 1801 s cuts
        (5, [1801, 1801, 1801, 1801]),                     # every gap > 30 min: 5 sessions of 1
        (14, [m, 7, 2500, 30, 30, 1799, 86400, 5, 5, 5, 5, 3000, 1]),
        (3, [10, 20]),
    ]
    sess = dsin_case(out, "d.", 11, (5, 3, 3, 4, 2, 12, 6, 12, 6, 1), samples_d)
    # the sessions, worked out by hand (the splitter must agree)
    want = [[], [[0]], [[7], [8, 9], [10, 11]], [[3, 4, 5, 6], [7, 8, 9, 10]], [[0, 1, 2], [3, 4, 5, 6]],
            [[0, 1], [2, 3, 4], [5, 6]], [[2], [3], [4]], [[3, 4, 5, 6], [8, 9, 10, 11], [12, 13]], [[0, 1, 2]]]
    assert sess == want, sess
    samples_m = [
        (6, [m, m, 3000, m, 1800]),                        # 3 + 3 behaviors
        (4, [m, 4000, m]),                                 # 2 + 2: all dropped
        (9, [m, 2000, m, m, m, 2000, m, m]),               # 2 (dropped), 4 (truncated to 3), 3
        (14, [m] * 4 + [5000] + [m] * 2 + [5000] + [m] * 5),  # 5, 3, 6: the last two kept
        (0, []),
        (3, [0, 0]),
    ]
    sess = dsin_case(out, "m.", 12, (4, 4, 2, 3, 4, 0, 0, 10, 5, 3), samples_m)
    want = [[[0, 1, 2], [3, 4, 5]], [], [[3, 4, 5], [6, 7, 8]], [[5, 6, 7], [11, 12, 13]], [], [[0, 1, 2]]]
    assert sess == want, sess
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dsin.safetensors")
    safetensors_io.save(path, out, {"generator": "tests/golden/gen_dsin.py", "torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
