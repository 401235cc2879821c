"""gen_nn_basic.py: reference tensors for the basic kernels of models/nn.h
(models/nn_basic.c), computed with PyTorch, written to nn_basic.safetensors
beside this script. tests/test_nn_basic.c reads them.

Every kernel is defined here independently of the C code, with PyTorch's own
modules and functions (torch.nn.functional, nn.BatchNorm1d), and every
gradient comes from autograd: backward of sum(out * dout) for a random
upstream gradient dout. Inputs are drawn in float32 (what the C code sees)
and the math runs in float64, so the stored outputs are the float32
roundings of (nearly) exact results.

Tensor names: "<case>.<what>", e.g. "lin.inp", "lin.dw". Scalars (momentum,
eps, scale, loss) are F32 tensors of shape [1]. Token ids are I64 (the C side
converts them to uint32), so ids beyond the vocabulary, up to 2^32 - 1, fit.

Run: /usr/bin/python3 tests/golden/gen_nn_basic.py   (PyTorch >= 1.13)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_basic.safetensors")
T = {}


def f32(*shape, scale=1.0, shift=0.0):
    """Random float32 input, as the C code will see it."""
    return (torch.randn(*shape) * scale + shift).float()


def leaf(x):
    """A float64 copy of a float32 tensor that autograd tracks."""
    return x.double().clone().requires_grad_(True)


def put(name, t):
    t = t.detach()
    T[name] = t.float() if t.is_floating_point() else t


def scalar(name, v):
    T[name] = torch.tensor([v], dtype=torch.float32)


def backward(out, dout):
    (out * dout.double()).sum().backward()


# ---- linear: out = inp @ w^T + b (nn.Linear's layout, w (OC, C)) ----
def gen_linear(case, n, c, oc, bias):
    inp, w = f32(n, c), f32(oc, c, scale=c ** -0.5)
    b = f32(oc) if bias else None
    dout = f32(n, oc)
    xi, wi = leaf(inp), leaf(w)
    bi = leaf(b) if bias else None
    out = F.linear(xi, wi, bi)
    backward(out, dout)
    put(case + ".inp", inp)
    put(case + ".w", w)
    if bias:
        put(case + ".b", b)
        put(case + ".db", bi.grad)
    put(case + ".out", out)
    put(case + ".dout", dout)
    put(case + ".dinp", xi.grad)
    put(case + ".dw", wi.grad)


# ---- embedding with an out-of-vocabulary row: ids >= vocab read row vocab ----
def gen_embedding(case, vocab, c, ids):
    ids = torch.tensor(ids, dtype=torch.int64)
    table = f32(vocab + 1, c)
    dout = f32(len(ids), c)
    ti = leaf(table)
    out = F.embedding(ids.clamp(max=vocab), ti)
    backward(out, dout)
    put(case + ".ids", ids)
    put(case + ".table", table)
    put(case + ".out", out)
    put(case + ".dout", dout)
    put(case + ".dtable", ti.grad)


# ---- elementwise: sigmoid, tanh, relu ----
def gen_elementwise(case, fn, inp):
    dout = f32(*inp.shape)
    xi = leaf(inp)
    out = fn(xi)
    backward(out, dout)
    put(case + ".inp", inp)
    put(case + ".out", out)
    put(case + ".dout", dout)
    put(case + ".dinp", xi.grad)


def away_from_zero(x, margin=0.05):
    """Moves entries off the kink of relu/prelu (the C test perturbs inputs)."""
    return torch.where(x.abs() < margin, x.sign() * margin + (x == 0).float() * margin, x)


# ---- PReLU, one alpha per channel (nn.PReLU(C) on (N, C)) ----
def gen_prelu(case, n, c):
    inp = away_from_zero(f32(n, c))
    alpha = (torch.rand(c) * 0.6 - 0.1).float()
    dout = f32(n, c)
    xi, ai = leaf(inp), leaf(alpha)
    out = F.prelu(xi, ai)
    backward(out, dout)
    put(case + ".inp", inp)
    put(case + ".alpha", alpha)
    put(case + ".out", out)
    put(case + ".dout", dout)
    put(case + ".dinp", xi.grad)
    put(case + ".dalpha", ai.grad)


# ---- Dice: BatchNorm1d(C, eps=1e-8, momentum=m, affine=False), then the gate ----
def gen_dice(case, n, c, momentum, n_inf):
    shift = f32(c, scale=2.0)
    scale = (torch.rand(c) * 2.0 + 0.2).float()
    inp = (torch.randn(n, c) * scale + shift).float()
    alpha = (torch.rand(c) * 0.5 - 0.1).float()
    run_mean0 = f32(c, scale=0.5)
    run_var0 = (torch.rand(c) + 0.5).float()
    dout = f32(n, c)

    bn = torch.nn.BatchNorm1d(c, eps=1e-8, momentum=momentum, affine=False).double()
    with torch.no_grad():
        bn.running_mean.copy_(run_mean0.double())
        bn.running_var.copy_(run_var0.double())
    xi, ai = leaf(inp), leaf(alpha)

    def dice(x):
        p = torch.sigmoid(bn(x))
        return p * x + (1 - p) * ai * x

    bn.train()
    out = dice(xi)
    backward(out, dout)
    x64 = inp.double()
    put(case + ".inp", inp)
    put(case + ".alpha", alpha)
    scalar(case + ".momentum", momentum)
    put(case + ".run_mean0", run_mean0)
    put(case + ".run_var0", run_var0)
    put(case + ".out", out)
    put(case + ".mean", x64.mean(0))
    put(case + ".var", x64.var(0, unbiased=False))
    put(case + ".run_mean1", bn.running_mean)   # after one training step
    put(case + ".run_var1", bn.running_var)
    put(case + ".dout", dout)
    put(case + ".dinp", xi.grad)
    put(case + ".dalpha", ai.grad)

    # inference: a new batch normalized by the running statistics; the C
    # side runs it on the float32 run_mean1 / run_var1 stored above
    bn.eval()
    with torch.no_grad():
        bn.running_mean.copy_(T[case + ".run_mean1"].double())
        bn.running_var.copy_(T[case + ".run_var1"].double())
        inf_inp = (torch.randn(n_inf, c) * scale + shift).float()
        put(case + ".inf_inp", inf_inp)
        put(case + ".inf_out", dice(inf_inp.double()))


# ---- softmax over the last dimension with a length mask ----
def gen_softmax(case, t, lens, big_row=None):
    r = len(lens)
    inp = f32(r, t, scale=3.0)
    if big_row is not None:   # large logits: exp would overflow without the max
        inp[big_row] = inp[big_row] * 30.0 + 60.0
    lens_t = torch.tensor(lens, dtype=torch.int64)
    dout = f32(r, t)
    xi = leaf(inp)
    pad = torch.arange(t)[None, :] >= lens_t[:, None]          # (R, T) padding
    live = (lens_t > 0)[:, None]                                 # rows with entries
    # rows of len 0 would be all -inf (NaN): fill nothing there, zero them after
    probs = torch.softmax(xi.masked_fill(pad & live, float("-inf")), dim=-1)
    out = probs * live.double()
    backward(out, dout)
    put(case + ".inp", inp)
    put(case + ".len", lens_t)
    put(case + ".out", out)
    put(case + ".dout", dout)
    put(case + ".dinp", xi.grad)


# ---- layer normalization (nn.LayerNorm(C, eps)), with saved mean / rstd ----
def gen_layernorm(case, n, c, eps):
    inp = f32(n, c, scale=2.0, shift=3.0)
    gamma, beta = f32(c, scale=0.5, shift=1.0), f32(c, scale=0.5)
    dout = f32(n, c)
    xi, gi, bi = leaf(inp), leaf(gamma), leaf(beta)
    out = F.layer_norm(xi, (c,), gi, bi, eps)
    backward(out, dout)
    _, mean, rstd = torch.native_layer_norm(inp.double(), (c,), None, None, eps)
    put(case + ".inp", inp)
    put(case + ".gamma", gamma)
    put(case + ".beta", beta)
    scalar(case + ".eps", eps)
    put(case + ".out", out)
    put(case + ".mean", mean.reshape(n))
    put(case + ".rstd", rstd.reshape(n))
    put(case + ".dout", dout)
    put(case + ".dinp", xi.grad)
    put(case + ".dgamma", gi.grad)
    put(case + ".dbeta", bi.grad)


# ---- binary cross-entropy with logits, mean over N ----
def gen_bce(case, n, scale):
    logits = f32(n, scale=4.0)
    logits[:6] = torch.tensor([-100.0, 100.0, -30.0, 30.0, 0.0, 17.5])
    labels = (torch.rand(n) < 0.5).float()
    labels[6:9] = torch.tensor([0.3, 0.7, 0.5])     # soft labels
    li = leaf(logits)
    loss = F.binary_cross_entropy_with_logits(li, labels.double(), reduction="mean")
    (loss * scale).backward()
    put(case + ".logits", logits)
    put(case + ".labels", labels)
    scalar(case + ".scale", scale)
    T[case + ".loss"] = loss.detach().float().reshape(1)
    put(case + ".dlogits", li.grad)


def main():
    torch.manual_seed(20240601)
    gen_linear("lin", 6, 11, 9, True)
    gen_linear("lin_n1", 1, 5, 3, True)       # a single row
    gen_linear("lin_nb", 4, 8, 7, False)      # no bias
    # ids: repeats (3 three times, 0 twice) and out-of-vocabulary ids
    gen_embedding("emb", 10, 6, [3, 0, 9, 3, 10, 11, 4294967295, 3, 0, 1000, 5, 7])
    ew = torch.cat([f32(40, scale=3.0), torch.tensor([-100.0, -20.0, 20.0, 100.0])])
    gen_elementwise("sigmoid", torch.sigmoid, ew)
    gen_elementwise("tanh", torch.tanh, ew)
    gen_elementwise("relu", F.relu, away_from_zero(ew))
    gen_prelu("prelu", 7, 5)
    gen_dice("dice", 16, 70, 0.1, 5)            # C = 70 spans two 64-channel blocks
    gen_dice("dice_m", 33, 3, 0.35, 4)
    gen_softmax("softmax", 9, [0, 1, 9, 4, 7, 2, 9], big_row=6)
    gen_layernorm("layernorm", 5, 24, 1e-5)
    gen_bce("bce", 24, 0.75)
    safetensors_io.save(OUT, T, {"generator": "gen_nn_basic.py", "torch": torch.__version__,
                                 "seed": "20240601"})
    print(f"wrote {OUT}: {len(T)} tensors")


if __name__ == "__main__":
    main()
