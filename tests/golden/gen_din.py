#!/usr/bin/env python3
"""gen_din.py: DIN in PyTorch, written from the papers independently of the C code,
and the fixture tests/test_din.c compares the C model against.

Run with Debian's PyTorch:  /usr/bin/python3 tests/golden/gen_din.py
It writes tests/golden/din.safetensors (committed, so tests need no PyTorch).

Two cases share the file, prefixed "a." and "b.":
  a  the paper's form: attention weights are the raw scores (no softmax),
     default widths
  b  masked softmax weights (the official code's form) + avg-pooling of a
     long-term sequence (SIM's "avg-pooling long DIN" baseline), small widths
Each holds the parameters and buffers under the C model's names, the batch,
the training-mode logits and loss, every parameter's gradient ("grad." + name),
the running statistics after that step, and inference-mode logits computed
with them. Batches include empty histories, length-1 histories, full ones,
and out-of-vocabulary ids.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


class Dice(nn.Module):
    """p = sigmoid(BatchNorm(x)); out = p x + (1 - p) alpha x (DIN paper, eps 1e-8)."""

    def __init__(self, c, momentum):
        super().__init__()
        self.bn = nn.BatchNorm1d(c, eps=1e-8, momentum=momentum, affine=False)
        self.alpha = nn.Parameter(torch.empty(c).uniform_(0.0, 0.5))

    def forward(self, x):
        p = torch.sigmoid(self.bn(x))
        return p * x + (1 - p) * self.alpha * x


class DIN(nn.Module):
    def __init__(self, n_items, n_cats, d_item=18, d_cat=18, att=(80, 40), mlp=(200, 80),
                 att_softmax=False, momentum=0.01, long_avgpool=False):
        super().__init__()
        self.n_items, self.n_cats = n_items, n_cats
        self.att_softmax, self.long_avgpool = att_softmax, long_avgpool
        e = d_item + d_cat
        self.emb_item = nn.Embedding(n_items + 1, d_item)
        self.emb_cat = nn.Embedding(n_cats + 1, d_cat)
        self.att1, self.att2, self.att3 = nn.Linear(4 * e, att[0]), nn.Linear(att[0], att[1]), nn.Linear(att[1], 1)
        m = (4 if long_avgpool else 3) * e
        self.fc1, self.fc2, self.fc3 = nn.Linear(m, mlp[0]), nn.Linear(mlp[0], mlp[1]), nn.Linear(mlp[1], 1)
        self.dice1, self.dice2 = Dice(mlp[0], momentum), Dice(mlp[1], momentum)
        with torch.no_grad():  # non-trivial embeddings so that every path carries signal
            self.emb_item.weight.normal_(0, 0.5)
            self.emb_cat.weight.normal_(0, 0.5)

    def embed(self, item, cat):
        item = item.clamp(max=self.n_items)  # ids past the vocabulary use the last row
        cat = cat.clamp(max=self.n_cats)
        return torch.cat([self.emb_item(item), self.emb_cat(cat)], -1)

    def forward(self, target_item, target_cat, hist_item, hist_cat, hist_len, long_item=None, long_cat=None,
                long_len=None):
        ea = self.embed(target_item, target_cat)                       # (B, E)
        es = self.embed(hist_item, hist_cat)                           # (B, S, E)
        b, s, e = es.shape
        mask = torch.arange(s)[None, :] < hist_len[:, None]            # (B, S)
        eax = ea[:, None, :].expand(b, s, e)
        x = torch.cat([es, eax, es - eax, es * eax], -1)
        sc = self.att3(torch.sigmoid(self.att2(torch.sigmoid(self.att1(x))))).squeeze(-1)  # (B, S)
        if self.att_softmax:
            w = torch.softmax(sc.masked_fill(~mask, float("-inf")), -1)
            w = torch.where(mask, w, torch.zeros_like(w))              # rows of length 0: zeros, not NaN
        else:
            w = sc * mask
        v = (w[:, :, None] * es).sum(1)                                # (B, E)
        parts = [ea, v, ea * v]
        if self.long_avgpool:
            el = self.embed(long_item, long_cat)
            lm = (torch.arange(el.shape[1])[None, :] < long_len[:, None]).float()
            parts.append((el * lm[:, :, None]).sum(1) / long_len.clamp(min=1)[:, None].float())
        m = torch.cat(parts, -1)
        return self.fc3(self.dice2(self.fc2(self.dice1(self.fc1(m))))).squeeze(-1)

    def named_for_c(self):
        """Parameters and buffers under the C model's names (models/din.h)."""
        p = {
            "emb.item": self.emb_item.weight, "emb.cat": self.emb_cat.weight,
            "att.fc1.weight": self.att1.weight, "att.fc1.bias": self.att1.bias,
            "att.fc2.weight": self.att2.weight, "att.fc2.bias": self.att2.bias,
            "att.fc3.weight": self.att3.weight, "att.fc3.bias": self.att3.bias,
            "mlp.fc1.weight": self.fc1.weight, "mlp.fc1.bias": self.fc1.bias, "mlp.dice1.alpha": self.dice1.alpha,
            "mlp.fc2.weight": self.fc2.weight, "mlp.fc2.bias": self.fc2.bias, "mlp.dice2.alpha": self.dice2.alpha,
            "mlp.fc3.weight": self.fc3.weight, "mlp.fc3.bias": self.fc3.bias,
        }
        buf = {
            "mlp.dice1.running_mean": self.dice1.bn.running_mean, "mlp.dice1.running_var": self.dice1.bn.running_var,
            "mlp.dice2.running_mean": self.dice2.bn.running_mean, "mlp.dice2.running_var": self.dice2.bn.running_var,
        }
        return p, buf


def case(prefix, seed, att_softmax, long_avgpool, dims, out):
    torch.manual_seed(seed)
    n_items, n_cats, B, S, K = 50, 7, 9, 6, 5
    model = DIN(n_items, n_cats, att_softmax=att_softmax, long_avgpool=long_avgpool, **dims)
    with torch.no_grad():  # non-default running statistics, so inference mode is tested for real
        model.dice1.bn.running_mean.normal_(0, 0.1)
        model.dice1.bn.running_var.uniform_(0.5, 1.5)
        model.dice2.bn.running_mean.normal_(0, 0.1)
        model.dice2.bn.running_var.uniform_(0.5, 1.5)
    params, bufs = model.named_for_c()
    for k, v in params.items():
        out[prefix + k] = v.detach().clone()
    for k, v in bufs.items():
        out[prefix + "init." + k] = v.detach().clone()

    # ids up to n_items + 3 / n_cats + 2: some out of vocabulary; lengths 0, 1, S and between
    batch = {
        "target_item": torch.randint(0, n_items + 3, (B,)), "target_cat": torch.randint(0, n_cats + 2, (B,)),
        "hist_item": torch.randint(0, n_items + 3, (B, S)), "hist_cat": torch.randint(0, n_cats + 2, (B, S)),
        "hist_len": torch.tensor([0, 1, S, 3, 2, S, 4, 5, 1]),
        "long_item": torch.randint(0, n_items + 3, (B, K)), "long_cat": torch.randint(0, n_cats + 2, (B, K)),
        "long_len": torch.tensor([K, 0, 2, K, 1, 3, 0, 4, K]),
        "label": torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1], dtype=torch.float32),
    }
    for k, v in batch.items():
        out[prefix + k] = v.to(torch.int32) if v.dtype == torch.int64 else v

    model.train()
    logits = model(batch["target_item"], batch["target_cat"], batch["hist_item"], batch["hist_cat"],
                   batch["hist_len"], batch["long_item"], batch["long_cat"], batch["long_len"])
    loss = F.binary_cross_entropy_with_logits(logits, batch["label"])
    loss.backward()
    out[prefix + "logits"] = logits.detach().clone()
    out[prefix + "loss"] = loss.detach().reshape(())
    for k, v in params.items():
        out[prefix + "grad." + k] = v.grad.detach().clone()
    for k, v in bufs.items():
        out[prefix + "after." + k] = v.detach().clone()
    model.eval()
    with torch.no_grad():
        out[prefix + "logits_eval"] = model(batch["target_item"], batch["target_cat"], batch["hist_item"],
                                            batch["hist_cat"], batch["hist_len"], batch["long_item"],
                                            batch["long_cat"], batch["long_len"]).clone()


def main():
    out = {}
    # a: the default widths (18 + 18, attention 80-40, MLP 200-80); b: small ones
    case("a.", 1, att_softmax=False, long_avgpool=False, dims={}, out=out)
    case("b.", 2, att_softmax=True, long_avgpool=True,
         dims={"d_item": 6, "d_cat": 4, "att": (16, 8), "mlp": (24, 12)}, out=out)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "din.safetensors")
    safetensors_io.save(path, out, {"generator": "tests/golden/gen_din.py", "torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
