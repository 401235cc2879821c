/*
 * engine_internal.h: the handles behind lsim_engine and lsim_ctx (private).
 *
 * An engine holds the index, the checkpoint's model as loaded (its
 * parameters are the one copy every context reads) and the settings
 * resolved against the checkpoint. A context holds a model of its own (a
 * view of those parameters, and every activation of an inference forward,
 * sized for max_candidates: a forward-only model, model_new_sharing), an
 * index reader, and the request's arrays, carved from one allocation. What grows, to the largest request seen: the index
 * reader's merge buffers and, for models that read whole sequences, the
 * user's events.
 */
#ifndef LSIM_ENGINE_INTERNAL_H
#define LSIM_ENGINE_INTERNAL_H

#include "engine/uic_mimn.h"
#include "esu/model.h"
#include "gsu/soft_request.h"
#include "lsim.h"
#include "storage/block_codec.h"
#include "storage/error_detail.h"

#define ENGINE_FOLD_CHUNK 256

/* What the model reads beside the short-term window (as train/samples.h's long modes). */
typedef enum engine_long {
    ENGINE_LONG_NONE, ENGINE_LONG_HARD, ENGINE_LONG_SOFT, ENGINE_LONG_AVGPOOL,
    ENGINE_LONG_ALL /* MIMN: every event before now, folded into the user's state */
} engine_long;

struct lsim_engine {
    lsim_index *ix;
    model *master;
    model_spec spec;
    lsim_settings set;     /* short_len and long_max resolved */
    engine_long long_kind;
    uint32_t topk;         /* SIM: K; the hard list's length */
    uint32_t long_width;   /* the model's max_k: topk (SIM), long_max (avg-pooling), 0 */
    int long_before_short; /* the checkpoint's lsim.long_before_short */
    int64_t last_event;    /* the index's last event when opened: with the clock, what bounds `now` */
    int uic;               /* MIMN: the index's User Interest Center holds this checkpoint's states */
    uint64_t ckpt_id;      /* MIMN: the checkpoint's content hash (engine/uic_mimn.h) */
    char ckpt_name[64];
    /* SIM soft: the GSU vectors' parts per item and per category (rows n + 1, the last the
     * out-of-vocabulary one), key = ki[item] + kc[cat], query = qi[item] + qc[cat]
     * (gsu/soft_score.h): NULL when the catalog is too large to tabulate */
    float *ki, *kc, *qi, *qc;
    /* SIM soft: the search's recency bias (gsu/soft_search.h), NULL without it; the
     * vectors' width, gsu_d plus its column */
    const float *time_bias;
    size_t gsu_w;
};

struct lsim_ctx {
    lsim_engine *e;
    lsim_index_reader *rd;
    model *m;
    ubt_event *ev;         /* the user's newest events before now, oldest first */
    size_t ev_cap;         /* fixed at ev_need, or grown when every event is read */
    size_t ev_need;        /* how many newest events a request reads (SIZE_MAX: all) */
    /* SIM hard: each distinct candidate category's newest K, read from its chain */
    ubt_event *hev;        /* (max_candidates, K), newest first per slot */
    uint32_t *hcnt;        /* (max_candidates) events per slot */
    uint32_t *hslot;       /* (max_candidates) each candidate's slot */
    uint32_t *hkey, *hgen, gen; /* (2^h) category -> slot, stamped per request */
    uint32_t *hval;
    size_t hsize;
    const ubt_event *lev;  /* what l_src indexes: ev, or hev */
    /* candidates with the same (item, category) are scored once: cmap (max_candidates) says
     * which distinct pair (the model's sample) is each candidate's; dslot (dsize) finds them */
    uint32_t *cmap, *dslot;
    size_t dsize;
    void *mem;             /* everything below, one allocation */
    uint32_t *t_item, *t_cat, *h_item, *h_cat, *h_len, *l_item, *l_cat, *l_len;
    int64_t *h_ts, *l_ts, *now;
    uint32_t *l_src;       /* SIM: each long row's index in ev */
    float *logits, *att;   /* att (K): explain's weights */
    /* soft search: the GSU vectors and the choice */
    float *ea, *keys, *queries; /* keys: one per distinct (item, category) of the long list */
    uint32_t *sel, *sel_cnt;
    uint32_t *litems, *lcats;   /* (long_max) the long list */
    uint8_t *ltags;             /* (long_max) its time buckets, with the recency bias */
    soft_request sr;
    void *sr_mem;
    /* MIMN: the user's state, folded per request over every event before now (the slow
     * path a User Interest Center replaces with a stored state), and the fold's scratch */
    float *mstate, *mscratch;
    uint32_t *fitem, *fcat; /* (ENGINE_FOLD_CHUNK) the ids of the events being folded */
    uic_mimn um;            /* the UIC's reads fold with this (its own scratch) */
    uint32_t *uic_ids;      /* the ids of the events folded on top of a stored state (grows) */
    size_t uic_ids_cap;
    int state_ready;        /* this request's mstate came from the UIC */
    size_t uic_folded;      /* events folded on top of it */
    char errmsg[LSIM_ERRLEN];
};

/* Sets c->errmsg and returns code. */
int ctx_err(lsim_ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
