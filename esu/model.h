/*
 * model.h: one handle over every model kind, and its checkpoints (private).
 *
 * The training loop, the evaluator and the request engine see a `model`:
 * forward, backward, parameters, and a checkpoint that says by itself how to
 * run it. A checkpoint is a safetensors file (loaders/safetensors.h,
 * docs/CHECKPOINT_FORMAT.md) holding the parameters and buffers under their
 * PyTorch-style names and, in __metadata__, the model kind and every
 * hyperparameter as decimal strings:
 *   lsim.format = "1"            lsim.model = din | avgpool-din | dien | dsin | sim-hard | sim-soft | bst | mimn
 *   lsim.n_items, lsim.n_cats, lsim.d_item, lsim.d_cat, lsim.att_h1, lsim.att_h2,
 *   lsim.mlp_h1, lsim.mlp_h2, lsim.att_softmax, lsim.dice_momentum
 *   sim-*: lsim.topk, lsim.heads, lsim.d_head, lsim.d_time, lsim.gsu_d, lsim.alpha,
 *          lsim.recency (0 | 1, needs d_time > 0; absent = 0), lsim.gsu_softmax (0 | 1; absent = 0),
 *          lsim.recency_cat (0 | 1, needs recency; absent = 0),
 *          sim-soft: lsim.gsu_recency (0 | 1, needs d_time > 0; absent = 0),
 *          lsim.short_branch (din | dien | dsin), and for those branches
 *          lsim.alpha_aux, or the DSIN keys below with lsim.branch_heads for
 *          the DSIN branch's heads
 *   dien:  lsim.alpha_aux
 *   dsin:  lsim.max_sessions, lsim.session_len, lsim.min_session_len, lsim.session_gap,
 *          lsim.heads, lsim.d_ffn, lsim.d_lstm
 *   bst:   lsim.seq_len, lsim.d_pos, lsim.time_buckets, lsim.heads, lsim.d_ffn (no att_* keys)
 *   mimn:  lsim.mem_slots, lsim.d_ctrl, lsim.miu_k, lsim.bptt, lsim.util_reg (lambda) (no att_* keys)
 * Other metadata (e.g. how negatives were sampled) is kept and ignored here.
 * Loading checks every key and every tensor (name, dtype F32, shape) and
 * refuses tensors the model does not have, except the training state
 * ("optim.*", read by train/optim.h when training resumes); each failure
 * names the file and the key or tensor.
 */
#ifndef LSIM_MODEL_H
#define LSIM_MODEL_H

#include "esu/bst.h"
#include "esu/dien.h"
#include "esu/din.h"
#include "esu/dsin.h"
#include "esu/mimn.h"
#include "esu/sim.h"
#include "models/batch.h"
#include "models/params.h"

typedef enum model_kind { MODEL_DIN, MODEL_AVGPOOL_DIN, MODEL_DIEN, MODEL_DSIN, MODEL_SIM_HARD, MODEL_SIM_SOFT,
                         MODEL_BST, MODEL_MIMN } model_kind;

const char *model_kind_name(model_kind k);
int model_kind_parse(const char *s, model_kind *k);

typedef struct model_spec {
    model_kind kind;
    din_config base;    /* vocabulary sizes, widths, DIN options */
    uint32_t topk, heads, d_head, d_time, gsu_d; /* SIM */
    float alpha;        /* SIM: weight of Loss_GSU */
    float alpha_aux;    /* DIEN: weight of the auxiliary loss */
    uint32_t max_sessions, session_len, min_session_len, d_ffn, d_lstm; /* DSIN (heads above) */
    uint32_t session_gap; /* DSIN: seconds */
    sim_branch_kind short_branch; /* SIM: the short-term branch */
    uint32_t branch_heads;        /* SIM with the DSIN branch: its self-attention heads */
    uint32_t recency;             /* SIM with time info: the head's recency input (esu/recency_input.h) */
    uint32_t gsu_softmax;         /* SIM soft: the auxiliary task's softmax pooling (gsu/soft_search.h) */
    uint32_t recency_cat;         /* SIM with the recency input: its target-category part (esu/recency_input.h) */
    uint32_t gsu_recency;         /* SIM soft with time info: the search's recency bias (gsu/soft_search.h) */
    uint32_t seq_len, d_pos, time_buckets; /* BST (heads, d_ffn above) */
    uint32_t mem_slots, d_ctrl, miu_k, bptt; /* MIMN (esu/mimn.h) */
    float util_reg;                          /* MIMN: lambda of the utilization regularizer */
} model_spec;

/* The defaults of each kind (papers' widths), for a vocabulary; SIM kinds
 * with time info and the recency input (both parts), SIM soft with softmax
 * pooling and without the search's recency bias. */
void model_spec_default(model_spec *s, model_kind kind, uint32_t n_items, uint32_t n_cats);

/* lsim's recency additions to SIM's time info (a mask for model_spec_time_info). */
enum {
    MODEL_RECENCY_LAST = 1, /* the head's input r: the time since the newest behavior */
    MODEL_RECENCY_CAT = 2,  /* beside it r_c: the time since the newest one in the target's category (needs LAST) */
    MODEL_RECENCY_GSU = 4,  /* SIM soft: the search's recency bias */
    MODEL_RECENCY_DEFAULT = 3,
    MODEL_RECENCY_ALL = 7
};

/* SIM: without time info (d_time 0) and so without the recency additions,
 * which need it; with time info, exactly the additions in `parts`
 * (MODEL_RECENCY_*; CAT without LAST is dropped, GSU is for SIM soft). */
void model_spec_time_info(model_spec *s, int time_info, unsigned parts);

typedef struct model model;

/* max_b samples, max_s short-term behaviors, max_k long-term behaviors per batch. */
int model_new(model **out, const model_spec *spec, size_t max_b, size_t max_s, size_t max_k);

/* Serving: MODEL_LONG_SHARED sizes avg-pooling DIN's long-term rows for one
 * sequence of max_k that every sample shares (model_batch.long_shared); the
 * model then takes only such batches. */
#define MODEL_LONG_SHARED 1u
int model_new_ex(model **out, const model_spec *spec, size_t max_b, size_t max_s, size_t max_k, unsigned flags);

/* A forward-only model of the same spec as src that reads src's parameters
 * (no copy, no gradients): one copy of the weights for every serving thread.
 * Its buffers are copied from src's. src must outlive it, unchanged.
 * Its workspace has no training buffers (models/arena.h): no gradients of
 * activations, no backward scratch, nothing a training forward keeps for a
 * backward (DIEN's negatives, the soft GSU's auxiliary head), and RNN
 * scratch of the forward's size: 0.42 (DIN) to 0.63 (DSIN) of a training
 * model's at the same sizes (bench/bench_ctx_memory.c). So its
 * forwards are inference forwards whatever `train` says, and model_backward
 * refuses it. */
int model_new_sharing(model **out, const model *src, size_t max_b, size_t max_s, size_t max_k, unsigned flags);
void model_free(model *m);
const model_spec *model_get_spec(const model *m);
/* 1 for a model_new_sharing model, else 0. */
int model_forward_only(const model *m);
/* The SIM model inside m (sim-hard, sim-soft), else NULL. */
const sim *model_sim(const model *m);
/* The MIMN model inside m, else NULL: its state fold (esu/mimn.h) serves requests from a
 * user's state (model_batch.mimn_state) instead of the history. */
const mimn *model_mimn(const model *m);
/* MIMN: the spec's esu/mimn.h config. */
void model_spec_mimn(mimn_config *c, const model_spec *s);
param_set *model_params(model *m);
param_set *model_grads(model *m);
param_set *model_buffers(model *m);
/* Bytes of m's memory beside the parameters it may share: its workspace
 * (activations and scratch, carved once: models/arena.h), its gradients and
 * its buffers. What a serving context's model costs (bench/bench_ctx_memory.c). */
typedef struct model_memory {
    size_t workspace, grads, buffers;
} model_memory;
void model_memory_get(const model *m, model_memory *out);
void model_init(model *m, uint64_t seed);

float model_forward(model *m, const model_batch *batch, float *logits, int train);
/* Backward of the last training forward (gradients added into model_grads).
 * 0, or LSIM_E_INVAL for a forward-only model (model_new_sharing), untouched. */
int model_backward(model *m, const model_batch *batch);

/* Writes a checkpoint (atomically). extra: NULL or key, value, key, value, ..., NULL. */
int model_save(model *m, const char *path, const char *const *extra, char *err, size_t errlen);
/* The same, with add(w, ud) called to put more tensors (the optimizer's
 * state, named "optim.*") into the file before it is written. */
int model_save_ex(model *m, const char *path, const char *const *extra, int (*add)(st_writer *w, void *ud), void *ud,
                  char *err, size_t errlen);

/* Reads the spec from a checkpoint's metadata. */
int model_spec_from_file(model_spec *s, const st_file *f, const char *path, char *err, size_t errlen);

/* Opens a checkpoint: the spec from its metadata, then every tensor. */
int model_load(model **out, const char *path, size_t max_b, size_t max_s, size_t max_k, char *err, size_t errlen);
int model_load_ex(model **out, const char *path, size_t max_b, size_t max_s, size_t max_k, unsigned flags, char *err,
                  size_t errlen);

#endif
