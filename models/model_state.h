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
    size_t ws_bytes; /* the workspace's size */
} model_state;

/* Builds the three sets from the parameter and buffer lists, and frees the
 * lists (whatever happens). 0, or LSIM_E_NOMEM / the list's error. */
int model_state_init(model_state *st, param_list *params, param_list *buffers, int list_rc);

/* Serving many threads with one copy of the weights: the next
 * model_state_init on this thread makes its parameters a view of params
 * (which must outlive the model and not change) and allocates no gradients,
 * so the model can run forward only. Buffers stay the model's own. */
void model_state_share_next(const param_set *params);

/* Sizes and allocates the workspace: carve(ctx, a) is called twice, first on
 * a measuring arena, then on the allocated one (models/arena.h). */
int model_state_alloc_ws(model_state *st, void (*carve)(void *ctx, arena *a), void *ctx);

void model_state_free(model_state *st);

#endif
