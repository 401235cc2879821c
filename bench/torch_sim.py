"""torch_sim.py: gen_sim.SIM's forward (tests/golden) written batched, for the bench/
scripts that time it against lsim (bench_models.py at inference, bench_train.py in
training).

The golden forward loops in Python over the samples for the soft GSU's top-K and the
ESU's time buckets; this is the same computation with tensor operations:
  - the DIN branch (paper form, masked sum);
  - the long-term list: soft search keeps the top K of r = (W_b e_i) . (W_a e_a) over
    the valid behaviors, in time order; hard search keeps the newest K of its list
    (all of it when it is shorter);
  - the time buckets floor(log2(minutes + 1)), capped, as gen_esu.bucket;
  - with aux (training, soft search), Loss_GSU of the auxiliary head;
  - with the recency input, its embedding of the bucket of now - the newest short-term time.
The caller puts tests/golden on sys.path before importing this module.
"""
import torch
import torch.nn.functional as F

import gen_esu


def time_buckets(delta):
    """gen_esu.bucket on a tensor of seconds: floor(log2(minutes + 1)), capped."""
    minutes = delta.clamp(min=0) // 60 + 1
    buckets = torch.zeros_like(minutes)
    for j in range(1, gen_esu.N_BUCKETS):
        buckets += minutes >= (1 << j)
    return buckets


def sim_batched(m, bt, aux=False):
    """Returns (logit (B), Loss_GSU or a zero tensor)."""
    ea = m.embed(bt["target_item"], bt["target_cat"])
    es = m.embed(bt["hist_item"], bt["hist_cat"])
    b, s, e = es.shape
    hmask = torch.arange(s)[None, :] < bt["hist_len"][:, None]
    eax = ea[:, None, :].expand(b, s, e)
    sc = m.att3(torch.sigmoid(m.att2(torch.sigmoid(m.att1(torch.cat([es, eax, es - eax, es * eax], -1))))))
    v = ((sc.squeeze(-1) * hmask)[:, :, None] * es).sum(1)
    el = m.embed(bt["long_item"], bt["long_cat"])
    k, lens = el.shape[1], bt["long_len"]
    ksel = min(m.topk, k)
    lmask = torch.arange(k)[None, :] < lens[:, None]
    aux_loss = torch.zeros(())
    if m.soft:
        r = ((el @ m.gsu_wb.T) * (ea @ m.gsu_wa.T)[:, None, :]).sum(-1)
        if aux:
            if getattr(m, "gsu_softmax", False):
                w = torch.softmax(r.masked_fill(~lmask, float("-inf")), -1).nan_to_num(0.0)
            else:
                w = r * lmask
            ur = (w[:, :, None] * el).sum(1)
            aux_loss = F.binary_cross_entropy_with_logits(m.aux(torch.cat([ur, ea], -1)), bt["label"])
        idx = torch.topk(r.detach().masked_fill(~lmask, float("-inf")), ksel, dim=1).indices.sort(1).values
    else:
        idx = (lens - ksel).clamp(min=0)[:, None] + torch.arange(ksel)[None, :]
    sel_len = lens.clamp(max=ksel)
    el_sel = torch.gather(el, 1, idx[:, :, None].expand(b, ksel, e))
    ts_sel = torch.gather(bt["long_ts"], 1, idx)
    buckets = time_buckets(bt["now"][:, None] - ts_sel)
    u = gen_esu.esu(ea, el_sel, sel_len, buckets, m.esu_wa, m.esu_wb, m.time_emb, m.heads, m.d_head)
    parts = [ea, v, ea * v, u]
    if m.recency is not None:
        hl = bt["hist_len"]
        newest = torch.gather(bt["hist_ts"], 1, (hl - 1).clamp(min=0)[:, None]).squeeze(1)
        parts.append(m.recency[time_buckets(bt["now"] - newest)] * (hl > 0)[:, None])
    return m.head(torch.cat(parts, -1)), aux_loss
