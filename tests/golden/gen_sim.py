#!/usr/bin/env python3
"""gen_sim.py: SIM (search-based interest model) in PyTorch, from the SIM paper,
independently of the C code; writes tests/golden/sim.safetensors.

Run: /usr/bin/python3 tests/golden/gen_sim.py

Cases (prefixes):
  h.  hard-search GSU (the long sequence is the index's result; the newest K kept), time info
  s.  soft-search GSU (top-K by (W_b e_i).(W_a e_a), auxiliary loss, alpha = 1), time info
  n.  soft-search GSU without time info
  r.  hard-search GSU, time info and the recency input (esu/recency_input.h)
  q.  soft-search GSU with softmax pooling in its auxiliary task, time info and the recency input
  c.  hard-search GSU, time info, the recency input with its target-category part
  t.  soft-search GSU as q., the recency input with its target-category part, and the search's
      recency bias (gsu/soft_search.h)
Each holds parameters and buffers under the C names (esu/sim.h), the batch,
training logits and loss (main BCE + alpha * auxiliary BCE), every gradient,
the running statistics after the step, inference logits, and the positions
the GSU kept per sample.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from gen_din import Dice  # noqa: E402
from gen_esu import N_BUCKETS, bucket, esu  # noqa: E402


class Head(nn.Module):
    """fc -> Dice -> fc -> Dice -> fc (one logit)."""

    def __init__(self, inp, h1, h2, momentum):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(inp, h1), nn.Linear(h1, h2), nn.Linear(h2, 1)
        self.dice1, self.dice2 = Dice(h1, momentum), Dice(h2, momentum)

    def forward(self, x):
        return self.fc3(self.dice2(self.fc2(self.dice1(self.fc1(x))))).squeeze(-1)

    def named(self, p):
        return {f"{p}.fc1.weight": self.fc1.weight, f"{p}.fc1.bias": self.fc1.bias, f"{p}.dice1.alpha": self.dice1.alpha,
                f"{p}.fc2.weight": self.fc2.weight, f"{p}.fc2.bias": self.fc2.bias, f"{p}.dice2.alpha": self.dice2.alpha,
                f"{p}.fc3.weight": self.fc3.weight, f"{p}.fc3.bias": self.fc3.bias}

    def buffers_named(self, p):
        return {f"{p}.dice1.running_mean": self.dice1.bn.running_mean, f"{p}.dice1.running_var": self.dice1.bn.running_var,
                f"{p}.dice2.running_mean": self.dice2.bn.running_mean, f"{p}.dice2.running_var": self.dice2.bn.running_var}


class SIM(nn.Module):
    def __init__(self, n_items, n_cats, soft, d_item, d_cat, att, mlp, heads, d_head, d_time, gsu_d, topk, alpha,
                 momentum=0.01, recency=False, gsu_softmax=False, recency_cat=False, gsu_recency=False):
        super().__init__()
        self.n_items, self.n_cats, self.soft, self.topk, self.alpha = n_items, n_cats, soft, topk, alpha
        self.gsu_softmax = gsu_softmax  # U_r = sum softmax(r)_i e_i (lsim's default) instead of sum r_i e_i
        self.heads, self.d_head, self.d_time = heads, d_head, d_time
        e = d_item + d_cat
        self.emb_item = nn.Embedding(n_items + 1, d_item)
        self.emb_cat = nn.Embedding(n_cats + 1, d_cat)
        with torch.no_grad():
            self.emb_item.weight.normal_(0, 0.5)
            self.emb_cat.weight.normal_(0, 0.5)
        self.att1, self.att2, self.att3 = nn.Linear(4 * e, att[0]), nn.Linear(att[0], att[1]), nn.Linear(att[1], 1)
        self.esu_wa = nn.Parameter(torch.randn(heads * d_head, e) * 0.4)
        self.esu_wb = nn.Parameter(torch.randn(heads * d_head, e + d_time) * 0.4)
        self.time_emb = nn.Parameter(torch.randn(N_BUCKETS, d_time)) if d_time else None
        if soft:
            self.gsu_wa = nn.Parameter(torch.randn(gsu_d, e) * 0.4)
            self.gsu_wb = nn.Parameter(torch.randn(gsu_d, e) * 0.4)
            self.aux = Head(2 * e, mlp[0], mlp[1], momentum)
        rw = (2 if recency_cat else 1) * d_time if recency else 0
        self.head = Head(3 * e + heads * (e + d_time) + rw, mlp[0], mlp[1], momentum)
        # the time since the newest short-term behavior, embedded (made last: the other cases' draws stay)
        self.recency = nn.Parameter(torch.randn(N_BUCKETS, d_time)) if recency else None
        # its target-category part: the newest behavior of the target's category; row N_BUCKETS: none in the window
        self.recency_cat = nn.Parameter(torch.randn(N_BUCKETS + 1, d_time)) if recency_cat else None
        # the search's recency bias: r_i + time_bias[bucket(now - ts_i)]
        self.time_bias = nn.Parameter(torch.randn(N_BUCKETS) * 2) if gsu_recency else None

    def recency_input(self, bt):
        """(B, d_time): recency[bucket(now - newest short-term behavior's time)], 0 without history."""
        rows = []
        for i in range(bt["hist_len"].shape[0]):
            n = int(bt["hist_len"][i])
            if n == 0:
                rows.append(torch.zeros(self.d_time))
            else:
                r = self.recency[bucket(bt["now"][i] - bt["hist_ts"][i, n - 1])]
                if self.recency_cat is not None:
                    same = [j for j in range(n) if int(bt["hist_cat"][i, j]) == int(bt["target_cat"][i])]
                    rc = self.recency_cat[bucket(bt["now"][i] - bt["hist_ts"][i, same[-1]]) if same else N_BUCKETS]
                    r = torch.cat([r, rc])
                rows.append(r)
        if self.recency_cat is not None:
            rows = [x if x.shape[0] == 2 * self.d_time else torch.zeros(2 * self.d_time) for x in rows]
        return torch.stack(rows)

    def embed(self, item, cat):
        return torch.cat([self.emb_item(item.clamp(max=self.n_items)), self.emb_cat(cat.clamp(max=self.n_cats))], -1)

    def forward(self, bt, train):
        ea = self.embed(bt["target_item"], bt["target_cat"])
        es = self.embed(bt["hist_item"], bt["hist_cat"])
        b, s, e = es.shape
        hmask = torch.arange(s)[None, :] < bt["hist_len"][:, None]
        eax = ea[:, None, :].expand(b, s, e)
        sc = self.att3(torch.sigmoid(self.att2(torch.sigmoid(self.att1(torch.cat([es, eax, es - eax, es * eax], -1))))))
        v = ((sc.squeeze(-1) * hmask)[:, :, None] * es).sum(1)          # DIN branch, the paper's form

        el = self.embed(bt["long_item"], bt["long_cat"])                  # (B, K, E)
        k = el.shape[1]
        lens = bt["long_len"]
        lmask = torch.arange(k)[None, :] < lens[:, None]
        aux_loss = torch.zeros(())
        if self.soft:
            r = ((el @ self.gsu_wb.T) * (ea @ self.gsu_wa.T)[:, None, :]).sum(-1)     # (B, K)
            if self.time_bias is not None:
                lb = torch.tensor([[bucket(bt["now"][i] - bt["long_ts"][i, j]) for j in range(k)] for i in range(b)])
                r = r + self.time_bias[lb]
            if train:
                if self.gsu_softmax:  # masked softmax over the valid rows; a sample without rows pools 0
                    w = torch.softmax(r.masked_fill(~lmask, float("-inf")), -1).nan_to_num(0.0)
                else:
                    w = r * lmask
                ur = (w[:, :, None] * el).sum(1)
                aux_loss = F.binary_cross_entropy_with_logits(self.aux(torch.cat([ur, ea], -1)), bt["label"])
            keep = []
            for i in range(b):
                n = int(lens[i])
                idx = torch.arange(n) if n <= self.topk else torch.topk(r[i, :n].detach(), self.topk).indices
                keep.append(torch.sort(idx).values)
        else:
            keep = [torch.arange(max(0, int(lens[i]) - self.topk), int(lens[i])) for i in range(b)]
        ksel = max(1, max(len(x) for x in keep))
        sel_len = torch.tensor([len(x) for x in keep])
        pos = torch.zeros(b, ksel, dtype=torch.long)
        for i, x in enumerate(keep):
            pos[i, :len(x)] = x
        el_sel = torch.stack([el[i, pos[i]] for i in range(b)])           # (B, ksel, E)
        ts_sel = torch.stack([bt["long_ts"][i, pos[i]] for i in range(b)])
        deltas = bt["now"][:, None] - ts_sel
        buckets = torch.tensor([[bucket(deltas[i, j]) if j < sel_len[i] else 0 for j in range(ksel)] for i in range(b)])
        u = esu(ea, el_sel, sel_len, buckets, self.esu_wa, self.esu_wb, self.time_emb, self.heads, self.d_head)
        parts = [ea, v, ea * v, u] + ([self.recency_input(bt)] if self.recency is not None else [])
        logit = self.head(torch.cat(parts, -1))
        return logit, aux_loss, keep

    def named_for_c(self):
        p = {"emb.item": self.emb_item.weight, "emb.cat": self.emb_cat.weight,
             "att.fc1.weight": self.att1.weight, "att.fc1.bias": self.att1.bias,
             "att.fc2.weight": self.att2.weight, "att.fc2.bias": self.att2.bias,
             "att.fc3.weight": self.att3.weight, "att.fc3.bias": self.att3.bias,
             "esu.wa": self.esu_wa, "esu.wb": self.esu_wb}
        if self.d_time:
            p["esu.time_emb"] = self.time_emb
        if self.recency is not None:
            p["esu.recency"] = self.recency
        if self.recency_cat is not None:
            p["esu.recency_cat"] = self.recency_cat
        buf = {}
        if self.soft:
            p["gsu.wa"] = self.gsu_wa
            p["gsu.wb"] = self.gsu_wb
            if self.time_bias is not None:
                p["gsu.time_bias"] = self.time_bias
            p.update(self.aux.named("gsu.mlp"))
            buf.update(self.aux.buffers_named("gsu.mlp"))
        p.update(self.head.named("mlp"))
        buf.update(self.head.buffers_named("mlp"))
        return p, buf


def case(prefix, seed, soft, d_time, out, recency=False, gsu_softmax=False, recency_cat=False, gsu_recency=False):
    torch.manual_seed(seed)
    n_items, n_cats, B, S, K, topk = 40, 6, 7, 5, 9, 4
    model = SIM(n_items, n_cats, soft, d_item=6, d_cat=4, att=(8, 4), mlp=(12, 6), heads=2, d_head=3, d_time=d_time,
                gsu_d=5, topk=topk, alpha=1.0 if soft else 0.0, recency=recency,
                gsu_softmax=gsu_softmax, recency_cat=recency_cat, gsu_recency=gsu_recency)
    params, bufs = model.named_for_c()
    with torch.no_grad():
        for name, t in bufs.items():
            if name.endswith("running_mean"):
                t.normal_(0, 0.1)
            else:
                t.uniform_(0.5, 1.5)
    for k, v in params.items():
        out[prefix + k] = v.detach().clone()
    for k, v in bufs.items():
        out[prefix + "init." + k] = v.detach().clone()
    now = torch.randint(1_500_000_000, 1_510_000_000, (B,))
    bt = {
        "target_item": torch.randint(0, n_items + 3, (B,)), "target_cat": torch.randint(0, n_cats + 2, (B,)),
        "hist_item": torch.randint(0, n_items + 3, (B, S)), "hist_cat": torch.randint(0, n_cats + 2, (B, S)),
        "hist_len": torch.tensor([0, 1, S, 3, 2, S, 4]),
        "long_item": torch.randint(0, n_items + 3, (B, K)), "long_cat": torch.randint(0, n_cats + 2, (B, K)),
        "long_len": torch.tensor([K, 0, 2, K, 1, topk, 7]),
        "label": torch.tensor([1, 0, 1, 1, 0, 0, 1], dtype=torch.float32),
        "now": now,
    }
    # times in increasing order along the sequence (oldest first), before now
    gaps = (10 ** (torch.rand(B, K) * 7)).long() + 1
    bt["long_ts"] = now[:, None] - torch.flip(torch.cumsum(torch.flip(gaps, [1]), 1), [1])
    if recency_cat:  # categories from a few, so that the target's is often in the window, and not always
        bt["hist_cat"] = torch.randint(0, 3, (B, S))
        bt["target_cat"] = torch.randint(0, 3, (B,))
    if recency:  # short-term times, oldest first, the newest from seconds to weeks before now
        hgaps = (10 ** (torch.rand(B, S) * 6)).long() + 1
        bt["hist_ts"] = now[:, None] - torch.flip(torch.cumsum(torch.flip(hgaps, [1]), 1), [1])
    for k, v in bt.items():
        out[prefix + k] = v.to(torch.int32) if v.dtype == torch.int64 and k not in ("now", "long_ts", "hist_ts") else v

    model.train()
    logit, aux_loss, keep = model(bt, True)
    loss = F.binary_cross_entropy_with_logits(logit, bt["label"]) + model.alpha * aux_loss
    loss.backward()
    out[prefix + "logits"] = logit.detach().clone()
    out[prefix + "loss"] = loss.detach().reshape(())
    for k, v in params.items():
        out[prefix + "grad." + k] = v.grad.detach().clone() if v.grad is not None else torch.zeros_like(v)
    for k, v in bufs.items():
        out[prefix + "after." + k] = v.detach().clone()
    kept = torch.full((B, topk), -1, dtype=torch.int32)
    for i, x in enumerate(keep):
        kept[i, :len(x)] = x.to(torch.int32)
    out[prefix + "kept"] = kept
    model.eval()
    with torch.no_grad():
        out[prefix + "logits_eval"] = model(bt, False)[0].clone()
    dims = [6, 4, 8, 4, 12, 6, 2, 3, d_time, 5, topk]
    if recency or gsu_softmax:  # [11..17] the branch (DIN), [18] recency, [19] softmax pooling
        dims += [0, 0, 0, 0, 0, 0, 0, int(recency), int(gsu_softmax)]
    if recency_cat or gsu_recency:  # [20] recency's target-category part, [21] the search's recency bias
        dims += [int(recency_cat), int(gsu_recency)]
    out[prefix + "dims"] = torch.tensor(dims, dtype=torch.int32)


def main():
    out = {}
    case("h.", 5, soft=False, d_time=3, out=out)
    case("s.", 6, soft=True, d_time=3, out=out)
    case("n.", 7, soft=True, d_time=0, out=out)
    case("r.", 8, soft=False, d_time=3, out=out, recency=True)
    case("q.", 9, soft=True, d_time=3, out=out, recency=True, gsu_softmax=True)
    case("c.", 10, soft=False, d_time=3, out=out, recency=True, recency_cat=True)
    case("t.", 11, soft=True, d_time=3, out=out, recency=True, gsu_softmax=True, recency_cat=True, gsu_recency=True)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sim.safetensors")
    safetensors_io.save(path, out, {"generator": "tests/golden/gen_sim.py", "torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
