/*
 * model_state.h: what every model owns besides its layers (private): its
 * parameters, their gradients (same names and shapes), its buffers (Dice
 * running statistics), and its one workspace.
 */
#ifndef LSIM_MODEL_STATE_H
#define LSIM_MODEL_STATE_H

#include "models/arena.h"
#include "models/params.h"

typedef struct model_state {
    param_set params, grads, buffers;
    void *ws;
    size_t ws_bytes;  /* the workspace's size */
    int forward_only; /* a view of another model's parameters: no gradients, no training buffers */
} model_state;

/* Builds the three sets from the parameter and buffer lists, and frees the
 * lists (whatever happens). 0, or LSIM_E_NOMEM / the list's error. */
int model_state_init(model_state *st, param_list *params, param_list *buffers, int list_rc);

/* Serving many threads with one copy of the weights: the next
 * model_state_init on this thread makes its parameters a view of params
 * (which must outlive the model and not change) and allocates no gradients,
 * so the model can run forward only (forward_only: its workspace has no
 * training buffers either, models/arena.h). Buffers stay the model's own. */
void model_state_share_next(const param_set *params);

/* Sizes and allocates the workspace: carve(ctx, a) is called twice, first on
 * a measuring arena, then on the allocated one (models/arena.h); both with
 * a.forward_only = st->forward_only. */
int model_state_alloc_ws(model_state *st, void (*carve)(void *ctx, arena *a), void *ctx);

void model_state_free(model_state *st);

#endif
