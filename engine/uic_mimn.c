/*
 * uic_mimn.c: see uic_mimn.h.
 */
#include "engine/uic_mimn.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int uic_checkpoint_id(const char *path, uint64_t *id, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, errlen, LSIM_E_IO, "%s: %s", path, strerror(errno));
    uint64_t h = UINT64_C(14695981039346656037);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * UINT64_C(1099511628211);
    int bad = ferror(f);
    fclose(f);
    if (bad) return err_set(err, errlen, LSIM_E_IO, "%s: read error", path);
    *id = h;
    return 0;
}

static void fold_init(void *ud, float *state)
{
    uic_mimn *u = ud;
    mimn_state_init(u->mm, state);
}

static void fold(void *ud, float *state, const uint32_t *item, const uint32_t *cat, size_t n)
{
    uic_mimn *u = ud;
    mimn_state_fold(u->mm, state, item, cat, n, u->scratch);
}

int uic_mimn_init(uic_mimn *u, const model *m, uint64_t id, const char *name, float *scratch)
{
    memset(u, 0, sizeof *u);
    u->mm = model_mimn(m);
    if (!u->mm) return LSIM_E_INVAL;
    const mimn_config *c = mimn_cfg(u->mm);
    u->scratch = scratch;
    if (!scratch) {
        u->scratch = malloc(mimn_fold_scratch_floats(c) * sizeof *u->scratch);
        if (!u->scratch) return LSIM_E_NOMEM;
        u->own_scratch = 1;
    }
    u->model.id = id;
    u->model.state_floats = (uint32_t)mimn_state_floats(c);
    const char *base = strrchr(name, '/');
    snprintf(u->model.name, sizeof u->model.name, "%s", base ? base + 1 : name);
    u->model.init = fold_init;
    u->model.fold = fold;
    u->model.ud = u;
    return 0;
}

void uic_mimn_free(uic_mimn *u)
{
    if (u->own_scratch) free(u->scratch);
    memset(u, 0, sizeof *u);
}

int uic_mimn_open(uic_mimn *u, model **m, const char *path, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    *m = NULL;
    uint64_t id;
    int rc = uic_checkpoint_id(path, &id, err, errlen);
    if (!rc) rc = model_load(m, path, 1, 1, 1, err, errlen);
    if (rc) return rc;
    if (!model_mimn(*m)) {
        rc = err_set(err, errlen, LSIM_E_INVAL, "%s: a %s checkpoint; a User Interest Center holds MIMN's states",
                     path, model_kind_name(model_get_spec(*m)->kind));
    } else if ((rc = uic_mimn_init(u, *m, id, path, NULL))) {
        rc = err_set(err, errlen, rc, "%s: %s", path, lsim_strerror(rc));
    }
    if (rc) {
        model_free(*m);
        *m = NULL;
    }
    return rc;
}

void uic_mimn_close(uic_mimn *u, model *m)
{
    uic_mimn_free(u);
    model_free(m);
}
