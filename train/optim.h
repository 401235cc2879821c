/*
 * optim.h: Adam and Adagrad over a model's parameter set, with learning-rate
 * decay, as PyTorch 1.13 defines them (private).
 *
 * Step t = 1, 2, ... with gradient g of parameter p (weight decay 0):
 *   lr_t     = lr / (1 + decay (t - 1))       (inverse-time decay; decay 0: constant)
 *   Adam     m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
 *            p -= lr_t (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 *            (torch.optim.Adam, amsgrad off; b1 0.9, b2 0.999, eps 1e-8)
 *   Adagrad  s += g^2,  p -= lr_t g / (sqrt(s) + eps)
 *            (torch.optim.Adagrad: its lr_decay is this decay; initial
 *            accumulator 0, eps 1e-10)
 * tests/golden/gen_optim.py runs both in PyTorch; tests/test_optim.c
 * compares. The state (m, v or s) is one allocation beside the parameters;
 * optim_state_save / optim_state_load put it in a checkpoint (tensors
 * "optim.m.NAME" ... and the step count) so that training resumes exactly.
 */
#ifndef LSIM_OPTIM_H
#define LSIM_OPTIM_H

#include "loaders/safetensors.h"
#include "models/params.h"

#include <stdint.h>

typedef enum optim_kind { OPTIM_ADAM, OPTIM_ADAGRAD } optim_kind;

/* Hyperparameters are doubles, as PyTorch's are (Python floats): the step's
 * scalars such as 1 - beta2 are formed in double and rounded once. */
typedef struct optim_config {
    optim_kind kind;
    double lr;     /* default: Adam 1e-3, Adagrad 1e-2 */
    double decay;  /* inverse-time learning-rate decay per step; default 0 */
    double beta1, beta2, eps;
} optim_config;

void optim_config_default(optim_config *c, optim_kind kind);
const char *optim_kind_name(optim_kind k);
int optim_kind_parse(const char *s, optim_kind *k);

typedef struct optim {
    optim_config cfg;
    uint64_t step;   /* steps taken */
    param_set m, v;  /* Adam: moments; Adagrad: v holds the sum of squares, m unused (empty) */
} optim;

/* State for the parameters' specs (zeroed). 0 or LSIM_E_NOMEM. */
int optim_init(optim *o, const optim_config *c, const param_set *params);
void optim_free(optim *o);

/* One step: params -= update(grads). Gradients are read, not cleared. */
void optim_step(optim *o, param_set *params, const param_set *grads);

/* Rows of a 2-D tensor (its index in the param_set) that a step touched. */
typedef struct sparse_rows {
    size_t tensor;
    const uint32_t *rows; /* distinct, < shape[0] */
    size_t n;
} sparse_rows;

/* The same step, but the listed tensors (embedding tables) are updated only
 * in the listed rows, the other rows left as they are ("lazy" updates, as
 * TensorFlow's LazyAdam and PyTorch's SparseAdam do; the bias correction
 * uses the global step). For Adagrad this equals optim_step whenever the
 * unlisted rows' gradients are zero: a zero gradient does not move Adagrad.
 * For Adam it differs: dense Adam keeps moving a row by its momentum after
 * the row stops receiving gradients. */
void optim_step_sparse(optim *o, param_set *params, const param_set *grads, const sparse_rows *rows, size_t nrows);

/* The learning rate of the next step. */
float optim_lr(const optim *o);

/* Adds the state to a checkpoint being written (tensors and metadata). */
int optim_state_save(const optim *o, st_writer *w);
/* Restores it from a checkpoint written by optim_state_save for the same
 * parameters and kind; a missing or mis-shaped tensor is an error naming it. */
int optim_state_load(optim *o, const st_file *f, const char *path, char *err, size_t errlen);

#endif
