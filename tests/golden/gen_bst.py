#!/usr/bin/env python3
"""gen_bst.py: BST (Behavior Sequence Transformer, Chen et al. 2019) in PyTorch,
independently of the C code, with lsim's documented choices (esu/bst.h);
writes tests/golden/bst.safetensors.

Run: /usr/bin/python3 tests/golden/gen_bst.py   (PyTorch 1.13, CPU)

The model: the last L behaviors (time order) and the target as tokens, each
[item emb, cat emb, pos emb of bucket(now - ts)] (target bucket 0; the bucket
is floor(log2(1 + minutes)) capped at n_buckets - 1, computed here in plain
Python), torch.nn.TransformerEncoderLayer (batch_first, dropout 0, post-norm,
ReLU) with src_key_padding_mask, the outputs placed right-aligned into L + 1
slots of width C (the target's at slot L, padding 0), flattened, concatenated
after the target embedding, into the head (fc-Dice-fc-Dice-fc). Everything runs
in float64 from float32 weights and inputs; results are stored as float32.

Cases (prefixes):
  b.  L = 4, E = 5 + 3, P = 4 (C = 12), 3 heads, FFN 10, 6 buckets (so long
      gaps hit the cap). Samples: no behaviors; one; exactly L; more than L
      (only the last L read); gap 0; gaps beyond the last bucket; random.
  c.  L = 3, E = 4 + 4, P = 8 (C = 16), 2 heads, d_ffn 0 (4 C), 24 buckets.
Each case holds parameters and buffers under the C names (esu/bst.h), the
batch (hist_ts, now I64; rows beyond hist_len random: they must be ignored),
config dims, training logits and loss, every gradient, the running statistics
after the step, and inference logits.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from gen_sim import Head  # noqa: E402


def bucket(delta, n_buckets):
    delta = max(0, int(delta))
    return min((delta // 60 + 1).bit_length() - 1, n_buckets - 1)


def make_encoder(c, heads, ffn):
    enc = nn.TransformerEncoderLayer(c, heads, dim_feedforward=ffn, dropout=0.0, batch_first=True)
    with torch.no_grad():  # away from PyTorch's 1 / 0 so a mix-up of gamma and beta shows
        enc.norm1.weight.uniform_(0.5, 1.5), enc.norm2.weight.uniform_(0.5, 1.5)
        enc.norm1.bias.normal_(0, 0.2), enc.norm2.bias.normal_(0, 0.2)
        enc.self_attn.in_proj_bias.normal_(0, 0.2), enc.self_attn.out_proj.bias.normal_(0, 0.2)
        enc.self_attn.in_proj_weight.mul_(1.5)
    return enc


class BST(nn.Module):
    def __init__(self, n_items, n_cats, d_item, d_cat, L, P, n_buckets, heads, ffn, mlp, momentum=0.01):
        super().__init__()
        self.n_items, self.n_cats, self.L, self.nb = n_items, n_cats, L, n_buckets
        e = d_item + d_cat
        self.C = e + P
        self.emb_item = nn.Embedding(n_items + 1, d_item)
        self.emb_cat = nn.Embedding(n_cats + 1, d_cat)
        with torch.no_grad():
            self.emb_item.weight.normal_(0, 0.5)
            self.emb_cat.weight.normal_(0, 0.5)
        self.pos = nn.Parameter(torch.randn(n_buckets, P) * 0.5)
        self.enc = make_encoder(self.C, heads, ffn)
        self.head = Head(e + (L + 1) * self.C, mlp[0], mlp[1], momentum)

    def embed(self, item, cat):
        return torch.cat([self.emb_item(item.clamp(max=self.n_items)), self.emb_cat(cat.clamp(max=self.n_cats))], -1)

    def forward(self, bt):
        L, C, T = self.L, self.C, self.L + 1
        ea = self.embed(bt["target_item"], bt["target_cat"])
        B = ea.shape[0]
        xs, lens = [], []
        for b in range(B):
            n_all = int(bt["hist_len"][b])
            n = min(n_all, L)
            idx = torch.arange(n_all - n, n_all)
            beh = self.embed(bt["hist_item"][b, idx], bt["hist_cat"][b, idx])            # (n, E)
            bk = [bucket(int(bt["now"][b]) - int(bt["hist_ts"][b, i]), self.nb) for i in idx.tolist()]
            tok = torch.cat([beh, ea[b:b + 1]])                                           # (n + 1, E)
            pos = self.pos[torch.tensor(bk + [0], dtype=torch.long)]                      # (n + 1, P)
            x = torch.cat([tok, pos], -1)
            xs.append(torch.cat([x, torch.zeros(T - n - 1, C, dtype=x.dtype)]))
            lens.append(n + 1)
        x = torch.stack(xs)
        lens = torch.tensor(lens)
        pad = torch.arange(T)[None, :] >= lens[:, None]
        y = self.enc(x, src_key_padding_mask=pad)                                         # (B, T, C)
        slots = []
        for b in range(B):
            nt = int(lens[b])
            slots.append(torch.cat([torch.zeros(T - nt, C, dtype=y.dtype), y[b, :nt]]).reshape(-1))
        return self.head(torch.cat([ea, torch.stack(slots)], -1))

    def named_for_c(self):
        p = {"emb.item": self.emb_item.weight, "emb.cat": self.emb_cat.weight, "bst.pos": self.pos}
        for k, v in self.enc.named_parameters():
            p["bst.encoder." + k] = v
        p.update(self.head.named("mlp"))
        return p, self.head.buffers_named("mlp")


def bst_case(out, prefix, seed, dims, samples):
    """dims: d_item, d_cat, L, P, n_buckets, heads, ffn (0: 4C), mlp1, mlp2; samples: (len, gaps to now, oldest first)."""
    torch.manual_seed(seed)
    d_item, d_cat, L, P, nb, heads, ffn, h1, h2 = dims
    C = d_item + d_cat + P
    n_items, n_cats, B, S = 30, 5, len(samples), 9
    model = BST(n_items, n_cats, d_item, d_cat, L, P, nb, heads, ffn or 4 * C, (h1, h2))
    model.double()  # float32 values, computed in float64
    params, bufs = model.named_for_c()
    with torch.no_grad():
        for name, t in bufs.items():
            t.normal_(0, 0.1) if name.endswith("running_mean") else t.uniform_(0.5, 1.5)
    for k, v in params.items():
        out[prefix + k] = v.detach().float()
    for k, v in bufs.items():
        out[prefix + "init." + k] = v.detach().float().clone()
    ts = torch.randint(0, 1 << 40, (B, S), dtype=torch.int64)  # garbage beyond len: must be ignored
    now = torch.zeros(B, dtype=torch.int64)
    lens = []
    for b, (n, ago) in enumerate(samples):
        assert len(ago) == n and n <= S and all(ago[i] >= ago[i + 1] for i in range(n - 1))
        now[b] = 1_600_000_000 + 100_000 * b
        if n:
            ts[b, :n] = now[b] - torch.tensor(ago, dtype=torch.int64)
        lens.append(n)
    bt = {
        "target_item": torch.randint(0, n_items + 3, (B,)), "target_cat": torch.randint(0, n_cats + 2, (B,)),
        "hist_item": torch.randint(0, n_items + 3, (B, S)), "hist_cat": torch.randint(0, n_cats + 2, (B, S)),
        "hist_len": torch.tensor(lens), "hist_ts": ts, "now": now,
        "label": torch.randint(0, 2, (B,)).double(),
    }
    for k, v in bt.items():
        if k in ("hist_ts", "now"):
            out[prefix + k] = v
        else:
            out[prefix + k] = v.to(torch.int32) if v.dtype == torch.int64 else v.float()
    model.train()
    logit = model(bt)
    loss = F.binary_cross_entropy_with_logits(logit, bt["label"])
    loss.backward()
    out[prefix + "logits"] = logit.detach().float()
    out[prefix + "loss"] = loss.detach().float().reshape(())
    for k, v in params.items():
        out[prefix + "grad." + k] = v.grad.detach().float()
    for k, v in bufs.items():
        out[prefix + "after." + k] = v.detach().float()
    model.eval()
    model.enc.train()  # dropout 0 either way; keeps the same (non fast-path) encoder code in eval
    with torch.no_grad():
        out[prefix + "logits_eval"] = model(bt).float()
    out[prefix + "dims"] = torch.tensor(dims, dtype=torch.int32)


def main():
    out = {}
    m, h, d = 60, 3600, 86400
    samples_b = [
        (0, []),                                            # no behaviors: the target alone
        (1, [5 * m]),                                       # one
        (4, [3 * d, d, h, 0]),                              # exactly L, a gap of 0
        (9, [400 * d, 300 * d, 9 * d, 7 * d, 5 * d, 2 * h, h, 30, 1]),  # > L: the last 4 only
        (2, [10 ** 8, 10 ** 7]),                            # beyond the last bucket
        (3, [90 * m, 2 * m, 59]),
        (6, [20 * d, 3 * d, 2 * d, 5 * h, 17 * m, 3 * m]),
    ]
    bst_case(out, "b.", 21, (5, 3, 4, 4, 6, 3, 10, 12, 6), samples_b)
    samples_c = [
        (3, [d, h, m]),
        (0, []),
        (5, [40 * d, 30 * d, 20 * d, h, 1]),
        (2, [0, 0]),
        (1, [10 ** 9]),
    ]
    bst_case(out, "c.", 22, (4, 4, 3, 8, 24, 2, 0, 10, 5), samples_c)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bst.safetensors")
    safetensors_io.save(path, out, {"generator": "tests/golden/gen_bst.py", "torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
