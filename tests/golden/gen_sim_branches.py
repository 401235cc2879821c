#!/usr/bin/env python3
"""gen_sim_branches.py: SIM with DIEN or DSIN as its short-term branch (the SIM
paper's "short-term branch chosen from DIN / DIEN / DSIN"), in PyTorch,
independently of the C code; writes tests/golden/sim_branches.safetensors.

Run: /usr/bin/python3 tests/golden/gen_sim_branches.py

Cases: "sd." soft search + time info + DIEN branch; "ss." hard search + time
info + DSIN branch. Float32 weights computed in float64 (as gen_dien.py), so
the reference is exact to float64. Layout of each case as in gen_sim.py, and
"dims" = [d_item, d_cat, att_h1, att_h2, mlp_h1, mlp_h2, heads, d_head,
d_time, gsu_d, topk, branch (1 DIEN, 2 DSIN), K, T, dsin_heads, d_ffn,
d_lstm, min_session_len].
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from gen_dsin import encode, make_encoder, split_sessions  # noqa: E402
from gen_esu import N_BUCKETS, bucket, esu  # noqa: E402
from gen_nn_rnn import gru_ref  # noqa: E402
from gen_sim import Head  # noqa: E402


class SIMB(nn.Module):
    def __init__(self, n_items, n_cats, soft, branch, d_item, d_cat, mlp, heads, d_head, d_time, gsu_d, topk,
                 K=3, T=4, dsin_heads=2, ffn=16, H=6, min_len=1, momentum=0.01):
        super().__init__()
        self.n_items, self.n_cats, self.soft, self.branch, self.topk = n_items, n_cats, soft, branch, topk
        self.heads, self.d_head, self.d_time = heads, d_head, d_time
        self.K, self.T, self.H, self.min_len = K, T, H, min_len
        e = d_item + d_cat
        self.emb_item = nn.Embedding(n_items + 1, d_item)
        self.emb_cat = nn.Embedding(n_cats + 1, d_cat)
        with torch.no_grad():
            self.emb_item.weight.normal_(0, 0.5)
            self.emb_cat.weight.normal_(0, 0.5)
        if branch == "dien":
            k = 1 / e ** 0.5
            self.gru_w = nn.Parameter(torch.empty(3 * e, e).uniform_(-k, k) * 3)
            self.gru_u = nn.Parameter(torch.empty(3 * e, e).uniform_(-k, k) * 3)
            self.gru_b = nn.Parameter(torch.empty(3 * e).uniform_(-k, k))
            self.att_w = nn.Parameter(torch.randn(e, e) * 0.5)
            self.aug_w = nn.Parameter(torch.empty(3 * e, e).uniform_(-k, k) * 3)
            self.aug_u = nn.Parameter(torch.empty(3 * e, e).uniform_(-k, k) * 3)
            self.aug_b = nn.Parameter(torch.empty(3 * e).uniform_(-k, k))
            bw = 3 * e
        else:
            self.be_k = nn.Parameter(torch.randn(K) * 0.3)
            self.be_t = nn.Parameter(torch.randn(T) * 0.3)
            self.be_c = nn.Parameter(torch.randn(e) * 0.3)
            self.enc = make_encoder(e, dsin_heads, ffn)
            self.lstm = nn.LSTM(e, H, batch_first=True, bidirectional=True)
            self.att_i = nn.Parameter(torch.randn(e, e) * 0.4)
            self.att_h = nn.Parameter(torch.randn(H, e) * 0.4)
            bw = e + H
        self.esu_wa = nn.Parameter(torch.randn(heads * d_head, e) * 0.4)
        self.esu_wb = nn.Parameter(torch.randn(heads * d_head, e + d_time) * 0.4)
        self.time_emb = nn.Parameter(torch.randn(N_BUCKETS, d_time))
        if soft:
            self.gsu_wa = nn.Parameter(torch.randn(gsu_d, e) * 0.4)
            self.gsu_wb = nn.Parameter(torch.randn(gsu_d, e) * 0.4)
            self.aux = Head(2 * e, mlp[0], mlp[1], momentum)
        self.head = Head(e + bw + heads * (e + d_time), mlp[0], mlp[1], momentum)

    def embed(self, item, cat):
        return torch.cat([self.emb_item(item.clamp(max=self.n_items)), self.emb_cat(cat.clamp(max=self.n_cats))], -1)

    def dien_branch(self, bt, ea, train):
        es = self.embed(bt["hist_item"], bt["hist_cat"])
        b, s, e = es.shape
        lens = bt["hist_len"]
        mask = torch.arange(s)[None, :] < lens[:, None]
        h, _ = gru_ref(es, lens, self.gru_w, self.gru_u, self.gru_b)
        sc = (h * (ea @ self.att_w.T)[:, None, :]).sum(-1)
        att = torch.softmax(torch.where(mask, sc, torch.full_like(sc, -1e30)), -1) * mask
        _, hfin = gru_ref(h, lens, self.aug_w, self.aug_u, self.aug_b, att=att)
        pool = (es * mask[:, :, None]).sum(1)
        aux = torch.zeros((), dtype=ea.dtype)
        if train:
            en = self.embed(bt["hist_neg_item"], bt["hist_neg_cat"])
            pairs = torch.arange(s - 1)[None, :] < (lens[:, None] - 1)
            terms = F.logsigmoid((h[:, :-1] * es[:, 1:]).sum(-1)) + F.logsigmoid(-(h[:, :-1] * en[:, 1:]).sum(-1))
            if pairs.sum() > 0:
                aux = -(terms * pairs).sum() / pairs.sum()
        return torch.cat([hfin, pool, ea * pool], -1), aux

    @staticmethod
    def unit(v, q, n):
        k = v.shape[1]
        mask = torch.arange(k)[None, :] < n[:, None]
        sc = torch.where(mask, (v * q[:, None, :]).sum(-1), torch.full((v.shape[0], k), -1e30, dtype=v.dtype))
        return ((torch.softmax(sc, -1) * mask)[:, :, None] * v).sum(1)

    def dsin_branch(self, bt, ea):
        K, T, H = self.K, self.T, self.H
        B, e = ea.shape
        sess = [split_sessions(bt["hist_ts"][b].tolist(), int(bt["hist_len"][b]), K, T, self.min_len) for b in range(B)]
        rows = [(b, k, s) for b in range(B) for k, s in enumerate(sess[b])]
        n_sess = torch.tensor([len(s) for s in sess])
        I = torch.zeros(B * K, e, dtype=ea.dtype)
        if rows:
            xs = []
            for b, k, s in rows:
                pos = torch.tensor(s)
                q = self.embed(bt["hist_item"][b, pos], bt["hist_cat"][b, pos])
                q = q + self.be_k[k] + self.be_t[:len(s), None] + self.be_c[None, :]
                xs.append(torch.cat([q, torch.zeros(T - len(s), e, dtype=q.dtype)]))
            lens = torch.tensor([len(s) for _, _, s in rows])
            y = encode(self.enc, torch.stack(xs), lens)
            I = I.index_add(0, torch.tensor([b * K + k for b, k, _ in rows]), y.sum(1) / lens[:, None])
        I = I.view(B, K, e)
        Hs = torch.zeros(B, K, H, dtype=ea.dtype)
        keep = n_sess > 0
        if keep.any():
            pk = nn.utils.rnn.pack_padded_sequence(I[keep], n_sess[keep], batch_first=True, enforce_sorted=False)
            o, _ = self.lstm(pk)
            o, _ = nn.utils.rnn.pad_packed_sequence(o, batch_first=True, total_length=K)
            Hs = Hs.index_add(0, keep.nonzero().squeeze(1), o[..., :H] + o[..., H:])
        return torch.cat([self.unit(I, ea @ self.att_i.T, n_sess), self.unit(Hs, ea @ self.att_h.T, n_sess)], -1)

    def forward(self, bt, train):
        ea = self.embed(bt["target_item"], bt["target_cat"])
        if self.branch == "dien":
            bout, branch_aux = self.dien_branch(bt, ea, train)
        else:
            bout, branch_aux = self.dsin_branch(bt, ea), torch.zeros((), dtype=ea.dtype)
        el = self.embed(bt["long_item"], bt["long_cat"])
        b, k, _ = el.shape
        lens = bt["long_len"]
        lmask = torch.arange(k)[None, :] < lens[:, None]
        aux = torch.zeros((), dtype=ea.dtype)
        if self.soft:
            r = ((el @ self.gsu_wb.T) * (ea @ self.gsu_wa.T)[:, None, :]).sum(-1)
            if train:
                ur = ((r * lmask)[:, :, None] * el).sum(1)
                aux = F.binary_cross_entropy_with_logits(self.aux(torch.cat([ur, ea], -1)), bt["label"])
            keep = [torch.sort(torch.arange(int(lens[i])) if int(lens[i]) <= self.topk else
                               torch.topk(r[i, :int(lens[i])].detach(), self.topk).indices).values for i in range(b)]
        else:
            keep = [torch.arange(max(0, int(lens[i]) - self.topk), int(lens[i])) for i in range(b)]
        ksel = max(1, max(len(x) for x in keep))
        sel_len = torch.tensor([len(x) for x in keep])
        pos = torch.zeros(b, ksel, dtype=torch.long)
        for i, x in enumerate(keep):
            pos[i, :len(x)] = x
        el_sel = torch.stack([el[i, pos[i]] for i in range(b)])
        ts_sel = torch.stack([bt["long_ts"][i, pos[i]] for i in range(b)])
        deltas = bt["now"][:, None] - ts_sel
        buckets = torch.tensor([[bucket(deltas[i, j]) if j < sel_len[i] else 0 for j in range(ksel)] for i in range(b)])
        u = esu(ea, el_sel, sel_len, buckets, self.esu_wa, self.esu_wb, self.time_emb, self.heads, self.d_head)
        logit = self.head(torch.cat([ea, bout, u], -1))
        return logit, (aux if self.soft else torch.zeros((), dtype=ea.dtype)) + branch_aux, keep

    def named_for_c(self):
        p = {"emb.item": self.emb_item.weight, "emb.cat": self.emb_cat.weight}
        if self.branch == "dien":
            p.update({"dien.gru.w": self.gru_w, "dien.gru.u": self.gru_u, "dien.gru.b": self.gru_b,
                      "dien.att.w": self.att_w, "dien.augru.w": self.aug_w, "dien.augru.u": self.aug_u,
                      "dien.augru.b": self.aug_b})
        else:
            p.update({"dsin.bias.k": self.be_k, "dsin.bias.t": self.be_t, "dsin.bias.c": self.be_c})
            for k, v in self.enc.named_parameters():
                p["dsin.encoder." + k] = v
            L = self.lstm
            p["dsin.lstm.w_ih"] = (L.weight_ih_l0, L.weight_ih_l0_reverse)
            p["dsin.lstm.w_hh"] = (L.weight_hh_l0, L.weight_hh_l0_reverse)
            p["dsin.lstm.b_ih"] = (L.bias_ih_l0, L.bias_ih_l0_reverse)
            p["dsin.lstm.b_hh"] = (L.bias_hh_l0, L.bias_hh_l0_reverse)
            p["dsin.att_i.w"], p["dsin.att_h.w"] = self.att_i, self.att_h
        p.update({"esu.wa": self.esu_wa, "esu.wb": self.esu_wb, "esu.time_emb": self.time_emb})
        buf = {}
        if self.soft:
            p["gsu.wa"], p["gsu.wb"] = self.gsu_wa, self.gsu_wb
            p.update(self.aux.named("gsu.mlp"))
            buf.update(self.aux.buffers_named("gsu.mlp"))
        p.update(self.head.named("mlp"))
        buf.update(self.head.buffers_named("mlp"))
        return p, buf


def value(v, grad=False):
    if isinstance(v, tuple):
        return torch.stack([(x.grad if grad else x).detach() for x in v]).float()
    return (v.grad if grad else v).detach().float()


def case(prefix, seed, soft, branch, out):
    torch.manual_seed(seed)
    n_items, n_cats, B, S, K, topk = 40, 6, 7, 8, 9, 4
    d_item, d_cat, mlp, heads, d_head, d_time, gsu_d = 4, 4, (12, 6), 2, 3, 3, 5
    dK, dT, dheads, ffn, H, min_len = 3, 4, 2, 16, 6, 1
    model = SIMB(n_items, n_cats, soft, branch, d_item, d_cat, mlp, heads, d_head, d_time, gsu_d, topk,
                 dK, dT, dheads, ffn, H, min_len)
    model.double()
    params, bufs = model.named_for_c()
    with torch.no_grad():
        for name, t in bufs.items():
            t.normal_(0, 0.1) if name.endswith("running_mean") else t.uniform_(0.5, 1.5)
    for k, v in params.items():
        out[prefix + k] = value(v)
    for k, v in bufs.items():
        out[prefix + "init." + k] = v.detach().float().clone()
    now = torch.randint(1_500_000_000, 1_510_000_000, (B,))
    gaps = (10 ** (torch.rand(B, K) * 7)).long() + 1
    hgaps = torch.tensor([[60, 4000, 0, 120, 1800, 1801, 30, 9000]] * B)  # sessions: > 30 min starts one
    hts = now[:, None] - 100000 + torch.cumsum(hgaps, 1)
    bt = {
        "target_item": torch.randint(0, n_items + 3, (B,)), "target_cat": torch.randint(0, n_cats + 2, (B,)),
        "hist_item": torch.randint(0, n_items + 3, (B, S)), "hist_cat": torch.randint(0, n_cats + 2, (B, S)),
        "hist_neg_item": torch.randint(0, n_items + 3, (B, S)), "hist_neg_cat": torch.randint(0, n_cats + 2, (B, S)),
        "hist_len": torch.tensor([0, 1, S, 3, 2, S, 6]), "hist_ts": hts,
        "long_item": torch.randint(0, n_items + 3, (B, K)), "long_cat": torch.randint(0, n_cats + 2, (B, K)),
        "long_len": torch.tensor([K, 0, 2, K, 1, topk, 7]),
        "long_ts": now[:, None] - torch.flip(torch.cumsum(torch.flip(gaps, [1]), 1), [1]),
        "label": torch.tensor([1, 0, 1, 1, 0, 0, 1], dtype=torch.float64), "now": now,
    }
    for k, v in bt.items():
        if k in ("now", "long_ts", "hist_ts"):
            out[prefix + k] = v
        elif v.dtype == torch.int64:
            out[prefix + k] = v.to(torch.int32)
        else:
            out[prefix + k] = v.float()
    model.train()
    logit, aux, keep = model(bt, True)
    loss = F.binary_cross_entropy_with_logits(logit, bt["label"]) + aux
    loss.backward()
    out[prefix + "logits"] = logit.detach().float()
    out[prefix + "loss"] = loss.detach().float().reshape(())
    for k, v in params.items():
        out[prefix + "grad." + k] = value(v, grad=True)
    for k, v in bufs.items():
        out[prefix + "after." + k] = v.detach().float()
    kept = torch.full((B, topk), -1, dtype=torch.int32)
    for i, x in enumerate(keep):
        kept[i, :len(x)] = x.to(torch.int32)
    out[prefix + "kept"] = kept
    model.eval()
    with torch.no_grad():
        out[prefix + "logits_eval"] = model(bt, False)[0].float()
    out[prefix + "dims"] = torch.tensor([d_item, d_cat, 8, 4, mlp[0], mlp[1], heads, d_head, d_time, gsu_d, topk,
                                         1 if branch == "dien" else 2, dK, dT, dheads, ffn, H, min_len],
                                        dtype=torch.int32)


def main():
    out = {}
    case("sd.", 21, True, "dien", out)
    case("ss.", 22, False, "dsin", out)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sim_branches.safetensors")
    safetensors_io.save(path, out, {"generator": "tests/golden/gen_sim_branches.py", "torch": torch.__version__})
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
