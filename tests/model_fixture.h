/*
 * model_fixture.h: reading the PyTorch fixtures of tests/golden/ in the model
 * tests (test_din, test_dien, test_dsin, test_sim): one case's tensors under
 * a prefix ("a.", "d.", ...), the weights loaded into a model, and the
 * comparisons of one training step (tolerances: tu_compare_f32).
 */
#ifndef LSIM_MODEL_FIXTURE_H
#define LSIM_MODEL_FIXTURE_H

#include "loaders/safetensors.h"
#include "models/batch.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

#define MF_TOL_FWD 1e-5
#define MF_TOL_GRAD 1e-4

/* Opens $LSIM_SOURCE_ROOT/tests/golden/<file> (asserts). */
st_file *mf_open(const char *file);
/* The tensor prefix + name (asserts it exists). */
const st_tensor *mf_need(const st_file *f, const char *prefix, const char *name);
/* An I32 tensor as uint32 (caller frees); *n gets its element count when n is set. */
uint32_t *mf_ids(const st_file *f, const char *prefix, const char *name, size_t *n);
/* Compares got with an F32 fixture tensor; returns the mismatches. */
int mf_compare(const char *what, const float *got, const st_tensor *want, double tol);
/* Loads every tensor of ps from prefix + sub + name (sub "" for parameters,
 * "init." for the buffers before the step), checking dtype and size. */
void mf_load(param_set *ps, const st_file *f, const char *prefix, const char *sub);
/* After a training step: every gradient against "grad." + name and every
 * buffer against "after." + name; returns the mismatches. */
int mf_check_step(const param_set *grads, const param_set *buffers, const st_file *f, const char *prefix);

/* A batch read from a case: target_*, hist_* (required), and whichever of
 * hist_ts, hist_neg_*, long_*, now, label the case has. The id arrays are
 * owned by mem (mf_batch_free). */
typedef struct mf_batch_mem {
    uint32_t *ids[10];
} mf_batch_mem;
void mf_batch(model_batch *bt, mf_batch_mem *mem, const st_file *f, const char *prefix);
void mf_batch_free(mf_batch_mem *mem);

#endif
