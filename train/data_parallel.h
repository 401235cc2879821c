/*
 * data_parallel.h: one training batch split across T model replicas, one
 * thread each (private).
 *
 * A replica is a second model of the primary's spec: its own parameters
 * (kept equal to the primary's), gradients, buffers and workspace. A step
 * splits the batch into T contiguous parts, runs forward and backward of
 * part r on replica r in thread r (the primary in the caller's thread), and
 * combines into the primary, weighting part r by its share n_r / B:
 *   - the gradients (each part's loss is a mean over its samples, so the
 *     weighted sum is the gradient of the whole batch's mean loss);
 *   - the loss;
 *   - the buffers (Dice running statistics: each replica moved the same old
 *     values toward its part's statistics, so the weighted mean is the old
 *     values moved toward the parts' mean).
 * Batch statistics (Dice in training) are each part's own, as in PyTorch's
 * DistributedDataParallel without synchronized batch norm: a run with T
 * threads is deterministic for its seed, but not equal to a run with 1.
 * After the optimizer step, dp_sync copies the primary's parameters and
 * buffers to the replicas. Each thread calls BLAS single-threaded; the
 * caller sets OpenBLAS to 1 thread.
 */
#ifndef LSIM_DATA_PARALLEL_H
#define LSIM_DATA_PARALLEL_H

#include "esu/model.h"
#include "train/optim.h"

typedef struct dp_group dp_group;

/* threads >= 1 (1: no replica, the primary alone); max_* as for model_new. */
int dp_new(dp_group **out, model *primary, size_t threads, size_t max_b, size_t max_s, size_t max_k);
void dp_free(dp_group *g);

/* Forward and backward of bt (b >= 1): the primary's gradients (zeroed here
 * first) end as the whole batch's. Returns the batch's loss.
 * Sparse mode (nrows > 0): rows lists, for the embedding tables, every row
 * the batch uses. Those tensors are then handled by row: their gradients
 * are kept zero between steps (dp_finish clears the rows used) instead of
 * being zeroed whole, and only the listed rows are combined and copied. The
 * cost of a step then no longer grows with the catalog. */
float dp_step(dp_group *g, const model_batch *bt, const sparse_rows *rows, size_t nrows);

/* After the optimizer step: the replicas take the primary's parameters (the
 * sparse tensors' listed rows only) and buffers, and the sparse tensors'
 * listed gradient rows are cleared everywhere. The same rows as dp_step. */
void dp_finish(dp_group *g, const sparse_rows *rows, size_t nrows);

/* dp_finish in dense mode: everything copied. */
void dp_sync(dp_group *g);

/* The part of bt holding samples [b0, b0 + n). */
model_batch batch_slice(const model_batch *bt, size_t b0, size_t n);

#endif
