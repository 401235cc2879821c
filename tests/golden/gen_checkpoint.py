#!/usr/bin/env python3
"""gen_checkpoint.py: checkpoints written by PyTorch, as a PyTorch user would write
them for lsim to serve (esu/model.h, docs/CHECKPOINT_FORMAT.md), and the scores
PyTorch gives, so tests/test_checkpoint.c can check that lsim serves them the same.

Run: /usr/bin/python3 tests/golden/gen_checkpoint.py
Writes tests/golden/ckpt_din.safetensors, ckpt_sim_soft.safetensors (the
checkpoints) and ckpt_inputs.safetensors (a batch and PyTorch's inference
logits for each).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from gen_din import DIN  # noqa: E402
from gen_sim import SIM  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def batch(n_items, n_cats, B, S, K, seed):
    g = torch.Generator().manual_seed(seed)
    now = torch.randint(1_500_000_000, 1_510_000_000, (B,), generator=g)
    gaps = (10 ** (torch.rand(B, K, generator=g) * 7)).long() + 1
    return {
        "target_item": torch.randint(0, n_items + 2, (B,), generator=g),
        "target_cat": torch.randint(0, n_cats + 1, (B,), generator=g),
        "hist_item": torch.randint(0, n_items + 2, (B, S), generator=g),
        "hist_cat": torch.randint(0, n_cats + 1, (B, S), generator=g),
        "hist_len": torch.randint(0, S + 1, (B,), generator=g),
        "long_item": torch.randint(0, n_items + 2, (B, K), generator=g),
        "long_cat": torch.randint(0, n_cats + 1, (B, K), generator=g),
        "long_len": torch.randint(0, K + 1, (B,), generator=g),
        "long_ts": now[:, None] - torch.flip(torch.cumsum(torch.flip(gaps, [1]), 1), [1]),
        "now": now,
    }


def meta_common(kind, n_items, n_cats, d_item, d_cat, att, mlp):
    return {"lsim.format": "1", "lsim.model": kind, "lsim.n_items": n_items, "lsim.n_cats": n_cats,
            "lsim.d_item": d_item, "lsim.d_cat": d_cat, "lsim.att_h1": att[0], "lsim.att_h2": att[1],
            "lsim.mlp_h1": mlp[0], "lsim.mlp_h2": mlp[1], "lsim.att_softmax": 0, "lsim.dice_momentum": 0.01,
            "trained_with": "PyTorch " + torch.__version__}


def main():
    inputs = {}
    torch.manual_seed(11)
    n_items, n_cats, B, S, K = 60, 9, 8, 6, 12
    # DIN, as a PyTorch user trains it
    din = DIN(n_items, n_cats, d_item=8, d_cat=4, att=(16, 8), mlp=(20, 10))
    p, buf = din.named_for_c()
    with torch.no_grad():
        for name, t in buf.items():
            t.normal_(0, 0.1) if name.endswith("mean") else t.uniform_(0.5, 1.5)
    safetensors_io.save(os.path.join(HERE, "ckpt_din.safetensors"), {**p, **buf},
                        meta_common("din", n_items, n_cats, 8, 4, (16, 8), (20, 10)))
    bt = batch(n_items, n_cats, B, S, K, 1)
    din.eval()
    with torch.no_grad():
        logits = din(bt["target_item"], bt["target_cat"], bt["hist_item"], bt["hist_cat"], bt["hist_len"])
    for k, v in bt.items():
        inputs["din." + k] = v.to(torch.int32) if k not in ("now", "long_ts") else v
    inputs["din.logits"] = logits

    # SIM with soft search and time info
    sim = SIM(n_items, n_cats, True, d_item=8, d_cat=4, att=(16, 8), mlp=(20, 10), heads=2, d_head=4, d_time=3, gsu_d=6,
              topk=5, alpha=1.0)
    p, buf = sim.named_for_c()
    with torch.no_grad():
        for name, t in buf.items():
            t.normal_(0, 0.1) if name.endswith("mean") else t.uniform_(0.5, 1.5)
    meta = meta_common("sim-soft", n_items, n_cats, 8, 4, (16, 8), (20, 10))
    meta.update({"lsim.topk": 5, "lsim.heads": 2, "lsim.d_head": 4, "lsim.d_time": 3, "lsim.gsu_d": 6, "lsim.alpha": 1})
    safetensors_io.save(os.path.join(HERE, "ckpt_sim_soft.safetensors"), {**p, **buf}, meta)
    bt = batch(n_items, n_cats, B, S, K, 2)
    bt["label"] = torch.zeros(B)
    sim.eval()
    with torch.no_grad():
        logits = sim(bt, False)[0]
    for k, v in bt.items():
        if k != "label":
            inputs["sim." + k] = v.to(torch.int32) if k not in ("now", "long_ts") else v
    inputs["sim.logits"] = logits
    safetensors_io.save(os.path.join(HERE, "ckpt_inputs.safetensors"), inputs, {"generator": "gen_checkpoint.py"})
    print("wrote ckpt_din, ckpt_sim_soft, ckpt_inputs")


if __name__ == "__main__":
    main()
