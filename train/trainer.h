/*
 * trainer.h: `lsim train` as a library call: samples from the index, a
 * model, its loss and gradients, the regularizer and the optimizer, and
 * checkpoints (private).
 *
 * One step: a batch of training samples (train/samples.h), the model's
 * training forward (BCE, plus DIEN's auxiliary loss and SIM soft's
 * alpha L_GSU where the model has them: esu/), its backward, DIN's
 * mini-batch aware regularization on the embedding tables
 * (train/regularize.h), and one optimizer step (train/optim.h).
 *
 * With threads > 1 each batch is split across that many model replicas,
 * one thread each (train/data_parallel.h); a run is deterministic for its
 * seed and thread count.
 *
 * Checkpoints (docs/CHECKPOINT_FORMAT.md) carry the model, the optimizer's
 * state (tensors "optim.*") and, in the metadata, how the samples were
 * drawn (lsim.negatives, lsim.neg_sampling, lsim.test_from, lsim.short_len,
 * lsim.long_max ...) and the training position (lsim.train_step,
 * lsim.train_seed). Resuming replays the sample stream up to that step
 * (it is deterministic for the seed) and goes on, so a resumed run ends
 * with the same weights as an uninterrupted one.
 */
#ifndef LSIM_TRAINER_H
#define LSIM_TRAINER_H

#include "esu/model.h"
#include "lsim.h"
#include "train/optim.h"
#include "train/samples.h"

#include <stdint.h>

typedef struct train_config {
    model_kind kind;
    int time_info;           /* SIM: the time-interval embedding in the ESU */
    unsigned recency;        /* SIM with time info: lsim's recency additions, MODEL_RECENCY_* (default last, cat) */
    int gsu_sum;             /* SIM soft: the auxiliary task pools with r (the paper's), not softmax(r) */
    uint32_t mem_slots, d_ctrl, miu_k, bptt; /* MIMN: 0 keeps the default (esu/mimn.h) */
    float util_reg;          /* MIMN: lambda of the utilization regularizer; < 0 keeps the default */
    float alpha_aux;         /* DIEN (and SIM's DIEN branch): its auxiliary loss's weight; < 0 keeps 1 */
    sample_config samples;   /* split, test_from, batch, lengths, negatives (long_mode is set from kind) */
    optim_config optim;
    uint32_t epochs;         /* passes over the training samples (default 1) */
    float lambda;            /* mini-batch aware regularization (default 0.01; 0 off) */
    uint64_t seed;           /* model initialization (the samples have their own) */
    uint64_t every;          /* a checkpoint every N steps, 0: only at the end */
    uint32_t threads;        /* model replicas, one thread each (train/data_parallel.h); default 1 */
    int dense_embeddings;    /* 1: every embedding row updated every step, as torch.optim does; 0 (default):
                                only the rows a batch uses (optim_step_sparse): a step's cost does not grow
                                with the catalog */
    uint64_t max_steps;      /* stop after this many steps (counted from the start, resumed ones included); 0: none */
    const char *out;         /* checkpoint path */
    const char *resume;      /* NULL, or a checkpoint written by a run of the same configuration */
} train_config;

/* Defaults for a kind: the samples' defaults, Adam 1e-3, 1 epoch, lambda 0.01. */
void train_config_default(train_config *c, model_kind kind);

/* The sample configuration a kind needs (long-term list and DIEN's negatives). */
void train_samples_for(sample_config *s, const model_spec *spec);

typedef struct train_progress {
    uint64_t step, samples, total_samples; /* total over all epochs */
    uint32_t epoch;
    double loss;          /* mean loss of the recent steps */
    double seconds, samples_per_s;
} train_progress;

typedef void (*train_progress_fn)(const train_progress *p, void *ud);

/* Trains and writes c->out. fn (may be NULL) is called after every step. */
int train_run(lsim_index *ix, const train_config *c, train_progress_fn fn, void *ud, train_progress *final,
              char *err, size_t errlen);

#endif
