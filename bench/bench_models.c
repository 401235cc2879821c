/*
 * bench_models.c: the forward pass of one model for one request, timed, with
 * its FLOPs, beside OpenBLAS sgemm measured in the same process; the driver
 * of bench/bench_models.py, which runs the same model in PyTorch.
 *
 * A request is one user and B candidates (default 200). Every candidate row
 * carries a copy of the same behaviors, because that is how the models take
 * a request today (models/batch.h: one sample per candidate):
 *   short-term   S = 50 behaviors (DIN branch of DIN and SIM; DIEN's sequence;
 *                DSIN's sessions: only DSIN gets their timestamps, seconds to
 *                minutes apart within a session of 3 to 14 behaviors and
 *                hours to days between sessions: more than K = 5 sessions,
 *                some longer than T = 10; "dsin_sessions" in the output)
 *   long-term    avgpool-din: K = 50 behaviors, mean-pooled;
 *                sim-hard: K = 50, the hard-search result (the index's answer,
 *                  here one fixed sequence of one category for every candidate);
 *                sim-soft, sim-soft-time: a sequence of 1,000 behaviors that
 *                  the soft GSU scores, keeping the top K = 50 for the ESU;
 *                din, dien, dsin: none.
 * Ids, categories and timestamps are random from a fixed seed; the model
 * has the library's default widths (din_config_default etc.) and random
 * weights, with the embeddings scaled to std 0.5 and non-trivial Dice
 * running statistics so that every path carries signal for the PyTorch
 * comparison (DSIN also: a non-zero bias encoding, LayerNorm weights away
 * from 1 / 0 and non-zero attention biases, as tests/golden/gen_dsin.py).
 *
 * Measured (medians of ROUNDS after warm-up, inference mode, train = 0):
 *   forward     din_forward / sim_forward / dien_forward / dsin_forward, the
 *               whole request;
 *   parts       the same forward decomposed into the library's own component
 *               calls (embed_forward, din_unit_forward, soft_gsu_forward +
 *               soft_gsu_topk, esu_attention_forward, nn_gru_forward ...,
 *               nn_encoder_forward, nn_bilstm_forward, mlp_head_forward),
 *               with a clock around each part (DSIN: also around the pieces
 *               of its attention part, "sub_ms"). The parts follow the
 *               general path, the one every training batch takes; the
 *               forward above takes the shared-request path (a request's
 *               candidates share their history and long sequence, so the
 *               models compute what depends only on them once). The two must
 *               give the same logits to float rounding (checked,
 *               "parts_max_abs_diff" <= 1e-5), and the forward/parts ratio
 *               shows what sharing saves;
 *   sgemm       cblas_sgemm on the attention unit's first layer shape
 *               (B*S x 4E times (h1 x 4E)^T, the largest GEMM of the models;
 *               DIEN: its GRU's input projection; DSIN: its transformer's
 *               FFN first layer, R x E times (d_ffn x E)^T over the R valid
 *               session rows), on the head's first layer shape, and on 1024^3.
 * It writes OUT (safetensors): the parameters and buffers under the model's
 * names, the request ("in.*"), and the logits ("out.logits"), with the
 * configuration in the metadata; and prints one JSON object on stdout.
 * The library is used as is (nothing here changes it).
 *
 * usage: bench_models KIND OUT [ROUNDS=30] [B=200] [forward]
 *   KIND: din, avgpool-din, sim-hard, sim-soft, sim-soft-time, dien, dsin
 *   "forward": only the whole forward, ROUNDS times, nothing else measured
 *   or written (for `perf record`).
 *   Threads: OpenBLAS's (OPENBLAS_NUM_THREADS); the rest is single-threaded.
 */
#include "bench/bench_timing.h"
#include "esu/dien.h"
#include "esu/dien_branch.h"
#include "esu/din.h"
#include "esu/din_unit.h"
#include "esu/dsin.h"
#include "esu/dsin_branch.h"
#include "esu/esu_attention.h"
#include "esu/sim.h"
#include "gsu/soft_search.h"
#include "loaders/safetensors.h"
#include "lsim.h"
#include "models/arena.h"
#include "models/embed.h"
#include "models/mlp_head.h"
#include "models/nn.h"
#include "models/nn_attention.h"
#include "models/nn_rnn.h"
#include "models/seq_pack.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_ITEMS 300000u   /* about the gen-log vocabulary of docs/BENCHMARKS.md */
#define N_CATS 800u
#define SHORT_LEN 50u
#define LONG_K 50u        /* hard-search result, avg-pooled sequence, soft top-K */
#define SOFT_LEN 1000u    /* the sequence soft search scores */
#define WARMUP 5
#define SEED 20261129u

typedef enum kind {
    KIND_DIN,
    KIND_AVGPOOL_DIN,
    KIND_SIM_HARD,
    KIND_SIM_SOFT,
    KIND_SIM_SOFT_TIME,
    KIND_DIEN,
    KIND_DSIN
} kind;
static const char *const kind_names[] = {"din", "avgpool-din", "sim-hard", "sim-soft", "sim-soft-time", "dien", "dsin"};
#define N_KINDS (sizeof kind_names / sizeof kind_names[0])

/* Parts of a forward, for timing and FLOPs. */
enum { P_EMBED, P_ATT, P_GSU, P_MLP, P_OTHER, N_PARTS };
static const char *const part_names[N_PARTS] = {"embed", "attention", "gsu", "mlp", "other"};
/* DSIN's attention part, in pieces: the bias encoding, the transformer block
 * with the mean pooling of its output, the Bi-LSTM, the two activation units. */
enum { S_BIAS, S_ENCODER, S_LSTM, S_UNITS, N_SUBS };
static const char *const sub_names[N_SUBS] = {"bias", "encoder", "bilstm", "units"};

static double unif(uint64_t *s) /* [0, 1) */
{
    return (double)(splitmix(s) >> 11) * 0x1.0p-53;
}

static void *xmalloc(size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* ---- the request ---- */

typedef struct request {
    size_t b, s, k;                     /* candidates, short length, long length (0: none) */
    uint32_t *target_item, *target_cat; /* (B) */
    uint32_t *hist_item, *hist_cat;     /* (B, S): one history, copied per candidate */
    uint32_t *hist_len;                 /* (B) */
    uint32_t *long_item, *long_cat;     /* (B, K): one long sequence, copied per candidate */
    uint32_t *long_len;                 /* (B) */
    int64_t *long_ts, *now;             /* (B, K), (B) */
    int64_t *hist_ts;                   /* (B, S) or NULL: one history's timestamps, copied */
    model_batch bt;
} request;

static void request_make(request *q, size_t b, size_t s, size_t k, int one_cat, int with_ts, uint64_t seed)
{
    uint64_t r = seed;
    q->b = b;
    q->s = s;
    q->k = k;
    q->target_item = xmalloc(b * sizeof(uint32_t));
    q->target_cat = xmalloc(b * sizeof(uint32_t));
    q->hist_item = xmalloc(b * s * sizeof(uint32_t));
    q->hist_cat = xmalloc(b * s * sizeof(uint32_t));
    q->hist_len = xmalloc(b * sizeof(uint32_t));
    size_t kk = k ? k : 1;
    q->long_item = xmalloc(b * kk * sizeof(uint32_t));
    q->long_cat = xmalloc(b * kk * sizeof(uint32_t));
    q->long_len = xmalloc(b * sizeof(uint32_t));
    q->long_ts = xmalloc(b * kk * sizeof(int64_t));
    q->now = xmalloc(b * sizeof(int64_t));
    const int64_t now = 1764000000; /* 2025-11-24 */
    for (size_t i = 0; i < b; i++) {
        q->target_item[i] = (uint32_t)(splitmix(&r) % N_ITEMS);
        q->target_cat[i] = (uint32_t)(splitmix(&r) % N_CATS);
        q->now[i] = now;
        q->hist_len[i] = (uint32_t)s;
        q->long_len[i] = (uint32_t)k;
    }
    /* row 0, then copied to every candidate */
    for (size_t j = 0; j < s; j++) {
        q->hist_item[j] = (uint32_t)(splitmix(&r) % N_ITEMS);
        q->hist_cat[j] = (uint32_t)(splitmix(&r) % N_CATS);
    }
    /* long sequence, oldest first: gaps of 1 s to ~11 days (log-uniform) back from now */
    uint32_t cat0 = (uint32_t)(splitmix(&r) % N_CATS);
    int64_t t = now;
    for (size_t j = k; j-- > 0;) {
        t -= 1 + (int64_t)pow(10.0, 6.0 * unif(&r));
        q->long_ts[j] = t;
        q->long_item[j] = (uint32_t)(splitmix(&r) % N_ITEMS);
        q->long_cat[j] = one_cat ? cat0 : (uint32_t)(splitmix(&r) % N_CATS);
    }
    /* short-term timestamps (DSIN), oldest first, from their own random stream
     * (the other models' requests stay as they are): going back from now,
     * sessions of 3 to 14 behaviors (uniform; the oldest one cut by the
     * history's start), 5 s to 15 min apart within a session and 1 h to
     * 3 days between sessions (log-uniform); the newest behavior 1 s to
     * ~17 min before now. */
    q->hist_ts = NULL;
    if (with_ts) {
        uint64_t r2 = seed ^ 0x7d5a1e55c0ffee00ull;
        q->hist_ts = xmalloc(b * s * sizeof(int64_t));
        int64_t ht = now - 1 - (int64_t)pow(10.0, 3.0 * unif(&r2));
        size_t left = 3 + (size_t)(splitmix(&r2) % 12); /* behaviors left in this session */
        for (size_t j = s; j-- > 0;) {
            q->hist_ts[j] = ht;
            if (--left == 0) {
                ht -= (int64_t)(3600.0 * pow(72.0, unif(&r2)));
                left = 3 + (size_t)(splitmix(&r2) % 12);
            } else {
                ht -= (int64_t)(5.0 * pow(180.0, unif(&r2)));
            }
        }
        for (size_t i = 1; i < b; i++) memcpy(q->hist_ts + i * s, q->hist_ts, s * sizeof(int64_t));
    }
    for (size_t i = 1; i < b; i++) {
        memcpy(q->hist_item + i * s, q->hist_item, s * sizeof(uint32_t));
        memcpy(q->hist_cat + i * s, q->hist_cat, s * sizeof(uint32_t));
        memcpy(q->long_item + i * k, q->long_item, k * sizeof(uint32_t));
        memcpy(q->long_cat + i * k, q->long_cat, k * sizeof(uint32_t));
        memcpy(q->long_ts + i * k, q->long_ts, k * sizeof(int64_t));
    }
    memset(&q->bt, 0, sizeof q->bt);
    q->bt.b = b;
    q->bt.target_item = q->target_item;
    q->bt.target_cat = q->target_cat;
    q->bt.s = s;
    q->bt.hist_item = q->hist_item;
    q->bt.hist_cat = q->hist_cat;
    q->bt.hist_len = q->hist_len;
    q->bt.hist_ts = q->hist_ts;
    q->bt.k = k;
    if (k) {
        q->bt.long_item = q->long_item;
        q->bt.long_cat = q->long_cat;
        q->bt.long_ts = q->long_ts;
        q->bt.long_len = q->long_len;
    }
    q->bt.now = q->now;
    q->bt.label = NULL; /* inference */
}

static void request_free(request *q)
{
    free(q->target_item);
    free(q->target_cat);
    free(q->hist_item);
    free(q->hist_cat);
    free(q->hist_len);
    free(q->long_item);
    free(q->long_cat);
    free(q->long_len);
    free(q->long_ts);
    free(q->now);
    free(q->hist_ts);
}

/* ---- the model, whichever kind ---- */

typedef struct model {
    kind kind;
    din_config dc; /* embeddings, DIN branch, head widths (also SIM's and DIEN's base) */
    sim_config sc;
    dsin_config ds; /* DSIN: its config as dsin_new resolves it (d_ffn, d_lstm, min_session_len filled in) */
    din *din;
    sim *sim;
    dien *dien;
    dsin *dsin;
    param_set *params, *buffers;
    size_t e, m_in; /* behavior width, head input width */
} model;

static float unif_pm(uint64_t *s, float a) /* [-a, a) */
{
    return (float)((2.0 * unif(s) - 1.0) * a);
}

static int model_new(model *md, kind k, const request *q)
{
    memset(md, 0, sizeof *md);
    md->kind = k;
    int rc = 0;
    switch (k) {
    case KIND_DIN:
    case KIND_AVGPOOL_DIN:
        din_config_default(&md->dc, N_ITEMS, N_CATS);
        md->dc.long_avgpool = k == KIND_AVGPOOL_DIN;
        rc = din_new(&md->din, &md->dc, q->b, q->s, q->k);
        if (!rc) {
            din_init(md->din, SEED);
            md->params = din_params(md->din);
            md->buffers = din_buffers(md->din);
        }
        break;
    case KIND_SIM_HARD:
    case KIND_SIM_SOFT:
    case KIND_SIM_SOFT_TIME:
        sim_config_default(&md->sc, N_ITEMS, N_CATS, k == KIND_SIM_HARD ? SIM_GSU_HARD : SIM_GSU_SOFT,
                           k == KIND_SIM_SOFT_TIME);
        md->dc = md->sc.base;
        rc = sim_new(&md->sim, &md->sc, q->b, q->s, q->k);
        if (!rc) {
            sim_init(md->sim, SEED);
            md->params = sim_params(md->sim);
            md->buffers = sim_buffers(md->sim);
        }
        break;
    case KIND_DIEN: {
        dien_config c;
        dien_config_default(&c, N_ITEMS, N_CATS);
        md->dc = c.base;
        rc = dien_new(&md->dien, &c, q->b, q->s);
        if (!rc) {
            dien_init(md->dien, SEED);
            md->params = dien_params(md->dien);
            md->buffers = dien_buffers(md->dien);
        }
        break;
    }
    case KIND_DSIN:
        dsin_config_default(&md->ds, N_ITEMS, N_CATS);
        md->dc = md->ds.base;
        rc = dsin_new(&md->dsin, &md->ds, q->b, q->s);
        if (!rc) {
            dsin_init(md->dsin, SEED);
            md->params = dsin_params(md->dsin);
            md->buffers = dsin_buffers(md->dsin);
            size_t e = (size_t)md->dc.d_item + md->dc.d_cat;
            if (!md->ds.d_ffn) md->ds.d_ffn = (uint32_t)(4 * e); /* as dsin_new resolves 0 */
            if (!md->ds.d_lstm) md->ds.d_lstm = (uint32_t)e;
            if (!md->ds.min_session_len) md->ds.min_session_len = 1;
        }
        break;
    }
    if (rc) return rc;
    md->e = (size_t)md->dc.d_item + md->dc.d_cat;
    if (md->sim)
        md->m_in = 3 * md->e + (size_t)md->sc.heads * (md->e + md->sc.d_time);
    else if (md->dsin)
        md->m_in = 2 * md->e + md->ds.d_lstm;
    else if (md->dien || md->dc.long_avgpool)
        md->m_in = 4 * md->e;
    else
        md->m_in = 3 * md->e;
    /* Signal on every path: embeddings (and the time embedding) from std 0.01
     * to 0.5, as the golden generators use; Dice running statistics away from
     * (0, 1) so that inference mode is exercised. */
    uint64_t r = SEED + 7;
    param_set *p = md->params, *bf = md->buffers;
    for (size_t i = 0; i < p->n; i++)
        if (strstr(p->specs[i].name, "emb"))
            for (size_t j = 0; j < p->numel[i]; j++) p->ptr[i][j] *= 50.0f;
    for (size_t i = 0; i < bf->n; i++) {
        int is_var = strstr(bf->specs[i].name, "running_var") != NULL;
        for (size_t j = 0; j < bf->numel[i]; j++)
            bf->ptr[i][j] = is_var ? (float)(0.5 + unif(&r)) : (float)(0.2 * unif(&r) - 0.1);
    }
    /* DSIN: dsin_init starts the bias encoding at 0, the LayerNorms at 1 / 0
     * and the attention biases at 0 (PyTorch's init); move them away from
     * that, as tests/golden/gen_dsin.py does, so that a mix-up shows. */
    if (md->dsin)
        for (size_t i = 0; i < p->n; i++) {
            const char *nm = p->specs[i].name;
            int bias_enc = !strncmp(nm, "dsin.bias.", 10), norm = strstr(nm, ".norm") != NULL;
            int att_bias = !strcmp(nm, "dsin.encoder.self_attn.in_proj_bias") ||
                           !strcmp(nm, "dsin.encoder.self_attn.out_proj.bias");
            for (size_t j = 0; j < p->numel[i] && (bias_enc || norm || att_bias); j++) {
                if (bias_enc)
                    p->ptr[i][j] = unif_pm(&r, 0.5f);
                else if (norm && strstr(nm, ".weight"))
                    p->ptr[i][j] = 1.0f + unif_pm(&r, 0.5f);
                else
                    p->ptr[i][j] = unif_pm(&r, 0.3f);
            }
        }
    return 0;
}

static void model_forward(model *md, const request *q, float *logits)
{
    if (md->din)
        din_forward(md->din, &q->bt, logits, 0);
    else if (md->sim)
        sim_forward(md->sim, &q->bt, logits, 0);
    else if (md->dsin)
        dsin_forward(md->dsin, &q->bt, logits, 0);
    else
        dien_forward(md->dien, &q->bt, logits, 0);
}

static void model_free(model *md)
{
    din_free(md->din);
    sim_free(md->sim);
    dien_free(md->dien);
    dsin_free(md->dsin);
}

/* ---- DSIN's sessions ----
 * One sample's sessions as esu/dsin.h defines them (a new session where the
 * gap to the previous behavior is > session_gap seconds; sessions shorter
 * than min_session_len dropped; the K most recent kept, each cut to its T
 * most recent behaviors, numbered 0 .. n-1 oldest first): len (K), pos
 * (K, T) positions in the hist row, valid for t < len[k]. Returns n. The
 * library keeps this in esu/dsin_branch.c (static); main checks that this
 * copy gives the layout dsin_sessions reports. */
static int dsin_new_session(const int64_t *ts, size_t i, int64_t gap)
{
    return ts && ts[i] > ts[i - 1] && (uint64_t)ts[i] - (uint64_t)ts[i - 1] > (uint64_t)gap;
}

static size_t dsin_split(const dsin_config *c, const int64_t *ts, size_t len_b, uint32_t *len, uint32_t *pos)
{
    size_t K = c->max_sessions, T = c->session_len, min_len = c->min_session_len ? c->min_session_len : 1, n = 0;
    for (int pass = 0; pass < 2; pass++) { /* count the kept sessions, then lay them out */
        size_t found = 0, end = len_b;
        while (end > 0 && found < K) {
            size_t start = end - 1;
            while (start > 0 && !dsin_new_session(ts, start, c->session_gap)) start--;
            if (end - start >= min_len) {
                if (pass) {
                    size_t k = n - 1 - found, m = end - start < T ? end - start : T;
                    len[k] = (uint32_t)m;
                    for (size_t t = 0; t < m; t++) pos[k * T + t] = (uint32_t)(end - m + t);
                }
                found++;
            }
            end = start;
        }
        n = found;
    }
    for (size_t k = n; k < K; k++) len[k] = 0;
    return n;
}

static size_t dsin_split_b(const dsin_config *c, const model_batch *bt, size_t b, uint32_t *len, uint32_t *pos)
{
    size_t S = bt->s, l = bt->hist_len[b] < S ? bt->hist_len[b] : S;
    return dsin_split(c, bt->hist_ts ? bt->hist_ts + b * S : NULL, l, len, pos);
}

/* ---- FLOPs, counted analytically ----
 * Conventions: a multiply-add is 2 FLOPs; an add, subtract, multiply or
 * divide is 1; an exp, sigmoid or tanh is 1 (so elementwise work is
 * undercounted, never overcounted); gathers, copies and integer work
 * (embedding lookups, packing, time buckets, top-K selection) are 0.
 * Rows are those the C code computes: B candidates times the (copied)
 * behaviors, since every candidate carries its own copy.
 *
 * DIN activation unit, per behavior row (E, h1 = att_h1, h2 = att_h2):
 *   x = [e, a, e - a, e * a]          2E
 *   fc1 4E -> h1 with bias            8E h1 + h1
 *   sigmoid                           h1
 *   fc2 h1 -> h2 with bias            2 h1 h2 + h2
 *   sigmoid                           h2
 *   fc3 h2 -> 1 with bias             2 h2 + 1
 *   v += w_j e_j                      2E
 *   = 4E + 8E h1 + 2 h1 + 2 h1 h2 + 4 h2 + 1  (E = 36: 29,905 per row)
 */
static double flops_din_unit(double rows, double E, double h1, double h2)
{
    return rows * (4 * E + 8 * E * h1 + 2 * h1 + 2 * h1 * h2 + 4 * h2 + 1);
}

/* The head, per candidate (in, h1 = mlp_h1, h2 = mlp_h2):
 *   fc1 in -> h1 with bias            2 in h1 + h1
 *   Dice (inference: sub, mul, sigmoid, sub, mul, add, mul)   7 h1
 *   fc2 h1 -> h2 with bias            2 h1 h2 + h2
 *   Dice                              7 h2
 *   fc3 h2 -> 1 with bias             2 h2 + 1
 *   = 2 in h1 + 8 h1 + 2 h1 h2 + 10 h2 + 1 */
static double flops_head(double b, double in, double h1, double h2)
{
    return b * (2 * in * h1 + 8 * h1 + 2 * h1 * h2 + 10 * h2 + 1);
}

/* SIM's ESU, per candidate with K selected rows (E, Z = E + d_time, Q heads,
 * D = d_head, H = Q D):
 *   q = W_a e_a                       2 E H
 *   per row: k = W_b z                2 Z H
 *            scores, Q dot products   2 H
 *            softmax (sub, exp, add, div)   4 Q
 *            head_i += att z          2 Q Z
 *   = 2 E H + K (2 Z H + 2 H + 4 Q + 2 Q Z) */
static double flops_esu(double b, double k, double E, double Z, double Q, double D)
{
    double H = Q * D;
    return b * (2 * E * H + k * (2 * Z * H + 2 * H + 4 * Q + 2 * Q * Z));
}

/* Soft-search GSU at inference, per candidate with L long rows (E, d = gsu_d):
 *   q = W_a e_a                       2 E d
 *   per row: k = W_b e                2 E d
 *            r = k . q                2 d
 *            U_r += r e (the auxiliary head's input; soft_gsu_forward computes it
 *                        even without labels)   2 E
 *   top-K: comparisons only           0
 *   = 2 E d + L (2 E d + 2 d + 2 E) */
static double flops_gsu(double b, double l, double E, double d)
{
    return b * (2 * E * d + l * (2 * E * d + 2 * d + 2 * E));
}

/* DIEN's interest part, per candidate with T steps (E, H = E):
 *   GRU: input projection with bias   T (6 E H + 3H)
 *        recurrent U h                T 6 H H
 *        gates per unit: u (add, sigmoid), r (add, sigmoid),
 *        h~ (mul, add, tanh), h = (1 - u) h + u h~ (sub, mul, mul, add)   T 11 H
 *   attention: q = W e_a              2 E E
 *        scores h_t . q               T 2 E
 *        softmax (sub, exp, add, mul) T 4
 *   AUGRU: the GRU plus u' = a u      T (6 E H + 3H + 6 H H + 12 H) */
static double flops_dien_interest(double b, double t, double E)
{
    double H = E;
    double gru = t * (6 * E * H + 3 * H + 6 * H * H + 11 * H);
    double aug = t * (6 * E * H + 3 * H + 6 * H * H + 12 * H);
    return b * (gru + 2 * E * E + t * (2 * E + 4) + aug);
}

/* DSIN's attention part (esu/dsin_branch.c), C = E, F = d_ffn, NH heads of
 * D = C / NH, H = d_lstm; "rows" are the behaviors kept in sessions.
 *   bias encoding, per row: kt = w_K[k] + w_T[t]; x[c] += kt + w_C[c]    2C + 1
 *   transformer block (models/nn_attention.c), over the packed rows:
 *     in projection C -> 3C with bias      6C^2 + 3C
 *     out projection C -> C with bias      2C^2 + C;  residual  C
 *     LayerNorm: mean (C), variance (sub, mul, add: 3C), y = (x - m) r g + b (4C)   8C
 *     FFN C -> F with bias                 2CF + F;  ReLU 0 (a comparison)
 *     FFN F -> C with bias                 2FC + C;  residual  C;  LayerNorm  8C
 *     = 8C^2 + 4CF + 23C + F per row
 *     attention core, per session of L rows, per head:
 *       scores q_i . k_j and the 1/sqrt(D) scale   L^2 (2D + 1)
 *       softmax (sub, exp, add, mul)               4 L^2
 *       context sum_j p_ij v_j                     2D L^2
 *       = L^2 (4C + 5 NH) over the heads
 *   mean pooling, per session of L rows: L C + C
 *   Bi-LSTM (models/nn_rnn.c), per direction:
 *     input projection with both biases, over all B K session slots (the
 *       code projects the empty ones too)  8CH + 8H per slot
 *     per valid step: recurrent w_hh h     8H^2
 *       gates: 4 adds, 3 sigmoids, 1 tanh; c = f c + i g (3); tanh(c); h = o tanh(c)   13H
 *     the reverse direction adds its output into the forward's   H per valid step
 *   activation units, per candidate with n sessions (widths E, then H):
 *     q = W^I e_a, W^H e_a                 2E^2 + 2HE
 *     scores v_k . q                       n (2E + 2H)
 *     softmax (sub, exp, add, mul), twice  8n
 *     weighted sums                        n (2E + 2H)
 * Fills sub[] (N_SUBS) and returns the total; *rows = the kept rows. */
static double flops_dsin(const model *md, const request *q, double *sub, size_t *rows)
{
    const dsin_config *c = &md->ds;
    size_t K = c->max_sessions, T = c->session_len, B = q->b;
    double E = (double)md->e, C = E, F = c->d_ffn, NH = c->heads, H = c->d_lstm;
    uint32_t *len = xmalloc(K * sizeof(uint32_t)), *pos = xmalloc(K * T * sizeof(uint32_t));
    memset(sub, 0, N_SUBS * sizeof *sub);
    *rows = 0;
    for (size_t b = 0; b < B; b++) {
        size_t n = dsin_split_b(c, &q->bt, b, len, pos);
        double steps = (double)n; /* valid Bi-LSTM steps: one per session */
        for (size_t k = 0; k < n; k++) {
            double L = len[k];
            *rows += len[k];
            sub[S_BIAS] += L * (2 * C + 1);
            sub[S_ENCODER] += L * (8 * C * C + 4 * C * F + 23 * C + F) + L * L * (4 * C + 5 * NH) + L * C + C;
        }
        sub[S_LSTM] += 2 * ((double)K * (8 * C * H + 8 * H) + steps * (8 * H * H + 13 * H)) + steps * H;
        sub[S_UNITS] += 2 * E * E + 2 * H * E + steps * (2 * E + 2 * H) + 8 * steps + steps * (2 * E + 2 * H);
    }
    free(len);
    free(pos);
    return sub[S_BIAS] + sub[S_ENCODER] + sub[S_LSTM] + sub[S_UNITS];
}

/* "other": the head input (and pooling) built from the parts.
 *   DIN, SIM: e_a * v                 E per candidate
 *   avg-pooling long DIN: mean of K rows   K E + E
 *   DIEN: pool = sum_t e_t, e_a * pool     T E + E
 *   DSIN: copies only, and the sessions (integer work)   0 */
static void count_flops(const model *md, const request *q, double *f)
{
    const din_config *c = &md->dc;
    double B = (double)q->b, S = (double)q->s, K = (double)q->k, E = (double)md->e;
    memset(f, 0, N_PARTS * sizeof *f);
    f[P_MLP] = flops_head(B, (double)md->m_in, c->mlp_h1, c->mlp_h2);
    switch (md->kind) {
    case KIND_DIN:
        f[P_ATT] = flops_din_unit(B * S, E, c->att_h1, c->att_h2);
        f[P_OTHER] = B * E;
        break;
    case KIND_AVGPOOL_DIN:
        f[P_ATT] = flops_din_unit(B * S, E, c->att_h1, c->att_h2);
        f[P_OTHER] = B * E + B * (K * E + E);
        break;
    case KIND_SIM_HARD:
    case KIND_SIM_SOFT:
    case KIND_SIM_SOFT_TIME: {
        const sim_config *sc = &md->sc;
        double sel = K < sc->topk ? K : sc->topk;
        f[P_ATT] = flops_din_unit(B * S, E, c->att_h1, c->att_h2) +
                   flops_esu(B, sel, E, E + sc->d_time, sc->heads, sc->d_head);
        if (md->kind != KIND_SIM_HARD) f[P_GSU] = flops_gsu(B, K, E, sc->gsu_d);
        f[P_OTHER] = B * E;
        break;
    }
    case KIND_DIEN:
        f[P_ATT] = flops_dien_interest(B, S, E);
        f[P_OTHER] = B * (S * E + E);
        break;
    case KIND_DSIN: {
        double sub[N_SUBS];
        size_t rows;
        f[P_ATT] = flops_dsin(md, q, sub, &rows);
        break;
    }
    }
}

/* ---- the forward, decomposed into the library's component calls ----
 * The same calls, in the same order, as din_forward / sim_forward /
 * dien_forward / dsin_forward (esu/din.c, esu/sim.c, esu/dien.c, esu/dsin.c
 * with esu/dsin_branch.c), with a clock between parts. Components are bound
 * to the model's own parameters and buffers. */

typedef struct parts {
    embed_layer emb;
    din_unit unit;
    esu_attention esu;
    soft_gsu gsu;
    mlp_head head;
    size_t max_b, max_s, max_l;
    float *ea, *es, *el, *v, *lp, *m_in, *el_sel, *score, *ul, *logit;
    uint64_t *topk_scratch;
    uint32_t *off, *loff, *sel_off, *sel, *r_item, *r_cat, *l_item, *l_cat, *len;
    int64_t *l_ts, *ts_sel;
    /* DIEN: the library's branch, bound and carved as esu/dien.c does */
    dien_branch dn;
    /* DSIN: the library's branch, bound and carved as esu/dsin.c does; its
     * weights and buffers are driven step by step below */
    dsin_branch ds;
    float *bout;
    double sub[N_SUBS]; /* seconds per piece of DSIN's attention part, added by parts_forward */
    void *ws;
} parts;

static void parts_carve(parts *p, const model *md, arena *a)
{
    size_t B = p->max_b, S = p->max_s, L = p->max_b * p->max_l, R = B * S, E = md->e;
    p->ea = ARENA_FLOATS(a, B * E);
    p->es = ARENA_FLOATS(a, R * E);
    p->el = ARENA_FLOATS(a, L * E);
    p->el_sel = ARENA_FLOATS(a, L * E);
    p->score = ARENA_FLOATS(a, L);
    p->v = ARENA_FLOATS(a, B * E);
    p->lp = ARENA_FLOATS(a, B * E);
    p->m_in = ARENA_FLOATS(a, B * md->m_in);
    p->ul = ARENA_FLOATS(a, B * md->m_in);
    p->logit = ARENA_FLOATS(a, B);
    p->off = ARENA_U32(a, B + 1);
    p->loff = ARENA_U32(a, B + 1);
    p->sel_off = ARENA_U32(a, B + 1);
    p->sel = ARENA_U32(a, L);
    p->topk_scratch = (uint64_t *)arena_take(a, md->sim ? md->sc.topk : 1, sizeof(uint64_t));
    p->r_item = ARENA_U32(a, R);
    p->r_cat = ARENA_U32(a, R);
    p->l_item = ARENA_U32(a, L);
    p->l_cat = ARENA_U32(a, L);
    p->len = ARENA_U32(a, B);
    p->l_ts = (int64_t *)arena_take(a, L, sizeof(int64_t));
    p->ts_sel = (int64_t *)arena_take(a, L, sizeof(int64_t));
    if (md->din || md->sim) din_unit_carve(&p->unit, a, B, R, R);
    if (md->sim) esu_attention_carve(&p->esu, a, B, L);
    if (md->sim && md->sc.gsu == SIM_GSU_SOFT) soft_gsu_carve(&p->gsu, a, B, L);
    if (md->dien) dien_branch_carve(&p->dn, a, B, S);
    if (md->dsin) {
        dsin_branch_carve(&p->ds, a, B);
        p->bout = ARENA_FLOATS(a, B * (E + md->ds.d_lstm));
    }
    mlp_head_carve(&p->head, a, B);
}

static void parts_new(parts *p, const model *md, const request *q)
{
    memset(p, 0, sizeof *p);
    const din_config *c = &md->dc;
    size_t E = md->e;
    p->max_b = q->b;
    p->max_s = q->s;
    p->max_l = q->k;
    embed_bind(&p->emb, c->n_items, c->n_cats, c->d_item, c->d_cat, md->params, NULL);
    if (md->din || md->sim)
        din_unit_bind(&p->unit, "att", E, c->att_h1, c->att_h2, c->att_softmax, md->params, NULL);
    if (md->sim) {
        esu_attention_bind(&p->esu, E, md->sc.d_time, md->sc.heads, md->sc.d_head, ESU_TIME_BUCKETS, md->params,
                           NULL);
        if (md->sc.gsu == SIM_GSU_SOFT)
            soft_gsu_bind(&p->gsu, E, c->d_item, md->sc.gsu_d, c->mlp_h1, c->mlp_h2, 0, c->dice_momentum,
                          (int)md->sc.gsu_softmax, md->params, NULL, md->buffers);
    }
    if (md->dien) dien_branch_bind(&p->dn, E, 0, &p->emb, md->params, NULL);
    if (md->dsin) {
        const dsin_config *d = &md->ds;
        dsin_branch_bind(&p->ds, E, d->max_sessions, d->session_len, d->d_lstm, d->d_ffn, d->heads,
                         d->min_session_len, d->session_gap, &p->emb, md->params, NULL);
    }
    mlp_head_bind(&p->head, "mlp", md->m_in, c->mlp_h1, c->mlp_h2, c->dice_momentum, md->params, NULL, md->buffers);
    arena a = {0};
    parts_carve(p, md, &a);
    if (!(p->ws = arena_alloc(&a, a.used))) {
        fprintf(stderr, "out of memory (parts workspace)\n");
        exit(1);
    }
    parts_carve(p, md, &a);
}

static float dot_plain(const float *a, const float *b, size_t n) /* as esu/dien.c's dot */
{
    float s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* DSIN's activation unit, as esu/dsin_branch.c's unit_forward: u (B, W) with
 * row stride ld = sum_{k < n} softmax_k(v_k . q) v_k; v (B, K, W), q (B, W) */
static void dsin_unit_plain(float *u, size_t ld, float *sc, float *att, const float *v, const float *q,
                            const uint32_t *n, size_t B, size_t K, size_t W)
{
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < n[b]; k++) sc[b * K + k] = dot_plain(v + (b * K + k) * W, q + b * W, W);
    nn_softmax_masked_forward(att, sc, n, B, K);
    for (size_t b = 0; b < B; b++) {
        float *ub = u + b * ld;
        memset(ub, 0, W * sizeof *ub);
        for (size_t k = 0; k < n[b]; k++) {
            const float a = att[b * K + k], *vk = v + (b * K + k) * W;
            for (size_t d = 0; d < W; d++) ub[d] += a * vk[d];
        }
    }
}

/* DSIN's forward (dsin_forward, then dsin_branch_forward's steps), decomposed. */
static void parts_forward_dsin(parts *p, const model *md, const request *q, double *t)
{
    const model_batch *bt = &q->bt;
    const dsin_config *c = &md->ds;
    size_t B = bt->b, S = bt->s, E = md->e, M = md->m_in, K = c->max_sessions, T = c->session_len, H = c->d_lstm,
           W = E + H, BK = B * K;
    double c0 = now_s(), c1;
#define LAP(part) (c1 = now_s(), t[part] += c1 - c0, c0 = c1)
#define SUB(piece) (c1 = now_s(), t[P_ATT] += c1 - c0, p->sub[piece] += c1 - c0, c0 = c1)
    /* the sessions, with their ids (0 at padding) */
    for (size_t b = 0; b < B; b++) {
        uint32_t *len = p->ds.sess_len + b * K, *pos = p->ds.sess_pos + b * K * T;
        p->ds.n_sess[b] = (uint32_t)dsin_split_b(c, bt, b, len, pos);
        for (size_t k = 0; k < K; k++)
            for (size_t s = 0; s < T; s++) {
                size_t i = (b * K + k) * T + s;
                if (s < len[k]) {
                    p->ds.sess_item[i] = bt->hist_item[b * S + pos[k * T + s]];
                    p->ds.sess_cat[i] = bt->hist_cat[b * S + pos[k * T + s]];
                } else {
                    pos[k * T + s] = 0;
                    p->ds.sess_item[i] = p->ds.sess_cat[i] = 0;
                }
            }
    }
    LAP(P_OTHER);
    embed_forward(&p->emb, p->ea, bt->target_item, bt->target_cat, B);
    for (size_t bk = 0; bk < BK; bk++) {
        size_t L = p->ds.sess_len[bk];
        float *x = p->ds.x + bk * T * E;
        embed_forward(&p->emb, x, p->ds.sess_item + bk * T, p->ds.sess_cat + bk * T, L);
        memset(x + L * E, 0, (T - L) * E * sizeof *x);
    }
    LAP(P_EMBED);
    for (size_t bk = 0; bk < BK; bk++) { /* bias encoding */
        size_t L = p->ds.sess_len[bk], k = bk % K;
        float *x = p->ds.x + bk * T * E;
        for (size_t s = 0; s < L; s++) {
            const float kt = p->ds.be_k[k] + p->ds.be_t[s];
            for (size_t d = 0; d < E; d++) x[s * E + d] += kt + p->ds.be_c[d];
        }
    }
    SUB(S_BIAS);
    nn_encoder_forward(p->ds.y, p->ds.enc_saved, p->ds.scratch, p->ds.x, p->ds.sess_len, &p->ds.enc, BK, T, E,
                       c->d_ffn, c->heads);
    for (size_t bk = 0; bk < BK; bk++) { /* I_k: the mean of the block's output over the session */
        size_t L = p->ds.sess_len[bk];
        float *ik = p->ds.ik + bk * E;
        memset(ik, 0, E * sizeof *ik);
        for (size_t s = 0; s < L; s++)
            for (size_t d = 0; d < E; d++) ik[d] += p->ds.y[(bk * T + s) * E + d];
        if (L)
            for (size_t d = 0; d < E; d++) ik[d] /= (float)L;
    }
    SUB(S_ENCODER);
    nn_bilstm_forward(p->ds.hk, NULL, NULL, p->ds.lstm_saved, p->ds.scratch, p->ds.ik, p->ds.n_sess, p->ds.w_ih,
                      p->ds.w_hh, p->ds.b_ih, p->ds.b_hh, B, K, E, H);
    SUB(S_LSTM);
    nn_linear_forward(p->ds.qi, p->ea, p->ds.att_i, NULL, B, E, E);
    nn_linear_forward(p->ds.qh, p->ea, p->ds.att_h, NULL, B, E, H);
    dsin_unit_plain(p->bout, W, p->ds.si, p->ds.ai, p->ds.ik, p->ds.qi, p->ds.n_sess, B, K, E);
    dsin_unit_plain(p->bout + E, W, p->ds.sh, p->ds.ah, p->ds.hk, p->ds.qh, p->ds.n_sess, B, K, H);
    SUB(S_UNITS);
    for (size_t b = 0; b < B; b++) { /* the head's input: [e_a, U^I, U^H] */
        memcpy(p->m_in + b * M, p->ea + b * E, E * sizeof(float));
        memcpy(p->m_in + b * M + E, p->bout + b * W, W * sizeof(float));
    }
    LAP(P_OTHER);
    mlp_head_forward(&p->head, p->logit, p->m_in, B, 0);
    LAP(P_MLP);
#undef SUB
#undef LAP
}

/* One decomposed forward; adds each part's seconds into t[]. */
static void parts_forward(parts *p, const model *md, const request *q, double *t)
{
    if (md->dsin) {
        parts_forward_dsin(p, md, q, t);
        return;
    }
    const model_batch *bt = &q->bt;
    size_t B = bt->b, S = bt->s, E = md->e, M = md->m_in;
    double c0 = now_s(), c1;
#define LAP(part) (c1 = now_s(), t[part] += c1 - c0, c0 = c1)
    if (md->dien) {
        for (size_t b = 0; b < B; b++) p->len[b] = bt->hist_len[b] < S ? bt->hist_len[b] : (uint32_t)S;
        embed_forward(&p->emb, p->ea, bt->target_item, bt->target_cat, B);
        embed_forward(&p->emb, p->es, bt->hist_item, bt->hist_cat, B * S);
        LAP(P_EMBED);
        nn_gru_forward(p->dn.h, NULL, p->dn.gru_saved, p->dn.scratch, p->es, p->len, p->dn.gru_w, p->dn.gru_u,
                       p->dn.gru_b, B, S, E, E);
        nn_linear_forward(p->dn.q, p->ea, p->dn.att_w, NULL, B, E, E);
        for (size_t b = 0; b < B; b++)
            for (size_t s = 0; s < p->len[b]; s++)
                p->dn.sc[b * S + s] = dot_plain(p->dn.h + (b * S + s) * E, p->dn.q + b * E, E);
        nn_softmax_masked_forward(p->dn.att, p->dn.sc, p->len, B, S);
        nn_augru_forward(NULL, p->dn.hfin, p->dn.aug_saved, p->dn.scratch, p->dn.h, p->dn.att, p->len, p->dn.aug_w,
                         p->dn.aug_u, p->dn.aug_b, B, S, E, E);
        LAP(P_ATT);
        for (size_t b = 0; b < B; b++) {
            float *pool = p->dn.pool + b * E, *mi = p->m_in + b * 4 * E;
            const float *ea = p->ea + b * E;
            memset(pool, 0, E * sizeof(float));
            for (size_t s = 0; s < p->len[b]; s++)
                for (size_t d = 0; d < E; d++) pool[d] += p->es[(b * S + s) * E + d];
            for (size_t d = 0; d < E; d++) {
                mi[d] = ea[d];
                mi[E + d] = p->dn.hfin[b * E + d];
                mi[2 * E + d] = pool[d];
                mi[3 * E + d] = ea[d] * pool[d];
            }
        }
        LAP(P_OTHER);
        mlp_head_forward(&p->head, p->logit, p->m_in, B, 0);
        LAP(P_MLP);
        return;
    }
    /* DIN and SIM: the DIN branch over the short-term behaviors */
    size_t r = seq_pack(p->off, p->r_item, p->r_cat, bt->hist_item, bt->hist_cat, bt->hist_len, B, S);
    embed_forward(&p->emb, p->ea, bt->target_item, bt->target_cat, B);
    embed_forward(&p->emb, p->es, p->r_item, p->r_cat, r);
    size_t lr = 0;
    if (bt->k && (md->sim || md->dc.long_avgpool)) {
        lr = seq_pack(p->loff, p->l_item, p->l_cat, bt->long_item, bt->long_cat, bt->long_len, B, bt->k);
        if (md->sim)
            for (size_t b = 0; b < B; b++)
                for (size_t i = p->loff[b]; i < p->loff[b + 1]; i++)
                    p->l_ts[i] = bt->long_ts[b * bt->k + (i - p->loff[b])];
        embed_forward(&p->emb, p->el, p->l_item, p->l_cat, lr);
    }
    LAP(P_EMBED);
    din_unit_forward(&p->unit, p->v, p->ea, p->es, p->off, B);
    LAP(P_ATT);
    if (md->sim) {
        const sim_config *sc = &md->sc;
        size_t nsel = 0;
        if (sc->gsu == SIM_GSU_SOFT) {
            soft_gsu_forward(&p->gsu, p->score, p->ea, p->el, p->loff, B, NULL, NULL, 0);
            soft_gsu_topk(p->sel_off, p->sel, p->topk_scratch, p->score, p->loff, B, sc->topk);
            LAP(P_GSU);
        } else {
            for (size_t b = 0; b < B; b++) {
                p->sel_off[b] = (uint32_t)nsel;
                size_t lo = p->loff[b], hi = p->loff[b + 1];
                if (hi - lo > sc->topk) lo = hi - sc->topk;
                for (size_t i = lo; i < hi; i++) p->sel[nsel++] = (uint32_t)i;
            }
            p->sel_off[B] = (uint32_t)nsel;
        }
        for (size_t b = 0; b < B; b++)
            for (size_t i = p->sel_off[b]; i < p->sel_off[b + 1]; i++) {
                memcpy(p->el_sel + i * E, p->el + (size_t)p->sel[i] * E, E * sizeof(float));
                p->ts_sel[i] = p->l_ts[p->sel[i]];
            }
        LAP(P_OTHER);
        esu_attention_forward(&p->esu, p->ul, p->ea, p->el_sel, p->ts_sel, bt->now, p->sel_off, B);
        LAP(P_ATT);
    } else if (md->dc.long_avgpool) {
        for (size_t b = 0; b < B; b++) {
            float *lp = p->lp + b * E;
            size_t lo = p->loff[b], hi = p->loff[b + 1];
            memset(lp, 0, E * sizeof(float));
            for (size_t i = lo; i < hi; i++)
                for (size_t d = 0; d < E; d++) lp[d] += p->el[i * E + d];
            if (hi > lo)
                for (size_t d = 0; d < E; d++) lp[d] /= (float)(hi - lo);
        }
    }
    size_t U = M - 3 * E;
    for (size_t b = 0; b < B; b++) {
        float *mi = p->m_in + b * M;
        const float *ea = p->ea + b * E, *v = p->v + b * E;
        for (size_t d = 0; d < E; d++) {
            mi[d] = ea[d];
            mi[E + d] = v[d];
            mi[2 * E + d] = ea[d] * v[d];
        }
        if (md->sim)
            memcpy(mi + 3 * E, p->ul + b * U, U * sizeof(float));
        else if (md->dc.long_avgpool)
            memcpy(mi + 3 * E, p->lp + b * E, E * sizeof(float));
    }
    LAP(P_OTHER);
    mlp_head_forward(&p->head, p->logit, p->m_in, B, 0);
    LAP(P_MLP);
    (void)lr;
#undef LAP
}

/* ---- sgemm, as nn_linear_forward calls it: out (M, N) = A (M, K) @ W (N, K)^T ---- */

typedef struct sgemm_result {
    size_t m, n, k;
    double ms, gflops;
} sgemm_result;

static sgemm_result sgemm_bench(size_t m, size_t n, size_t k, int rounds, int nt)
{
    uint64_t r = 99;
    float *a = xmalloc(m * k * sizeof(float)), *w = xmalloc(n * k * sizeof(float)), *c = xmalloc(m * n * sizeof(float));
    for (size_t i = 0; i < m * k; i++) a[i] = (float)unif(&r) - 0.5f;
    for (size_t i = 0; i < n * k; i++) w[i] = (float)unif(&r) - 0.5f;
    double *t = xmalloc((size_t)rounds * sizeof(double));
    for (int i = -WARMUP; i < rounds; i++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, nt ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a,
                    (int)k, w, nt ? (int)k : (int)n, 0.0f, c, (int)n);
        if (i >= 0) t[i] = now_s() - t0;
    }
    sgemm_result res = {m, n, k, 0, 0};
    res.ms = median(t, (size_t)rounds) * 1e3;
    res.gflops = 2.0 * (double)m * (double)n * (double)k / (res.ms * 1e-3) * 1e-9;
    free(a);
    free(w);
    free(c);
    free(t);
    return res;
}

/* ---- the file for the PyTorch side ---- */

static int add_u32(st_writer *w, const char *name, const uint32_t *x, size_t d0, size_t d1)
{
    uint64_t shape[2] = {d0, d1};
    return st_writer_add(w, name, ST_I32, d1 ? 2 : 1, shape, x); /* every id < 2^31 */
}

static int add_i64(st_writer *w, const char *name, const int64_t *x, size_t d0, size_t d1)
{
    uint64_t shape[2] = {d0, d1};
    return st_writer_add(w, name, ST_I64, d1 ? 2 : 1, shape, x);
}

static int meta_u(st_writer *w, const char *key, size_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%zu", v);
    return st_writer_meta(w, key, s);
}

static int write_file(const char *path, const model *md, const request *q, const float *logits)
{
    st_writer *w;
    int rc = st_writer_new(&w);
    if (rc) return rc;
    const din_config *c = &md->dc;
    size_t B = q->b, S = q->s, K = q->k;
    uint64_t lb[1] = {B};
    if (!rc) rc = param_set_save(md->params, w);
    if (!rc) rc = param_set_save(md->buffers, w);
    if (!rc) rc = add_u32(w, "in.target_item", q->target_item, B, 0);
    if (!rc) rc = add_u32(w, "in.target_cat", q->target_cat, B, 0);
    if (!rc) rc = add_u32(w, "in.hist_item", q->hist_item, B, S);
    if (!rc) rc = add_u32(w, "in.hist_cat", q->hist_cat, B, S);
    if (!rc) rc = add_u32(w, "in.hist_len", q->hist_len, B, 0);
    if (!rc && q->hist_ts) rc = add_i64(w, "in.hist_ts", q->hist_ts, B, S);
    if (!rc && K) rc = add_u32(w, "in.long_item", q->long_item, B, K);
    if (!rc && K) rc = add_u32(w, "in.long_cat", q->long_cat, B, K);
    if (!rc && K) rc = add_u32(w, "in.long_len", q->long_len, B, 0);
    if (!rc && K) rc = add_i64(w, "in.long_ts", q->long_ts, B, K);
    if (!rc) rc = add_i64(w, "in.now", q->now, B, 0);
    if (!rc) rc = st_writer_add(w, "out.logits", ST_F32, 1, lb, logits);
    if (!rc) rc = st_writer_meta(w, "kind", kind_names[md->kind]);
    if (!rc) rc = st_writer_meta(w, "generator", "bench/bench_models.c");
    if (!rc) rc = meta_u(w, "n_items", c->n_items);
    if (!rc) rc = meta_u(w, "n_cats", c->n_cats);
    if (!rc) rc = meta_u(w, "d_item", c->d_item);
    if (!rc) rc = meta_u(w, "d_cat", c->d_cat);
    if (!rc) rc = meta_u(w, "att_h1", c->att_h1);
    if (!rc) rc = meta_u(w, "att_h2", c->att_h2);
    if (!rc) rc = meta_u(w, "mlp_h1", c->mlp_h1);
    if (!rc) rc = meta_u(w, "mlp_h2", c->mlp_h2);
    if (!rc) rc = meta_u(w, "att_softmax", (size_t)c->att_softmax);
    if (!rc && md->sim) rc = meta_u(w, "topk", md->sc.topk);
    if (!rc && md->sim) rc = meta_u(w, "heads", md->sc.heads);
    if (!rc && md->sim) rc = meta_u(w, "d_head", md->sc.d_head);
    if (!rc && md->sim) rc = meta_u(w, "d_time", md->sc.d_time);
    if (!rc && md->sim) rc = meta_u(w, "gsu_d", md->sc.gsu_d);
    if (!rc && md->dsin) rc = meta_u(w, "max_sessions", md->ds.max_sessions);
    if (!rc && md->dsin) rc = meta_u(w, "session_len", md->ds.session_len);
    if (!rc && md->dsin) rc = meta_u(w, "min_session_len", md->ds.min_session_len);
    if (!rc && md->dsin) rc = meta_u(w, "session_gap", (size_t)md->ds.session_gap);
    if (!rc && md->dsin) rc = meta_u(w, "heads", md->ds.heads);
    if (!rc && md->dsin) rc = meta_u(w, "d_ffn", md->ds.d_ffn);
    if (!rc && md->dsin) rc = meta_u(w, "d_lstm", md->ds.d_lstm);
    char err[512] = "";
    if (!rc) rc = st_writer_write(w, path, err, sizeof err);
    if (rc) fprintf(stderr, "%s: cannot write: %s (%s)\n", path, lsim_strerror(rc), err);
    st_writer_free(w);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s KIND OUT.safetensors [ROUNDS=30] [B=200] [forward]\n"
                        "  KIND: din, avgpool-din, sim-hard, sim-soft, sim-soft-time, dien, dsin\n",
                argv[0]);
        return 2;
    }
    kind k = N_KINDS;
    for (size_t i = 0; i < N_KINDS; i++)
        if (!strcmp(argv[1], kind_names[i])) k = (kind)i;
    int rounds = argc > 3 ? atoi(argv[3]) : 30;
    size_t B = argc > 4 ? strtoul(argv[4], NULL, 10) : 200;
    int forward_only = argc > 5 && !strcmp(argv[5], "forward");
    if (k == N_KINDS || rounds < 1 || B < 1) {
        fprintf(stderr, "%s: bad arguments (KIND %s, ROUNDS %d, B %zu)\n", argv[0], argv[1], rounds, B);
        return 2;
    }
    nn_init_from_env();
    size_t K = 0;
    if (k == KIND_AVGPOOL_DIN || k == KIND_SIM_HARD) K = LONG_K;
    if (k == KIND_SIM_SOFT || k == KIND_SIM_SOFT_TIME) K = SOFT_LEN;
    request q;
    request_make(&q, B, SHORT_LEN, K, k == KIND_SIM_HARD, k == KIND_DSIN, SEED);
    model md;
    int rc = model_new(&md, k, &q);
    if (rc) {
        fprintf(stderr, "%s: cannot build the model: %s\n", kind_names[k], lsim_strerror(rc));
        return 1;
    }
    float *logits = xmalloc(B * sizeof(float));

    /* the whole forward */
    double *t = xmalloc((size_t)rounds * sizeof(double));
    for (int i = -WARMUP; i < rounds; i++) {
        double t0 = now_s();
        model_forward(&md, &q, logits);
        if (i >= 0) t[i] = now_s() - t0;
    }
    if (forward_only) {
        printf("{\"kind\": \"%s\", \"forward_ms\": %.4f}\n", kind_names[k], median(t, (size_t)rounds) * 1e3);
        free(t);
        free(logits);
        model_free(&md);
        request_free(&q);
        return 0;
    }
    double fwd_min = t[0];
    for (int i = 1; i < rounds; i++) fwd_min = t[i] < fwd_min ? t[i] : fwd_min;
    double fwd_ms = median(t, (size_t)rounds) * 1e3;

    /* the parts */
    parts p;
    parts_new(&p, &md, &q);
    double *pt = xmalloc((size_t)rounds * N_PARTS * sizeof(double)), acc[N_PARTS];
    double *st = xmalloc((size_t)rounds * N_SUBS * sizeof(double));
    for (int i = -WARMUP; i < rounds; i++) {
        memset(acc, 0, sizeof acc);
        memset(p.sub, 0, sizeof p.sub);
        parts_forward(&p, &md, &q, acc);
        if (i >= 0) {
            for (int j = 0; j < N_PARTS; j++) pt[(size_t)j * (size_t)rounds + (size_t)i] = acc[j];
            for (int j = 0; j < N_SUBS; j++) st[(size_t)j * (size_t)rounds + (size_t)i] = p.sub[j];
        }
    }
    double part_ms[N_PARTS], parts_sum = 0, sub_ms[N_SUBS];
    for (int j = 0; j < N_PARTS; j++) {
        part_ms[j] = median(pt + (size_t)j * (size_t)rounds, (size_t)rounds) * 1e3;
        parts_sum += part_ms[j];
    }
    for (int j = 0; j < N_SUBS; j++) sub_ms[j] = median(st + (size_t)j * (size_t)rounds, (size_t)rounds) * 1e3;
    double diff = 0;
    for (size_t i = 0; i < B; i++) diff = fmax(diff, fabs((double)p.logit[i] - (double)logits[i]));

    /* DSIN: the sessions cut here must be the library's (dsin_sessions, of its last forward) */
    double sub_fl[N_SUBS] = {0};
    size_t dsin_rows = 0;
    if (md.dsin) {
        size_t KS = md.ds.max_sessions, TS = md.ds.session_len;
        model_forward(&md, &q, logits);
        for (size_t b = 0; b < B; b++) {
            const uint32_t *len, *pos;
            size_t n = dsin_sessions(md.dsin, b, &len, &pos);
            int same = n == p.ds.n_sess[b];
            for (size_t kk = 0; kk < KS && same; kk++) {
                same = len[kk] == p.ds.sess_len[b * KS + kk];
                for (size_t s = 0; s < len[kk] && same; s++)
                    same = pos[kk * TS + s] == p.ds.sess_pos[(b * KS + kk) * TS + s];
            }
            if (!same) {
                fprintf(stderr, "dsin: the bench's sessions of sample %zu differ from dsin_sessions'\n", b);
                return 1;
            }
        }
        flops_dsin(&md, &q, sub_fl, &dsin_rows);
    }

    /* sgemm: the attention unit's fc1 shape (or DIEN's GRU input projection, or DSIN's
     * FFN first layer over the kept session rows), the head's fc1, and 1024^3 */
    size_t att_m = B * q.s, att_n = md.dien ? 3 * md.e : md.dc.att_h1, att_k = md.dien ? md.e : 4 * md.e;
    if (md.dsin) {
        att_m = dsin_rows;
        att_n = md.ds.d_ffn;
        att_k = md.e;
    }
    sgemm_result g_att = sgemm_bench(att_m, att_n, att_k, rounds, 1);
    sgemm_result g_head = sgemm_bench(B, md.dc.mlp_h1, md.m_in, rounds, 1);
    sgemm_result g_sq = sgemm_bench(1024, 1024, 1024, rounds < 10 ? rounds : 10, 0);

    double fl[N_PARTS], fl_total = 0;
    count_flops(&md, &q, fl);
    for (int j = 0; j < N_PARTS; j++) fl_total += fl[j];

    if (write_file(argv[2], &md, &q, logits)) return 1;

    printf("{\"kind\": \"%s\", \"b\": %zu, \"s\": %zu, \"k\": %zu, \"topk\": %u, \"rounds\": %d, "
           "\"blas_threads\": %d, \"blas_core\": \"%s\", \"reference_forced\": %d, \"e\": %zu, \"head_in\": %zu, "
           "\"forward_ms\": %.4f, \"forward_min_ms\": %.4f, \"parts_sum_ms\": %.4f, \"parts_max_abs_diff\": %.3g, ",
           kind_names[k], B, q.s, q.k, md.sim ? md.sc.topk : 0u, rounds, openblas_get_num_threads(),
           openblas_get_corename(), nn_reference_forced(), md.e, md.m_in, fwd_ms, fwd_min * 1e3, parts_sum, diff);
    printf("\"part_ms\": {");
    for (int j = 0; j < N_PARTS; j++) printf("%s\"%s\": %.4f", j ? ", " : "", part_names[j], part_ms[j]);
    printf("}, \"part_flops\": {");
    for (int j = 0; j < N_PARTS; j++) printf("%s\"%s\": %.0f", j ? ", " : "", part_names[j], fl[j]);
    printf("}, \"part_gflops\": {");
    for (int j = 0; j < N_PARTS; j++)
        printf("%s\"%s\": %.3f", j ? ", " : "", part_names[j], part_ms[j] > 0 ? fl[j] / (part_ms[j] * 1e6) : 0.0);
    printf("}, \"flops\": %.0f, \"gflops\": %.3f, ", fl_total, fl_total / (fwd_ms * 1e6));
    if (md.dsin) { /* the pieces of the attention part, and the sessions of candidate 0 (all alike) */
        printf("\"sub_ms\": {");
        for (int j = 0; j < N_SUBS; j++) printf("%s\"%s\": %.4f", j ? ", " : "", sub_names[j], sub_ms[j]);
        printf("}, \"sub_flops\": {");
        for (int j = 0; j < N_SUBS; j++) printf("%s\"%s\": %.0f", j ? ", " : "", sub_names[j], sub_fl[j]);
        size_t S = q.s, cut = 0, start = 0;
        printf("}, \"dsin_sessions\": {\"all\": [");
        for (size_t j = 1; j <= S; j++) /* every session of the history, before the K / T cut */
            if (j == S || dsin_new_session(q.hist_ts, j, md.ds.session_gap)) {
                printf("%s%zu", cut++ ? ", " : "", j - start);
                start = j;
            }
        printf("], \"kept\": [");
        for (size_t kk = 0; kk < p.ds.n_sess[0]; kk++) printf("%s%u", kk ? ", " : "", p.ds.sess_len[kk]);
        printf("], \"rows\": %zu}, ", dsin_rows);
    }
    printf("\"sgemm\": {\"attention_shape\": [%zu, %zu, %zu], \"attention_gflops\": %.3f, "
           "\"head_shape\": [%zu, %zu, %zu], \"head_gflops\": %.3f, \"square_shape\": [1024, 1024, 1024], "
           "\"square_gflops\": %.3f}}\n",
           g_att.m, g_att.n, g_att.k, g_att.gflops, g_head.m, g_head.n, g_head.k, g_head.gflops, g_sq.gflops);

    free(p.ws);
    free(pt);
    free(st);
    free(t);
    free(logits);
    model_free(&md);
    request_free(&q);
    return 0;
}
