/*
 * model_state.c: see model_state.h.
 */
#include "models/model_state.h"

#include "lsim.h"

#include <stdlib.h>

static _Thread_local const param_set *share_next;

void model_state_share_next(const param_set *params)
{
    share_next = params;
}

int model_state_init(model_state *st, param_list *params, param_list *buffers, int list_rc)
{
    int rc = list_rc;
    const param_set *share = share_next;
    share_next = NULL;
    st->forward_only = share != NULL;
    if (share) { /* serving: another model's parameters, read-only, and no gradients */
        if (!rc) rc = param_set_view(&st->params, params->specs, params->n, share);
        if (!rc) rc = param_set_view(&st->grads, params->specs, params->n, NULL);
    } else {
        if (!rc) rc = param_set_init(&st->params, params->specs, params->n);
        if (!rc) rc = param_set_init(&st->grads, params->specs, params->n);
    }
    if (!rc) rc = param_set_init(&st->buffers, buffers->specs, buffers->n);
    param_list_free(params);
    param_list_free(buffers);
    return rc;
}

int model_state_alloc_ws(model_state *st, void (*carve)(void *ctx, arena *a), void *ctx)
{
    arena a = {.forward_only = st->forward_only};
    carve(ctx, &a);
    st->ws_bytes = a.used;
    if (!(st->ws = arena_alloc(&a, a.used))) return LSIM_E_NOMEM;
    carve(ctx, &a);
    return 0;
}

void model_state_free(model_state *st)
{
    param_set_free(&st->params);
    param_set_free(&st->grads);
    param_set_free(&st->buffers);
    free(st->ws);
    st->ws = NULL;
}
