"""gen_optim.py: reference steps of torch.optim.Adam and torch.optim.Adagrad,
written to optim.safetensors beside this script; tests/test_optim.c reads them.

Each case takes three float32 parameters (shapes [3, 5], [7], [2, 2, 3]),
draws a random gradient for each of STEPS steps (some entries exactly 0, one
large), and runs PyTorch's optimizer in float32 (PyTorch's own code: the
numbers the C side must reproduce, operation for operation):
  adam      torch.optim.Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8), with
            inverse-time decay 0.1: before step t the group's lr is set to
            0.01 / (1 + 0.1 (t - 1)) (train/optim.h's schedule);
  adagrad   torch.optim.Adagrad(lr=0.05, lr_decay=0.1, eps=1e-10): its own
            decay, the same schedule.
Tensors: "<case>.p<k>.init", "<case>.p<k>.g<t>" (t = 1..STEPS),
"<case>.p<k>.after<t>" (the parameter after step t), and the state after the
last step: "<case>.p<k>.exp_avg" / ".exp_avg_sq" (Adam), ".sum" (Adagrad).

Run: /usr/bin/python3 tests/golden/gen_optim.py   (PyTorch >= 1.13)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim.safetensors")
SHAPES = [(3, 5), (7,), (2, 2, 3)]
STEPS = 6
DECAY = 0.1


def run(name, make, lr0, set_lr, T):
    ps = [torch.nn.Parameter(torch.randn(*s).float()) for s in SHAPES]
    for k, p in enumerate(ps):
        T[f"{name}.p{k}.init"] = p.detach().clone()
    opt = make(ps)
    for t in range(1, STEPS + 1):
        if set_lr:
            for g in opt.param_groups:
                g["lr"] = lr0 / (1 + DECAY * (t - 1))
        for k, p in enumerate(ps):
            g = torch.randn(*p.shape).float()
            g[g.abs() < 0.3] = 0.0  # exact zeros
            g.view(-1)[0] = 40.0 * t  # a large one
            p.grad = g
            T[f"{name}.p{k}.g{t}"] = g.clone()
        opt.step()
        for k, p in enumerate(ps):
            T[f"{name}.p{k}.after{t}"] = p.detach().clone()
    for k, p in enumerate(ps):
        st = opt.state[p]
        for key in ("exp_avg", "exp_avg_sq", "sum"):
            if key in st:
                T[f"{name}.p{k}.{key}"] = st[key].detach().clone()


def main():
    torch.manual_seed(11)
    T = {}
    run("adam", lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8, foreach=False), 0.01, True, T)
    run("adagrad", lambda ps: torch.optim.Adagrad(ps, lr=0.05, lr_decay=DECAY, eps=1e-10, foreach=False), 0.05,
        False, T)
    safetensors_io.save(OUT, T, {"steps": str(STEPS), "decay": str(DECAY)})
    print(f"wrote {OUT}: {len(T)} tensors")


if __name__ == "__main__":
    main()
