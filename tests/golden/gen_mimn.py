#!/usr/bin/env python3
"""gen_mimn.py: MIMN (Pi et al., KDD 2019) in PyTorch, independently of the C code,
with lsim's documented choices (esu/mimn.h); writes tests/golden/mimn.safetensors.

Run: /usr/bin/python3 tests/golden/gen_mimn.py   (PyTorch 1.13, CPU)

The model, one sample at a time: the state (h, r, M, S, g) starts at zero; each
behavior x = [item emb, cat emb] steps the controller (nn.GRUCell over [x, r]), its
output layer gives the read and write heads' keys (tanh) and strengths
(2 (1 + softplus)), the erase (sigmoid) and add (tanh) vectors; addressing is the
softmax of beta times the mean of the cosines to tanh(key_m) and to the memory
(eps inside the norms); the read is of the memory before the write; the write weights
are rebalanced by P = row softmax(rebalance(g / max(sum g, 1)).view(m, m)) (g detached);
the MIU steps a second nn.GRUCell over [M'(i) detached, x] for the top-k slots by read
weight. The target's read head (a Linear E -> E + 1) reads M and S with one
addressing; the head takes [e_a, read_M, read_S, h]. Loss = mean BCE +
util_reg * mean over samples of the variance over slots of g / max(sum g, 1)
(denominator detached). Training: the first n - bptt behaviors are folded with no
gradient and the state is detached before the last bptt (truncated BPTT).
Everything runs in float64 from float32 weights and inputs; stored as float32.

Cases (prefixes):
  a.  E = 5 + 3, H = 6, m = 3, k = 1, bptt 4, util_reg 0.5; histories of 0, 1, 3, 4 (= bptt), 7 and
      12 behaviors (longer than bptt: the gradient stops at the window), OOV ids.
  b.  E = 4 + 4, H = 8, m = 4, k = 2, bptt 3, util_reg 0.2; histories of 5, 0, 9, 2.
Each holds parameters and buffers under the C names, the batch (all_item, all_cat flat
I32, all_off I64, all_len I32), dims, training logits and loss, every gradient, the
running statistics after the step, inference logits, and each sample's state after its
whole history in the C layout [h, r, M, S, g] ("state").
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from gen_sim import Head  # noqa: E402

EPS = 1e-6
SHARP = 2.0


def cos(u, v):
    return (u * v).sum(-1) / torch.sqrt(((u * u).sum(-1) + EPS) * ((v * v).sum(-1) + EPS))


class MIMN(nn.Module):
    def __init__(self, n_items, n_cats, d_item, d_cat, H, m, k, mlp, momentum=0.01):
        super().__init__()
        self.n_items, self.n_cats, self.m, self.k = n_items, n_cats, m, k
        E = self.E = d_item + d_cat
        self.H = H
        self.emb_item = nn.Embedding(n_items + 1, d_item)
        self.emb_cat = nn.Embedding(n_cats + 1, d_cat)
        with torch.no_grad():
            self.emb_item.weight.normal_(0, 0.5)
            self.emb_cat.weight.normal_(0, 0.5)
        self.controller = nn.GRUCell(2 * E, H)
        self.o2p = nn.Linear(H, 4 * E + 2)
        self.key_m = nn.Parameter(torch.randn(m, E) * 0.5)
        self.rebalance = nn.Linear(m, m * m)
        with torch.no_grad():
            self.rebalance.bias.copy_(3 * torch.eye(m).reshape(-1) + 0.3 * torch.randn(m * m))
            self.rebalance.weight.mul_(3.0)
            self.o2p.weight.mul_(2.0)
        self.miu = nn.GRUCell(2 * E, E)
        self.query = nn.Linear(E, E + 1)
        self.head = Head(3 * E + H, mlp[0], mlp[1], momentum)
        self.margins = []

    def embed(self, item, cat):
        return torch.cat([self.emb_item(item.clamp(max=self.n_items)), self.emb_cat(cat.clamp(max=self.n_cats))], -1)

    def address(self, k, beta, M):
        K = torch.tanh(self.key_m)
        c = 0.5 * (cos(k[None, :], K) + cos(k[None, :], M))
        return torch.softmax(beta * c, 0)

    def zero(self):
        E, H, m = self.E, self.H, self.m
        z = torch.zeros
        return (z(H, dtype=torch.float64), z(E, dtype=torch.float64), z(m, E, dtype=torch.float64),
                z(m, E, dtype=torch.float64), z(m, dtype=torch.float64))

    def step(self, x, state):
        E, m = self.E, self.m
        h, r, M, S, g = state
        h2 = self.controller(torch.cat([x, r])[None], h[None])[0]
        p = self.o2p(h2)
        kr, br = torch.tanh(p[:E]), SHARP * (1 + F.softplus(p[E]))
        kw, bw = torch.tanh(p[E + 1:2 * E + 1]), SHARP * (1 + F.softplus(p[2 * E + 1]))
        e, a = torch.sigmoid(p[2 * E + 2:3 * E + 2]), torch.tanh(p[3 * E + 2:])
        wr, ww = self.address(kr, br, M), self.address(kw, bw, M)
        r2 = (wr[:, None] * M).sum(0)
        gh = (g / torch.clamp(g.sum(), min=1.0)).detach()
        P = torch.softmax(self.rebalance(gh).view(m, m), dim=1)
        wt = ww @ P
        M2 = M * (1 - wt[:, None] * e[None, :]) + wt[:, None] * a[None, :]
        g2 = g + wt
        srt = torch.sort(wr.detach(), descending=True).values
        if self.k < m:
            self.margins.append(float(srt[self.k - 1] - srt[self.k]))
        order = sorted(range(m), key=lambda i: (-float(wr[i]), i))[:self.k]
        rows = [S[i] for i in range(m)]
        for i in order:
            rows[i] = self.miu(torch.cat([M2[i].detach(), x])[None], S[i][None])[0]
        return h2, r2, M2, torch.stack(rows), g2

    def fold(self, xs, state):
        for t in range(xs.shape[0]):
            state = self.step(xs[t], state)
        return state

    def forward(self, bt, bptt, train):
        E = self.E
        ea = self.embed(bt["target_item"], bt["target_cat"])
        B = ea.shape[0]
        inps, gs, states = [], [], []
        for b in range(B):
            off, n = int(bt["all_off"][b]), int(bt["all_len"][b])
            xs = self.embed(bt["all_item"][off:off + n], bt["all_cat"][off:off + n])
            w = min(n, bptt) if train else n
            state = self.zero()
            with torch.no_grad():
                state = self.fold(xs[:n - w], state)
            state = tuple(s.detach() for s in state)
            state = self.fold(xs[n - w:], state)
            h, r, M, S, g = state
            q = self.query(ea[b])
            k, beta = torch.tanh(q[:E]), SHARP * (1 + F.softplus(q[E]))
            wa = self.address(k, beta, M)
            inps.append(torch.cat([ea[b], wa @ M, wa @ S, h]))
            gs.append(g)
            states.append(torch.cat([h, r, M.reshape(-1), S.reshape(-1), g]).detach())
        logits = self.head(torch.stack(inps))
        return logits, torch.stack(gs), torch.stack(states)

    def named_for_c(self):
        p = {"emb.item": self.emb_item.weight, "emb.cat": self.emb_cat.weight}
        for n in ("weight_ih", "bias_ih", "weight_hh", "bias_hh"):
            p["mimn.controller." + n] = getattr(self.controller, n)
        p["mimn.o2p.weight"], p["mimn.o2p.bias"] = self.o2p.weight, self.o2p.bias
        p["mimn.key_m"] = self.key_m
        p["mimn.rebalance.weight"], p["mimn.rebalance.bias"] = self.rebalance.weight, self.rebalance.bias
        for n in ("weight_ih", "bias_ih", "weight_hh", "bias_hh"):
            p["mimn.miu." + n] = getattr(self.miu, n)
        p["mimn.query.weight"], p["mimn.query.bias"] = self.query.weight, self.query.bias
        p.update(self.head.named("mlp"))
        return p, self.head.buffers_named("mlp")


def util_reg(g):
    u = g / torch.clamp(g.sum(-1, keepdim=True), min=1.0).detach()
    return ((u - u.mean(-1, keepdim=True)) ** 2).mean(-1).mean()


def mimn_case(out, prefix, seed, dims, lens):
    """dims: d_item, d_cat, H, m, k, bptt, mlp1, mlp2; lens: each sample's history length."""
    torch.manual_seed(seed)
    d_item, d_cat, H, m, k, bptt, h1, h2 = dims[:8]
    lam = dims[8]
    n_items, n_cats, B = 30, 5, len(lens)
    model = MIMN(n_items, n_cats, d_item, d_cat, H, m, k, (h1, h2))
    model.double()
    params, bufs = model.named_for_c()
    with torch.no_grad():
        for name, t in bufs.items():
            t.normal_(0, 0.1) if name.endswith("running_mean") else t.uniform_(0.5, 1.5)
    for kk, v in params.items():
        out[prefix + kk] = v.detach().float()
    for kk, v in bufs.items():
        out[prefix + "init." + kk] = v.detach().float().clone()
    total = sum(lens)
    offs = [0]
    for n in lens[:-1]:
        offs.append(offs[-1] + n + 2)  # a gap of 2 unused ids between samples: they must be ignored
    flat = offs[-1] + lens[-1] + 2
    assert flat >= total
    bt = {
        "target_item": torch.randint(0, n_items + 3, (B,)), "target_cat": torch.randint(0, n_cats + 2, (B,)),
        "all_item": torch.randint(0, n_items + 3, (flat,)), "all_cat": torch.randint(0, n_cats + 2, (flat,)),
        "all_off": torch.tensor(offs, dtype=torch.int64), "all_len": torch.tensor(lens),
        "label": torch.randint(0, 2, (B,)).double(),
    }
    for kk, v in bt.items():
        if kk == "all_off":
            out[prefix + kk] = v
        else:
            out[prefix + kk] = v.to(torch.int32) if v.dtype == torch.int64 else v.float()
    model.train()
    logit, g, states = model(bt, bptt, True)
    loss = F.binary_cross_entropy_with_logits(logit, bt["label"]) + lam * util_reg(g)
    loss.backward()
    out[prefix + "logits"] = logit.detach().float()
    out[prefix + "loss"] = loss.detach().float().reshape(())
    for kk, v in params.items():
        out[prefix + "grad." + kk] = v.grad.detach().float()
    for kk, v in bufs.items():
        out[prefix + "after." + kk] = v.detach().float()
    out[prefix + "state"] = states.float()
    model.eval()
    with torch.no_grad():
        le, _, st2 = model(bt, bptt, False)
        out[prefix + "logits_eval"] = le.float()
        assert torch.allclose(st2, states)
    if model.margins:  # the top-k choice must not hang on float32 rounding
        assert min(model.margins) > 2e-3, f"{prefix}: top-k margin {min(model.margins)}"
    out[prefix + "dims"] = torch.tensor(dims[:8], dtype=torch.int32)
    out[prefix + "util_reg"] = torch.tensor([lam], dtype=torch.float32)


def main():
    out = {}
    mimn_case(out, "a.", 31, (5, 3, 6, 3, 1, 4, 10, 5, 0.5), [0, 1, 3, 4, 7, 12])
    mimn_case(out, "b.", 32, (4, 4, 8, 4, 2, 3, 9, 4, 0.2), [5, 0, 9, 2])
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mimn.safetensors")
    safetensors_io.save(path, out, {"generator": "tests/golden/gen_mimn.py", "torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
