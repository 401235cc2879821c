/*
 * params.c: see params.h.
 */
#include "models/params.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int param_list_add(param_list *l, const char *name, size_t ndim, const size_t *shape)
{
    if (ndim > PARAM_MAX_DIMS || strlen(name) >= PARAM_NAME_MAX) return LSIM_E_INVAL;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        param_spec *s = realloc(l->specs, nc * sizeof *s);
        if (!s) return LSIM_E_NOMEM;
        l->specs = s;
        l->cap = nc;
    }
    param_spec *p = &l->specs[l->n++];
    memset(p, 0, sizeof *p);
    memcpy(p->name, name, strlen(name) + 1);
    p->ndim = ndim;
    for (size_t i = 0; i < ndim; i++) p->shape[i] = shape[i];
    return 0;
}

void param_list_free(param_list *l)
{
    free(l->specs);
    memset(l, 0, sizeof *l);
}

static size_t spec_numel(const param_spec *s)
{
    size_t n = 1;
    for (size_t i = 0; i < s->ndim; i++) n *= s->shape[i];
    return n;
}

/* The set's tables (specs, ptr, numel) for n tensors, numel filled; no block. */
static int alloc_tables(param_set *ps, const param_spec *specs, size_t n)
{
    memset(ps, 0, sizeof *ps);
    ps->specs = malloc((n ? n : 1) * sizeof *ps->specs);
    ps->ptr = malloc((n ? n : 1) * sizeof *ps->ptr);
    ps->numel = malloc((n ? n : 1) * sizeof *ps->numel);
    if (!ps->specs || !ps->ptr || !ps->numel) {
        param_set_free(ps);
        return LSIM_E_NOMEM;
    }
    memcpy(ps->specs, specs, n * sizeof *specs);
    ps->n = n;
    for (size_t i = 0; i < n; i++) ps->numel[i] = spec_numel(&specs[i]);
    return 0;
}

int param_set_init(param_set *ps, const param_spec *specs, size_t n)
{
    int rc = alloc_tables(ps, specs, n);
    if (rc) return rc;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += (ps->numel[i] + 15) & ~(size_t)15; /* each tensor 64-byte aligned */
    }
    ps->total = total;
    ps->block = aligned_alloc(64, (total ? total : 16) * sizeof(float));
    if (!ps->block) {
        param_set_free(ps);
        return LSIM_E_NOMEM;
    }
    memset(ps->block, 0, (total ? total : 16) * sizeof(float));
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        ps->ptr[i] = ps->block + off;
        off += (ps->numel[i] + 15) & ~(size_t)15;
    }
    return 0;
}

int param_set_view(param_set *ps, const param_spec *specs, size_t n, const param_set *src)
{
    memset(ps, 0, sizeof *ps);
    if (src && src->n != n) return LSIM_E_INVAL;
    for (size_t i = 0; src && i < n; i++)
        if (strcmp(src->specs[i].name, specs[i].name) || src->numel[i] != spec_numel(&specs[i])) return LSIM_E_INVAL;
    int rc = alloc_tables(ps, specs, n);
    for (size_t i = 0; !rc && i < n; i++) ps->ptr[i] = src ? src->ptr[i] : NULL;
    return rc;
}

void param_set_free(param_set *ps)
{
    free(ps->specs);
    free(ps->ptr);
    free(ps->numel);
    free(ps->block);
    memset(ps, 0, sizeof *ps);
}

void param_set_zero(param_set *ps)
{
    memset(ps->block, 0, ps->total * sizeof(float));
}

float *param_find(const param_set *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->specs[i].name, name) == 0) return ps->ptr[i];
    return NULL;
}

int param_set_load(param_set *ps, const st_file *f, int allow_extra, char *err, size_t errlen)
{
    for (size_t i = 0; i < ps->n; i++) {
        uint64_t shape[PARAM_MAX_DIMS];
        for (size_t d = 0; d < ps->specs[i].ndim; d++) shape[d] = ps->specs[i].shape[d];
        const void *data;
        int rc = st_get(f, ps->specs[i].name, ST_F32, ps->specs[i].ndim, shape, &data, err, errlen);
        if (rc) return rc;
        memcpy(ps->ptr[i], data, ps->numel[i] * sizeof(float));
    }
    if (!allow_extra)
        for (size_t t = 0; t < st_count(f); t++) {
            const st_tensor *x = st_at(f, t);
            if (!param_find(ps, x->name))
                return err_set(err, errlen, LSIM_E_FORMAT, "tensor %s is not a parameter of this model", x->name);
        }
    return 0;
}

int param_set_save(const param_set *ps, st_writer *w)
{
    for (size_t i = 0; i < ps->n; i++) {
        uint64_t shape[PARAM_MAX_DIMS];
        for (size_t d = 0; d < ps->specs[i].ndim; d++) shape[d] = ps->specs[i].shape[d];
        int rc = st_writer_add(w, ps->specs[i].name, ST_F32, ps->specs[i].ndim, shape, ps->ptr[i]);
        if (rc) return rc;
    }
    return 0;
}

/* splitmix64 -> uniform in [-1, 1) */
static float uniform_pm1(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

void param_set_randomize(param_set *ps, uint64_t seed)
{
    if (!ps->block) return; /* a view (param_set_view): its tensors are another's */
    for (size_t i = 0; i < ps->n; i++) {
        const param_spec *s = &ps->specs[i];
        float *t = ps->ptr[i];
        size_t n = ps->numel[i];
        float bound;
        if (strstr(s->name, "emb"))
            bound = 0.01f * 1.7320508f; /* uniform with std 0.01 */
        else if (strstr(s->name, ".alpha")) {
            for (size_t j = 0; j < n; j++) t[j] = 0.25f;
            continue;
        } else {
            size_t fan_in = s->ndim == 2 ? s->shape[1]
                            : (i > 0 && ps->specs[i - 1].ndim == 2 ? ps->specs[i - 1].shape[1] : 1);
            bound = 1.0f / sqrtf((float)fan_in);
        }
        for (size_t j = 0; j < n; j++) t[j] = bound * uniform_pm1(&seed);
    }
}
