/*
 * params.h: a model's named tensors in one allocation (private).
 *
 * A param_set is a list of named float32 tensors with fixed shapes, carved
 * out of one block (llm.c's malloc_and_point): the model's parameters, their
 * gradients (a second set of the same specs), or its buffers (Dice running
 * statistics). Names follow PyTorch state_dict style ("att.fc1.weight") so a
 * checkpoint written by PyTorch loads by name.
 */
#ifndef LSIM_PARAMS_H
#define LSIM_PARAMS_H

#include "loaders/safetensors.h"

#include <stddef.h>
#include <stdint.h>

#define PARAM_MAX_DIMS 4
#define PARAM_NAME_MAX 64

typedef struct param_spec {
    char name[PARAM_NAME_MAX];
    size_t ndim;
    size_t shape[PARAM_MAX_DIMS];
} param_spec;

typedef struct param_set {
    size_t n;
    param_spec *specs;
    float **ptr;    /* ptr[i]: tensor i inside block */
    size_t *numel;
    float *block;   /* one allocation, 64-byte aligned, zeroed */
    size_t total;   /* floats in block */
} param_set;

/* A growable list of specs, filled by a model before param_set_init. */
typedef struct param_list {
    param_spec *specs;
    size_t n, cap;
} param_list;

int param_list_add(param_list *l, const char *name, size_t ndim, const size_t *shape);
void param_list_free(param_list *l);

/* Allocates the set for specs[0..n) (copied), zeroed. */
int param_set_init(param_set *ps, const param_spec *specs, size_t n);
void param_set_free(param_set *ps);

/* A view: the same tensors as src (names and sizes checked; LSIM_E_INVAL if
 * they differ), no block of its own (block NULL, total 0); src NULL gives
 * NULL pointers (a model that never runs backward needs no gradients).
 * Freeing a view leaves src's tensors alone. */
int param_set_view(param_set *ps, const param_spec *specs, size_t n, const param_set *src);
void param_set_zero(param_set *ps);

/* Fresh random values, deterministic for a seed: embedding tables (names
 * containing "emb") uniform with std 0.01; Dice alphas (".alpha") 0.25;
 * 2-D weights uniform in +-1/sqrt(fan_in) (PyTorch's nn.Linear default
 * bound); a 1-D bias likewise with the fan_in of the weight before it. */
void param_set_randomize(param_set *ps, uint64_t seed);

/* The tensor named `name`, or NULL. */
float *param_find(const param_set *ps, const char *name);

/* Loads every tensor of the set from f by name, checking dtype F32 and the
 * exact shape; a missing tensor or a mismatch is an error naming it.
 * Tensors in f that the set does not have are an error too (a checkpoint of
 * another model) unless allow_extra. */
int param_set_load(param_set *ps, const st_file *f, int allow_extra, char *err, size_t errlen);

/* Adds every tensor of the set to w (data copied). */
int param_set_save(const param_set *ps, st_writer *w);

#endif
