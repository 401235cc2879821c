/*
 * optim.c: see optim.h. The arithmetic follows PyTorch 1.13's single-tensor
 * implementations operation by operation, in float32 with the step's
 * scalars computed in double, so that the fixtures agree to rounding.
 */
#include "train/optim.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"adam", "adagrad"};

const char *optim_kind_name(optim_kind k)
{
    return kind_names[k];
}

int optim_kind_parse(const char *s, optim_kind *k)
{
    for (int i = 0; i < 2; i++)
        if (!strcmp(s, kind_names[i])) {
            *k = (optim_kind)i;
            return 0;
        }
    return LSIM_E_INVAL;
}

void optim_config_default(optim_config *c, optim_kind kind)
{
    c->kind = kind;
    c->lr = kind == OPTIM_ADAM ? 1e-3 : 1e-2;
    c->decay = 0.0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = kind == OPTIM_ADAM ? 1e-8 : 1e-10;
}

int optim_init(optim *o, const optim_config *c, const param_set *params)
{
    memset(o, 0, sizeof *o);
    o->cfg = *c;
    int rc = param_set_init(&o->v, params->specs, params->n);
    if (!rc && c->kind == OPTIM_ADAM) rc = param_set_init(&o->m, params->specs, params->n);
    if (rc) optim_free(o);
    return rc;
}

void optim_free(optim *o)
{
    param_set_free(&o->m);
    param_set_free(&o->v);
    memset(o, 0, sizeof *o);
}

static double optim_lr_double(const optim *o)
{
    return o->cfg.lr / (1.0 + o->cfg.decay * (double)o->step);
}

float optim_lr(const optim *o)
{
    return (float)optim_lr_double(o);
}

/* The scalars of one step. */
typedef struct step_k {
    int adam;
    float b1, b2, a1, a2, step_size, bc2_sqrt, eps, clr;
} step_k;

static step_k step_begin(optim *o)
{
    const double lr = optim_lr_double(o);
    o->step++;
    step_k k = {o->cfg.kind == OPTIM_ADAM, 0, 0, 0, 0, 0, 0, (float)o->cfg.eps, (float)lr};
    if (k.adam) {
        const double t = (double)o->step;
        k.b1 = (float)o->cfg.beta1, k.b2 = (float)o->cfg.beta2;
        k.a1 = (float)(1.0 - o->cfg.beta1), k.a2 = (float)(1.0 - o->cfg.beta2);
        k.step_size = (float)(lr / (1.0 - pow(o->cfg.beta1, t)));
        k.bc2_sqrt = (float)sqrt(1.0 - pow(o->cfg.beta2, t));
    }
    return k;
}

/* The update of elements [i0, i1) of the blocks. */
static void update_range(const step_k *k, float *p, float *m, float *v, const float *g, size_t i0, size_t i1)
{
    if (k->adam) {
        for (size_t i = i0; i < i1; i++) {
            m[i] = m[i] * k->b1 + k->a1 * g[i];
            v[i] = v[i] * k->b2 + k->a2 * g[i] * g[i];
            const float denom = sqrtf(v[i]) / k->bc2_sqrt + k->eps;
            p[i] = p[i] + -k->step_size * (m[i] / denom);
        }
    } else {
        for (size_t i = i0; i < i1; i++) {
            v[i] = v[i] + g[i] * g[i];
            const float sd = sqrtf(v[i]) + k->eps;
            p[i] = p[i] + -k->clr * (g[i] / sd);
        }
    }
}

void optim_step(optim *o, param_set *params, const param_set *grads)
{
    optim_step_sparse(o, params, grads, NULL, 0);
}

void optim_step_sparse(optim *o, param_set *params, const param_set *grads, const sparse_rows *rows, size_t nrows)
{
    step_k k = step_begin(o);
    float *p = params->block, *v = o->v.block, *m = o->m.block;
    const float *g = grads->block;
    for (size_t t = 0; t < params->n; t++) {
        size_t i0 = (size_t)(params->ptr[t] - params->block), n = params->numel[t];
        const sparse_rows *sr = NULL;
        for (size_t j = 0; j < nrows; j++)
            if (rows[j].tensor == t) sr = &rows[j];
        if (!sr) {
            update_range(&k, p, m, v, g, i0, i0 + n);
            continue;
        }
        size_t w = params->specs[t].shape[1];
        for (size_t j = 0; j < sr->n; j++) {
            size_t r0 = i0 + (size_t)sr->rows[j] * w;
            update_range(&k, p, m, v, g, r0, r0 + w);
        }
    }
}

/* Tensor names of the state: "optim.m.NAME", "optim.v.NAME". */
static int state_name(char *buf, size_t len, char which, const char *name)
{
    int k = snprintf(buf, len, "optim.%c.%s", which, name);
    return k < 0 || (size_t)k >= len ? LSIM_E_LIMIT : 0;
}

int optim_state_save(const optim *o, st_writer *w)
{
    char name[PARAM_NAME_MAX + 16], val[32];
    int rc = st_writer_meta(w, "lsim.optim", optim_kind_name(o->cfg.kind));
    snprintf(val, sizeof val, "%llu", (unsigned long long)o->step);
    if (!rc) rc = st_writer_meta(w, "lsim.optim_step", val);
    const param_set *sets[2] = {&o->m, &o->v};
    const char which[2] = {'m', 'v'};
    for (int s = 0; s < 2 && !rc; s++)
        for (size_t i = 0; i < sets[s]->n && !rc; i++) {
            uint64_t shape[PARAM_MAX_DIMS];
            for (size_t d = 0; d < sets[s]->specs[i].ndim; d++) shape[d] = sets[s]->specs[i].shape[d];
            rc = state_name(name, sizeof name, which[s], sets[s]->specs[i].name);
            if (!rc) rc = st_writer_add(w, name, ST_F32, sets[s]->specs[i].ndim, shape, sets[s]->ptr[i]);
        }
    return rc;
}

int optim_state_load(optim *o, const st_file *f, const char *path, char *err, size_t errlen)
{
    const char *kind = st_meta(f, "lsim.optim");
    if (!kind || !st_meta(f, "lsim.optim_step"))
        return err_set(err, errlen, LSIM_E_FORMAT, "%s: no optimizer state (metadata lsim.optim, lsim.optim_step): "
                                                   "a checkpoint written without it cannot resume training", path);
    optim_kind k;
    if (optim_kind_parse(kind, &k) || k != o->cfg.kind)
        return err_set(err, errlen, LSIM_E_FORMAT,
                       "%s: metadata lsim.optim: the state is for '%.20s', resuming with %s",
                       path, kind, optim_kind_name(o->cfg.kind));
    int64_t st;
    int rc = st_meta_i64(f, path, "lsim.optim_step", 0, INT64_MAX, &st, err, errlen);
    if (rc < 0) return rc;
    param_set *sets[2] = {&o->m, &o->v};
    const char which[2] = {'m', 'v'};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sets[s]->n; i++) {
            char name[PARAM_NAME_MAX + 16];
            uint64_t shape[PARAM_MAX_DIMS];
            for (size_t d = 0; d < sets[s]->specs[i].ndim; d++) shape[d] = sets[s]->specs[i].shape[d];
            const void *data;
            rc = state_name(name, sizeof name, which[s], sets[s]->specs[i].name);
            if (!rc) rc = st_get(f, name, ST_F32, sets[s]->specs[i].ndim, shape, &data, err, errlen);
            if (rc) return rc;
            memcpy(sets[s]->ptr[i], data, sets[s]->numel[i] * sizeof(float));
        }
    o->step = (uint64_t)st;
    return 0;
}
