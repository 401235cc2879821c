/*
 * model.c: see model.h. A tagged union over the model kinds; the
 * checkpoint's metadata is the spec written as decimal strings.
 */
#include "esu/model.h"

#include "models/model_state.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct model {
    model_spec spec;
    int forward_only; /* model_new_sharing's: no gradients, no training buffers */
    din *din;
    dien *dien;
    dsin *dsin;
    sim *sim;
    bst *bst;
    mimn *mimn;
};

static const char *const branch_names[] = {"din", "dien", "dsin"};
static const char *const kind_names[] = {"din", "avgpool-din", "dien", "dsin", "sim-hard", "sim-soft", "bst",
                                          "mimn"};

const char *model_kind_name(model_kind k)
{
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "?";
}

int model_kind_parse(const char *s, model_kind *k)
{
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *k = (model_kind)i;
            return 0;
        }
    return LSIM_E_INVAL;
}

void model_spec_default(model_spec *s, model_kind kind, uint32_t n_items, uint32_t n_cats)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    sim_config sc;
    sim_config_default(&sc, n_items, n_cats, kind == MODEL_SIM_SOFT ? SIM_GSU_SOFT : SIM_GSU_HARD, 1);
    s->base = sc.base;
    s->base.long_avgpool = kind == MODEL_AVGPOOL_DIN;
    s->topk = sc.topk;
    s->heads = sc.heads;
    s->d_head = sc.d_head;
    s->d_time = sc.d_time;
    s->gsu_d = sc.gsu_d;
    s->alpha = sc.alpha;
    s->alpha_aux = 1.0f;
    s->recency = kind == MODEL_SIM_HARD || kind == MODEL_SIM_SOFT;
    s->gsu_softmax = kind == MODEL_SIM_SOFT;
    s->recency_cat = s->recency;
    s->short_branch = SIM_BRANCH_DIN;
    dsin_config dc;
    dsin_config_default(&dc, n_items, n_cats);
    s->max_sessions = dc.max_sessions;
    s->session_len = dc.session_len;
    s->min_session_len = dc.min_session_len;
    s->session_gap = (uint32_t)dc.session_gap;
    s->branch_heads = dc.heads;
    if (kind == MODEL_DSIN) {
        s->base = dc.base;
        s->heads = dc.heads;
        s->max_sessions = dc.max_sessions;
        s->session_len = dc.session_len;
        s->min_session_len = dc.min_session_len;
        s->session_gap = (uint32_t)dc.session_gap;
        s->d_ffn = dc.d_ffn;
        s->d_lstm = dc.d_lstm;
    }
    if (kind == MODEL_BST) {
        bst_config bc;
        bst_config_default(&bc, n_items, n_cats);
        s->base = bc.base;
        s->seq_len = bc.seq_len;
        s->d_pos = bc.d_pos;
        s->time_buckets = bc.time_buckets;
        s->heads = bc.heads;
        s->d_ffn = bc.d_ffn;
    }
    mimn_config mc;
    mimn_config_default(&mc, n_items, n_cats);
    s->mem_slots = mc.mem_slots;
    s->d_ctrl = mc.d_ctrl;
    s->miu_k = mc.miu_k;
    s->bptt = mc.bptt;
    s->util_reg = mc.util_reg;
    if (kind == MODEL_MIMN) s->base = mc.base;
}

void model_spec_mimn(mimn_config *c, const model_spec *s)
{
    mimn_config_default(c, s->base.n_items, s->base.n_cats);
    c->base = s->base;
    c->mem_slots = s->mem_slots;
    c->d_ctrl = s->d_ctrl;
    c->miu_k = s->miu_k;
    c->bptt = s->bptt;
    c->util_reg = s->util_reg;
}

void model_spec_time_info(model_spec *s, int time_info, unsigned parts)
{
    int is_sim = s->kind == MODEL_SIM_HARD || s->kind == MODEL_SIM_SOFT;
    if (!time_info) s->d_time = 0, parts = 0;
    s->recency = is_sim && (parts & MODEL_RECENCY_LAST);
    s->recency_cat = s->recency && (parts & MODEL_RECENCY_CAT);
    s->gsu_recency = s->kind == MODEL_SIM_SOFT && (parts & MODEL_RECENCY_GSU);
}

static void to_sim(sim_config *c, const model_spec *s)
{
    sim_config_default(c, s->base.n_items, s->base.n_cats, s->kind == MODEL_SIM_SOFT ? SIM_GSU_SOFT : SIM_GSU_HARD,
                       s->d_time > 0);
    c->base = s->base;
    c->branch = s->short_branch;
    c->alpha_aux = s->alpha_aux;
    c->dsin.max_sessions = s->max_sessions;
    c->dsin.session_len = s->session_len;
    c->dsin.min_session_len = s->min_session_len;
    c->dsin.session_gap = s->session_gap;
    c->dsin.heads = s->branch_heads;
    c->dsin.d_ffn = s->d_ffn;
    c->dsin.d_lstm = s->d_lstm;
    c->gsu = s->kind == MODEL_SIM_SOFT ? SIM_GSU_SOFT : SIM_GSU_HARD;
    c->topk = s->topk;
    c->heads = s->heads;
    c->d_head = s->d_head;
    c->d_time = s->d_time;
    c->recency = s->recency;
    c->recency_cat = s->recency_cat;
    c->gsu_softmax = s->gsu_softmax;
    c->gsu_recency = s->gsu_recency;
    c->gsu_d = s->gsu_d;
    c->alpha = s->alpha;
}

int model_new(model **out, const model_spec *spec, size_t max_b, size_t max_s, size_t max_k)
{
    return model_new_ex(out, spec, max_b, max_s, max_k, 0);
}

int model_new_ex(model **out, const model_spec *spec, size_t max_b, size_t max_s, size_t max_k, unsigned flags)
{
    *out = NULL;
    model *m = calloc(1, sizeof *m);
    if (!m) return LSIM_E_NOMEM;
    m->spec = *spec;
    int rc;
    switch (spec->kind) {
    case MODEL_DIN:
    case MODEL_AVGPOOL_DIN: {
        din_config c = spec->base;
        c.long_avgpool = spec->kind == MODEL_AVGPOOL_DIN;
        m->spec.base.long_avgpool = c.long_avgpool;
        rc = din_new_ex(&m->din, &c, max_b, max_s, max_k, (flags & MODEL_LONG_SHARED) ? max_k : 0);
        break;
    }
    case MODEL_DIEN: {
        dien_config c = {spec->base, spec->alpha_aux};
        rc = dien_new(&m->dien, &c, max_b, max_s);
        break;
    }
    case MODEL_DSIN: {
        /* record resolved widths, so a checkpoint never depends on what 0 means */
        size_t e = (size_t)spec->base.d_item + spec->base.d_cat;
        if (!m->spec.d_ffn) m->spec.d_ffn = (uint32_t)(4 * e);
        if (!m->spec.d_lstm) m->spec.d_lstm = (uint32_t)e;
        spec = &m->spec;
        dsin_config c = {.base = spec->base, .max_sessions = spec->max_sessions, .session_len = spec->session_len,
                         .min_session_len = spec->min_session_len, .session_gap = spec->session_gap,
                         .heads = spec->heads, .d_ffn = spec->d_ffn, .d_lstm = spec->d_lstm};
        rc = dsin_new(&m->dsin, &c, max_b, max_s);
        break;
    }
    case MODEL_BST: {
        /* the resolved FFN width, so a checkpoint never depends on what 0 means */
        size_t c = (size_t)spec->base.d_item + spec->base.d_cat + spec->d_pos;
        if (!m->spec.d_ffn) m->spec.d_ffn = (uint32_t)(4 * c);
        spec = &m->spec;
        bst_config bc = {.base = spec->base, .seq_len = spec->seq_len, .d_pos = spec->d_pos,
                         .time_buckets = spec->time_buckets, .heads = spec->heads, .d_ffn = spec->d_ffn};
        (void)max_s; /* BST reads the last seq_len behaviors of any S */
        rc = bst_new(&m->bst, &bc, max_b);
        break;
    }
    case MODEL_MIMN: {
        mimn_config mc;
        model_spec_mimn(&mc, spec);
        (void)max_s, (void)max_k; /* MIMN folds each sample's whole history (model_batch.all_*) */
        rc = mimn_new(&m->mimn, &mc, max_b);
        break;
    }
    case MODEL_SIM_HARD:
    case MODEL_SIM_SOFT: {
        if (spec->short_branch == SIM_BRANCH_DSIN) { /* resolved widths, as for DSIN */
            size_t e = (size_t)spec->base.d_item + spec->base.d_cat;
            if (!m->spec.d_ffn) m->spec.d_ffn = (uint32_t)(4 * e);
            if (!m->spec.d_lstm) m->spec.d_lstm = (uint32_t)e;
            spec = &m->spec;
        }
        sim_config c;
        to_sim(&c, spec);
        rc = sim_new(&m->sim, &c, max_b, max_s, max_k);
        break;
    }
    default: rc = LSIM_E_INVAL;
    }
    if (rc) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int model_new_sharing(model **out, const model *src, size_t max_b, size_t max_s, size_t max_k, unsigned flags)
{
    model *s = (model *)src;
    model_state_share_next(model_params(s));
    int rc = model_new_ex(out, &src->spec, max_b, max_s, max_k, flags);
    model_state_share_next(NULL);
    if (rc) return rc;
    (*out)->forward_only = 1;
    param_set *b = model_buffers(*out), *sb = model_buffers(s);
    if (b->total != sb->total) {
        model_free(*out);
        *out = NULL;
        return LSIM_E_INVAL;
    }
    if (b->total) memcpy(b->block, sb->block, b->total * sizeof(float));
    return 0;
}

void model_free(model *m)
{
    if (!m) return;
    din_free(m->din);
    dien_free(m->dien);
    dsin_free(m->dsin);
    sim_free(m->sim);
    bst_free(m->bst);
    mimn_free(m->mimn);
    free(m);
}

const model_spec *model_get_spec(const model *m) { return &m->spec; }
int model_forward_only(const model *m) { return m->forward_only; }
const sim *model_sim(const model *m) { return m->sim; }
const mimn *model_mimn(const model *m) { return m->mimn; }

param_set *model_params(model *m)
{
    return m->din    ? din_params(m->din)
           : m->dien ? dien_params(m->dien)
           : m->dsin ? dsin_params(m->dsin)
           : m->bst  ? bst_params(m->bst)
           : m->mimn ? mimn_params(m->mimn)
                     : sim_params(m->sim);
}

param_set *model_grads(model *m)
{
    return m->din    ? din_grads(m->din)
           : m->dien ? dien_grads(m->dien)
           : m->dsin ? dsin_grads(m->dsin)
           : m->bst  ? bst_grads(m->bst)
           : m->mimn ? mimn_grads(m->mimn)
                     : sim_grads(m->sim);
}

param_set *model_buffers(model *m)
{
    return m->din    ? din_buffers(m->din)
           : m->dien ? dien_buffers(m->dien)
           : m->dsin ? dsin_buffers(m->dsin)
           : m->bst  ? bst_buffers(m->bst)
           : m->mimn ? mimn_buffers(m->mimn)
                     : sim_buffers(m->sim);
}

void model_memory_get(const model *m, model_memory *out)
{
    model *x = (model *)m; /* the set getters take a mutable model; nothing is written */
    out->workspace = m->din ? din_workspace_bytes(m->din) : m->dien ? dien_workspace_bytes(m->dien)
                   : m->dsin ? dsin_workspace_bytes(m->dsin) : m->bst ? bst_workspace_bytes(m->bst)
                   : m->mimn ? mimn_workspace_bytes(m->mimn) : sim_workspace_bytes(m->sim);
    out->grads = model_grads(x)->total * sizeof(float); /* a view's total is 0 */
    out->buffers = model_buffers(x)->total * sizeof(float);
}

void model_init(model *m, uint64_t seed)
{
    if (m->din) din_init(m->din, seed);
    else if (m->dien) dien_init(m->dien, seed);
    else if (m->dsin) dsin_init(m->dsin, seed);
    else if (m->bst) bst_init(m->bst, seed);
    else if (m->mimn) mimn_init(m->mimn, seed);
    else sim_init(m->sim, seed);
}

float model_forward(model *m, const model_batch *b, float *logits, int train)
{
    if (m->din) return din_forward(m->din, b, logits, train);
    if (m->dien) return dien_forward(m->dien, b, logits, train);
    if (m->dsin) return dsin_forward(m->dsin, b, logits, train);
    if (m->bst) return bst_forward(m->bst, b, logits, train);
    if (m->mimn) return mimn_forward(m->mimn, b, logits, train);
    return sim_forward(m->sim, b, logits, train);
}

int model_backward(model *m, const model_batch *b)
{
    if (m->forward_only) return LSIM_E_INVAL;
    if (m->din) din_backward(m->din, b);
    else if (m->dien) dien_backward(m->dien, b);
    else if (m->dsin) dsin_backward(m->dsin, b);
    else if (m->bst) bst_backward(m->bst, b);
    else if (m->mimn) mimn_backward(m->mimn, b);
    else sim_backward(m->sim, b);
    return 0;
}

/* ---- metadata ---- */

typedef struct meta_field {
    const char *key;
    size_t offset;  /* into model_spec */
    int is_float;
    double lo, hi;  /* valid range */
    int kinds;      /* bit set of model kinds that have it */
    int optional;   /* bit set of kinds for which it may be missing (the default stays) */
} meta_field;

#define ALL 0xff
#define SIMS ((1 << MODEL_SIM_HARD) | (1 << MODEL_SIM_SOFT))
#define DSIN (1 << MODEL_DSIN)
#define BST (1 << MODEL_BST)
#define MIMN (1 << MODEL_MIMN)
#define NO_ATT ((1 << MODEL_DIEN) | DSIN | BST | MIMN)
#define U(field) offsetof(model_spec, field)
static const meta_field fields[] = {
    {"lsim.n_items", U(base.n_items), 0, 0, 4294967294.0, ALL, 0},
    {"lsim.n_cats", U(base.n_cats), 0, 0, 4294967294.0, ALL, 0},
    {"lsim.d_item", U(base.d_item), 0, 1, 4096, ALL, 0},
    {"lsim.d_cat", U(base.d_cat), 0, 1, 4096, ALL, 0},
    {"lsim.att_h1", U(base.att_h1), 0, 1, 65536, ALL & ~NO_ATT, 0},
    {"lsim.att_h2", U(base.att_h2), 0, 1, 65536, ALL & ~NO_ATT, 0},
    {"lsim.mlp_h1", U(base.mlp_h1), 0, 1, 65536, ALL, 0},
    {"lsim.mlp_h2", U(base.mlp_h2), 0, 1, 65536, ALL, 0},
    {"lsim.att_softmax", U(base.att_softmax), 0, 0, 1, ALL & ~NO_ATT, 0},
    {"lsim.dice_momentum", U(base.dice_momentum), 1, 0, 1, ALL, 0},
    {"lsim.topk", U(topk), 0, 1, 1000000, SIMS, 0},
    {"lsim.heads", U(heads), 0, 1, 1024, SIMS | DSIN | BST, 0},
    {"lsim.d_head", U(d_head), 0, 1, 4096, SIMS, 0},
    {"lsim.d_time", U(d_time), 0, 0, 4096, SIMS, 0},
    {"lsim.gsu_d", U(gsu_d), 0, 0, 4096, SIMS, 0},
    {"lsim.alpha", U(alpha), 1, 0, 1e6, SIMS, 0},
    {"lsim.alpha_aux", U(alpha_aux), 1, 0, 1e6, (1 << MODEL_DIEN) | SIMS, SIMS},
    {"lsim.max_sessions", U(max_sessions), 0, 1, 1024, DSIN | SIMS, SIMS},
    {"lsim.session_len", U(session_len), 0, 1, 65536, DSIN | SIMS, SIMS},
    {"lsim.min_session_len", U(min_session_len), 0, 0, 65536, DSIN | SIMS, SIMS},
    {"lsim.session_gap", U(session_gap), 0, 0, 4294967295.0, DSIN | SIMS, SIMS},
    {"lsim.d_ffn", U(d_ffn), 0, 0, 65536, DSIN | SIMS | BST, SIMS},
    {"lsim.d_lstm", U(d_lstm), 0, 0, 65536, DSIN | SIMS, SIMS},
    {"lsim.branch_heads", U(branch_heads), 0, 1, 1024, SIMS, SIMS},
    {"lsim.recency", U(recency), 0, 0, 1, SIMS, SIMS},
    {"lsim.gsu_softmax", U(gsu_softmax), 0, 0, 1, SIMS, SIMS},
    {"lsim.recency_cat", U(recency_cat), 0, 0, 1, SIMS, SIMS},
    {"lsim.gsu_recency", U(gsu_recency), 0, 0, 1, 1 << MODEL_SIM_SOFT, 1 << MODEL_SIM_SOFT},
    {"lsim.seq_len", U(seq_len), 0, 1, 65536, BST, 0},
    {"lsim.d_pos", U(d_pos), 0, 1, 4096, BST, 0},
    {"lsim.time_buckets", U(time_buckets), 0, 1, 64, BST, 0},
    {"lsim.mem_slots", U(mem_slots), 0, 1, 64, MIMN, 0},
    {"lsim.d_ctrl", U(d_ctrl), 0, 1, 65536, MIMN, 0},
    {"lsim.miu_k", U(miu_k), 0, 1, 64, MIMN, 0},
    {"lsim.bptt", U(bptt), 0, 1, 100000, MIMN, 0},
    {"lsim.util_reg", U(util_reg), 1, 0, 1e6, MIMN, 0},
};
#undef U

int model_save(model *m, const char *path, const char *const *extra, char *err, size_t errlen)
{
    return model_save_ex(m, path, extra, NULL, NULL, err, errlen);
}

int model_save_ex(model *m, const char *path, const char *const *extra, int (*add)(st_writer *w, void *ud), void *ud,
                  char *err, size_t errlen)
{
    st_writer *w;
    if (st_writer_new(&w)) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    int rc = st_writer_meta(w, "lsim.format", "1");
    if (!rc) rc = st_writer_meta(w, "lsim.model", model_kind_name(m->spec.kind));
    for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !rc; i++) {
        if (!(fields[i].kinds & (1 << m->spec.kind))) continue;
        char v[64];
        const char *p = (const char *)&m->spec + fields[i].offset;
        if (fields[i].is_float) snprintf(v, sizeof v, "%.9g", (double)*(const float *)p);
        else if (fields[i].offset == offsetof(model_spec, base.att_softmax)) snprintf(v, sizeof v, "%d", *(const int *)p);
        else snprintf(v, sizeof v, "%u", *(const uint32_t *)p);
        rc = st_writer_meta(w, fields[i].key, v);
    }
    if (!rc && (m->spec.kind == MODEL_SIM_HARD || m->spec.kind == MODEL_SIM_SOFT))
        rc = st_writer_meta(w, "lsim.short_branch", branch_names[m->spec.short_branch]);
    for (size_t i = 0; extra && extra[i] && extra[i + 1] && !rc; i += 2) rc = st_writer_meta(w, extra[i], extra[i + 1]);
    if (!rc) rc = param_set_save(model_params(m), w);
    if (!rc) rc = param_set_save(model_buffers(m), w);
    if (!rc && add) rc = add(w, ud);
    if (rc) {
        st_writer_free(w);
        return err_set(err, errlen, rc, "%s: cannot assemble the checkpoint: %s", path, lsim_strerror(rc));
    }
    rc = st_writer_write(w, path, err, errlen);
    st_writer_free(w);
    return rc;
}

static int parse_number(const char *s, int is_float, double lo, double hi, double *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = is_float ? strtod(s, &end) : (double)strtoull(s, &end, 10);
    if (*end || errno || !isfinite(v) || v < lo || v > hi) return -1;
    if (!is_float && (s[0] == '-' || s[0] == '+')) return -1;
    *out = v;
    return 0;
}

int model_spec_from_file(model_spec *s, const st_file *f, const char *path, char *err, size_t errlen)
{
    const char *fmt = st_meta(f, "lsim.format"), *kind = st_meta(f, "lsim.model");
    if (!fmt || !kind)
        return err_set(err, errlen, LSIM_E_FORMAT, "%s: not an lsim checkpoint (no lsim.format / lsim.model metadata)",
                       path);
    if (strcmp(fmt, "1") != 0)
        return err_set(err, errlen, LSIM_E_VERSION, "%s: checkpoint format %s, this lsim reads format 1", path, fmt);
    model_kind k;
    if (model_kind_parse(kind, &k))
        return err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata lsim.model: unknown model '%s'", path, kind);
    model_spec_default(s, k, 0, 0);
    s->recency = 0; /* absent (checkpoints before them, PyTorch's): none, the paper's sum */
    s->gsu_softmax = 0;
    s->gsu_recency = 0;
    s->recency_cat = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!(fields[i].kinds & (1 << k))) continue;
        const char *v = st_meta(f, fields[i].key);
        double x;
        if (!v && (fields[i].optional & (1 << k))) continue;
        if (!v) return err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata %s is missing", path, fields[i].key);
        if (parse_number(v, fields[i].is_float, fields[i].lo, fields[i].hi, &x))
            return err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata %s: '%.40s' is not a number in [%g, %g]", path,
                           fields[i].key, v, fields[i].lo, fields[i].hi);
        char *p = (char *)s + fields[i].offset;
        if (fields[i].is_float) *(float *)p = (float)x;
        else if (fields[i].offset == offsetof(model_spec, base.att_softmax)) *(int *)p = (int)x;
        else *(uint32_t *)p = (uint32_t)x;
    }
    s->base.long_avgpool = k == MODEL_AVGPOOL_DIN;
    if (s->recency && !s->d_time)
        return err_set(err, errlen, LSIM_E_FORMAT,
                       "%s: metadata lsim.recency is 1 but lsim.d_time is 0 (it needs time info)", path);
    if (s->recency_cat && !s->recency)
        return err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata lsim.recency_cat is 1 but lsim.recency is 0", path);
    if (k == MODEL_SIM_SOFT && s->gsu_recency && !s->d_time)
        return err_set(err, errlen, LSIM_E_FORMAT,
                       "%s: metadata lsim.gsu_recency is 1 but lsim.d_time is 0 (it needs time info)", path);
    if (k == MODEL_MIMN && s->miu_k > s->mem_slots)
        return err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata lsim.miu_k is %u, more than lsim.mem_slots (%u)", path,
                       s->miu_k, s->mem_slots);
    if (k == MODEL_SIM_HARD || k == MODEL_SIM_SOFT) {
        const char *br = st_meta(f, "lsim.short_branch"); /* optional: DIN when absent */
        size_t i = 0;
        while (br && i < 3 && strcmp(br, branch_names[i]) != 0) i++;
        if (br && i == 3)
            return err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata lsim.short_branch: want din, dien or dsin, found '%.40s'",
                           path, br);
        s->short_branch = br ? (sim_branch_kind)i : SIM_BRANCH_DIN;
    }
    return 0;
}

static int load_set(param_set *ps, const st_file *f, const char *path, char *err, size_t errlen)
{
    for (size_t i = 0; i < ps->n; i++) {
        uint64_t shape[PARAM_MAX_DIMS];
        for (size_t d = 0; d < ps->specs[i].ndim; d++) shape[d] = ps->specs[i].shape[d];
        const void *data;
        char why[LSIM_ERRLEN];
        int rc = st_get(f, ps->specs[i].name, ST_F32, ps->specs[i].ndim, shape, &data, why, sizeof why);
        if (rc) return err_set(err, errlen, rc, "%s (the checkpoint does not fit its own metadata)", why);
        memcpy(ps->ptr[i], data, ps->numel[i] * sizeof(float));
    }
    (void)path;
    return 0;
}

int model_load(model **out, const char *path, size_t max_b, size_t max_s, size_t max_k, char *err, size_t errlen)
{
    return model_load_ex(out, path, max_b, max_s, max_k, 0, err, errlen);
}

int model_load_ex(model **out, const char *path, size_t max_b, size_t max_s, size_t max_k, unsigned flags, char *err,
                  size_t errlen)
{
    *out = NULL;
    st_file *f;
    int rc = st_open(&f, path, err, errlen);
    if (rc) return rc;
    model_spec spec;
    model *m = NULL;
    rc = model_spec_from_file(&spec, f, path, err, errlen);
    if (!rc && (rc = model_new_ex(&m, &spec, max_b, max_s, max_k, flags)))
        err_set(err, errlen, rc, "%s: cannot build a %s model of these sizes: %s", path, model_kind_name(spec.kind),
                lsim_strerror(rc));
    if (!rc) rc = load_set(model_params(m), f, path, err, errlen);
    if (!rc) rc = load_set(model_buffers(m), f, path, err, errlen);
    for (size_t i = 0; !rc && i < st_count(f); i++) {
        const char *name = st_at(f, i)->name;
        if (!param_find(model_params(m), name) && !param_find(model_buffers(m), name) &&
            strncmp(name, "optim.", 6) != 0) /* training state (train/optim.h): not the model's */
            rc = err_set(err, errlen, LSIM_E_FORMAT, "%s: tensor %s is not part of a %s model", path, name,
                         model_kind_name(spec.kind));
    }
    st_close(f);
    if (rc) {
        model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
