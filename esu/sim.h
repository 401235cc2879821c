/*
 * sim.h: SIM, the search-based interest model (Pi et al., CIKM 2020): a
 * General Search Unit picks the K relevant long-term behaviors, the Exact
 * Search Unit attends over them, beside a DIN branch over the short-term
 * behaviors (private).
 *
 *   e_a; the short-term branch over hist (DIN by default; DIEN or DSIN, below)
 *   GSU hard: the batch's long sequence IS the hard-search result (the index
 *             gave the user's most recent behaviors of the target's category)
 *   GSU soft: scores every behavior of the batch's long sequence,
 *             r_i = (W_b e_i).(W_a e_a), keeps the top K (gsu/soft_search.h)
 *   U_lt = ESU(selected behaviors, their times, now)       (esu/esu_attention.h)
 *   r = the time since the newest short-term behavior, embedded (with recency; esu/recency_input.h),
 *       and with recency_cat the time since the newest one in the target's category
 *   logit = head([e_a, short-term branch output, U_lt(, r)]);
 *   loss = BCE + alpha * Loss_GSU (soft) (+ DIEN's auxiliary loss with that branch)
 * GSU, ESU and the branch share the embeddings. Parameter names: emb.*,
 * att.* / dien.* / dsin.* (the branch), esu.* (esu.recency with recency), gsu.* (soft), mlp.* (head).
 */
#ifndef LSIM_SIM_H
#define LSIM_SIM_H

#include "esu/din.h"
#include "esu/dsin.h"
#include "models/batch.h"
#include "models/params.h"

typedef enum sim_gsu_mode { SIM_GSU_HARD, SIM_GSU_SOFT } sim_gsu_mode;

/* The short-term branch beside the ESU (the SIM paper's "short-term branch
 * chosen from DIN / DIEN / DSIN"). Its output joins the head's input:
 *   DIN   [v, e_a * v]                  (esu/din_branch.h; parameters att.*)
 *   DIEN  [h'_T, pool, e_a * pool]      (esu/dien_branch.h; dien.*; adds alpha_aux * L_aux)
 *   DSIN  [U^I, U^H]                    (esu/dsin_branch.h; dsin.*; needs hist_ts) */
typedef enum sim_branch_kind { SIM_BRANCH_DIN, SIM_BRANCH_DIEN, SIM_BRANCH_DSIN } sim_branch_kind;

typedef struct sim_config {
    din_config base;     /* embeddings, DIN branch, head widths (long_avgpool unused) */
    sim_gsu_mode gsu;
    uint32_t topk;       /* K behaviors the ESU attends over (50) */
    uint32_t heads;      /* ESU heads (4) */
    uint32_t d_head;     /* ESU projection per head (16) */
    uint32_t d_time;     /* time-interval embedding width; 0 = no time info */
    uint32_t recency;    /* 1: the head also gets r (needs d_time > 0; its width is d_time) */
    uint32_t recency_cat; /* 1: and r_c, the target category's recency (needs recency; d_time more) */
    uint32_t gsu_d;      /* soft search projection width (32) */
    uint32_t gsu_softmax; /* soft: the auxiliary task pools with softmax(r), else with r (gsu/soft_search.h) */
    uint32_t gsu_recency; /* soft with time info: r_i gets the learned bias of its time bucket (gsu/soft_search.h) */
    float alpha;         /* weight of Loss_GSU (1 for soft search, as the paper trains it) */
    sim_branch_kind branch; /* the short-term branch (DIN) */
    float alpha_aux;     /* DIEN branch: weight of its auxiliary loss (1) */
    dsin_config dsin;    /* DSIN branch: sessions, heads, widths (its base is ignored) */
} sim_config;

void sim_config_default(sim_config *c, uint32_t n_items, uint32_t n_cats, sim_gsu_mode gsu, int time_info);

typedef struct sim sim;

/* max_k: longest long sequence a batch may carry (for soft search, the
 * sequence searched; for hard, the hard-search result). */
int sim_new(sim **out, const sim_config *cfg, size_t max_b, size_t max_s, size_t max_k);
void sim_free(sim *m);
param_set *sim_params(sim *m);
param_set *sim_grads(sim *m);
param_set *sim_buffers(sim *m);
/* The bytes of the workspace (every activation and scratch buffer, carved once). */
size_t sim_workspace_bytes(const sim *m);
void sim_init(sim *m, uint64_t seed);

/* logits (B); returns BCE + alpha * Loss_GSU when labels are set (soft:
 * the auxiliary loss only in training). */
float sim_forward(sim *m, const model_batch *batch, float *logits, int train);
void sim_backward(sim *m, const model_batch *batch);

/* After a forward: the rows of the long sequence the GSU kept for sample b
 * (indices into its long sequence, time order); returns their count. */
size_t sim_selected(const sim *m, size_t b, const uint32_t **rows);

/* After an inference forward: the ESU's attention to those rows, averaged
 * over its heads, into w (one per selected row; they sum to 1). With
 * model_batch.long_group, samples of one group share their rows, and the
 * weights are those of the group's last sample (lsim_explain scores one). */
void sim_attention(const sim *m, size_t b, float *w);

#endif
