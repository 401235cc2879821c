#!/usr/bin/env python3
"""gen_dien.py: DIEN in PyTorch, from the DIEN paper (GRU extractor, auxiliary
loss with negatives, attention, AUGRU), independently of the C code; writes
tests/golden/dien.safetensors.

Run: /usr/bin/python3 tests/golden/gen_dien.py

One case, prefix "d.": parameters and buffers under the C names (esu/dien.h),
the batch (with the negatives of the auxiliary loss), training logits and
loss (BCE + auxiliary), every gradient, the running statistics after the
step, and inference logits.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from gen_nn_rnn import gru_ref  # noqa: E402  (the paper's GRU/AUGRU equations, step by step)
from gen_sim import Head  # noqa: E402


class DIEN(nn.Module):
    def __init__(self, n_items, n_cats, d_item, d_cat, mlp, alpha_aux=1.0, momentum=0.01):
        super().__init__()
        self.n_items, self.n_cats, self.alpha_aux = n_items, n_cats, alpha_aux
        e = d_item + d_cat
        self.emb_item = nn.Embedding(n_items + 1, d_item)
        self.emb_cat = nn.Embedding(n_cats + 1, d_cat)
        with torch.no_grad():
            self.emb_item.weight.normal_(0, 0.5)
            self.emb_cat.weight.normal_(0, 0.5)
        k = 1 / e ** 0.5
        self.gru_w = nn.Parameter(torch.empty(3 * e, e).uniform_(-k, k) * 3)
        self.gru_u = nn.Parameter(torch.empty(3 * e, e).uniform_(-k, k) * 3)
        self.gru_b = nn.Parameter(torch.empty(3 * e).uniform_(-k, k))
        self.att_w = nn.Parameter(torch.randn(e, e) * 0.5)
        self.aug_w = nn.Parameter(torch.empty(3 * e, e).uniform_(-k, k) * 3)
        self.aug_u = nn.Parameter(torch.empty(3 * e, e).uniform_(-k, k) * 3)
        self.aug_b = nn.Parameter(torch.empty(3 * e).uniform_(-k, k))
        self.head = Head(4 * e, mlp[0], mlp[1], momentum)

    def embed(self, item, cat):
        return torch.cat([self.emb_item(item.clamp(max=self.n_items)), self.emb_cat(cat.clamp(max=self.n_cats))], -1)

    def forward(self, bt, train):
        ea = self.embed(bt["target_item"], bt["target_cat"])
        es = self.embed(bt["hist_item"], bt["hist_cat"])
        b, s, e = es.shape
        lens = bt["hist_len"]
        mask = torch.arange(s)[None, :] < lens[:, None]
        h, _ = gru_ref(es, lens, self.gru_w, self.gru_u, self.gru_b)                 # (B, S, E)
        sc = (h * (ea @ self.att_w.T)[:, None, :]).sum(-1)                         # h_t . (W e_a)
        # masked softmax; a row of length 0 stays all zeros (masked_fill(-inf) would give NaN)
        sc = torch.where(mask, sc, torch.full_like(sc, -1e30))
        att = torch.softmax(sc, -1) * mask
        _, hfin = gru_ref(h, lens, self.aug_w, self.aug_u, self.aug_b, att=att)    # AUGRU
        pool = (es * mask[:, :, None]).sum(1)
        logit = self.head(torch.cat([ea, hfin, pool, ea * pool], -1))
        aux = torch.zeros(())
        if train:
            en = self.embed(bt["hist_neg_item"], bt["hist_neg_cat"])
            pairs = (torch.arange(s - 1)[None, :] < (lens[:, None] - 1))            # t with t + 1 valid
            pos = (h[:, :-1] * es[:, 1:]).sum(-1)
            neg = (h[:, :-1] * en[:, 1:]).sum(-1)
            terms = F.logsigmoid(pos) + F.logsigmoid(-neg)
            n = pairs.sum()
            if n > 0:
                aux = -(terms * pairs).sum() / n
        return logit, aux

    def named_for_c(self):
        p = {"emb.item": self.emb_item.weight, "emb.cat": self.emb_cat.weight,
             "dien.gru.w": self.gru_w, "dien.gru.u": self.gru_u, "dien.gru.b": self.gru_b, "dien.att.w": self.att_w,
             "dien.augru.w": self.aug_w, "dien.augru.u": self.aug_u, "dien.augru.b": self.aug_b}
        p.update(self.head.named("mlp"))
        return p, self.head.buffers_named("mlp")


def main():
    out, prefix = {}, "d."
    torch.manual_seed(8)
    n_items, n_cats, B, S = 40, 6, 7, 6
    model = DIEN(n_items, n_cats, d_item=5, d_cat=3, mlp=(12, 6))
    # float32 weights (what C holds), computed in float64: the reference is then exact to ~1e-15
    model.double()
    params, bufs = model.named_for_c()
    with torch.no_grad():
        for name, t in bufs.items():
            t.normal_(0, 0.1) if name.endswith("running_mean") else t.uniform_(0.5, 1.5)
    for k, v in params.items():
        out[prefix + k] = v.detach().float().clone()
    for k, v in bufs.items():
        out[prefix + "init." + k] = v.detach().float().clone()
    bt = {
        "target_item": torch.randint(0, n_items + 3, (B,)), "target_cat": torch.randint(0, n_cats + 2, (B,)),
        "hist_item": torch.randint(0, n_items + 3, (B, S)), "hist_cat": torch.randint(0, n_cats + 2, (B, S)),
        "hist_neg_item": torch.randint(0, n_items + 3, (B, S)), "hist_neg_cat": torch.randint(0, n_cats + 2, (B, S)),
        "hist_len": torch.tensor([0, 1, S, 3, 2, S, 4]),
        "label": torch.tensor([1, 0, 1, 1, 0, 0, 1], dtype=torch.float64),
    }
    for k, v in bt.items():
        out[prefix + k] = v.to(torch.int32) if v.dtype == torch.int64 else v.float()
    model.train()
    logit, aux = model(bt, True)
    loss = F.binary_cross_entropy_with_logits(logit, bt["label"]) + model.alpha_aux * aux
    loss.backward()
    out[prefix + "logits"] = logit.detach().float()
    out[prefix + "loss"] = loss.detach().float().reshape(())
    out[prefix + "aux_loss"] = aux.detach().float().reshape(())
    for k, v in params.items():
        out[prefix + "grad." + k] = v.grad.detach().float()
    for k, v in bufs.items():
        out[prefix + "after." + k] = v.detach().float()
    model.eval()
    with torch.no_grad():
        out[prefix + "logits_eval"] = model(bt, False)[0].float()
    out[prefix + "dims"] = torch.tensor([5, 3, 12, 6], dtype=torch.int32)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dien.safetensors")
    safetensors_io.save(path, out, {"generator": "tests/golden/gen_dien.py", "torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
