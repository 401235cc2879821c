/*
 * gen_log.c: the synthetic Taobao-format behavior-log generator (see gen_log.h
 * and docs/GENERATOR.md, which writes the generative model down with every
 * constant below).
 *
 * What it is: a sampler of an explicit generative model. A catalog (items in
 * Zipf-popular categories) is built once from (items, categories); then each
 * user is generated on its own, from two PRNG streams seeded by (seed, user):
 *   stream 0, the plan: sequence length, session sizes, within-session
 *             gaps, session start times, and the category of every event
 *             (keep the previous one within a session or by carry-over to
 *             the next, else the user's reinforced theme/category urns);
 *   stream 1, the items: per event, the item from the user's reinforced
 *             item urn of its category, and the type.
 * The plan does not depend on the items, so drawing it first is the same
 * distribution as simulating event by event; it lets the per-category item
 * pools of one user be laid out in one array before the items are drawn.
 * Every draw depends on the user's history and the event's time only (no
 * hidden interests), so the truth (gen_truth_prob) is the next item's exact
 * distribution given what a model with the full history could see.
 *
 * What it is not: a reader, an index, or the "truth" (click probability)
 * output. It keeps no state across users except the catalog and counters.
 *
 * Invariants:
 *   - Deterministic for a params struct on any IEEE-754 double machine that
 *     evaluates in double (FLT_EVAL_METHOD 0, no FMA contraction: C11 mode
 *     does not contract): only +, -, *, /, sqrt, floor, frexp and ldexp are
 *     used on the path to the output; log and exp are computed here
 *     (gen_log_det, gen_exp_det) from those, never by libm.
 *   - Memory: the catalog (about 4 bytes per item, 20 per category, 8 per
 *     rank of the largest category) plus one user's workspace (14 bytes per
 *     event of max_len, 12 per possible session, 24 per category, 4 per
 *     theme); never the whole log.
 *   - Within a session consecutive events are at most GEN_GAP_MAX (1799 s)
 *     apart; consecutive sessions at least GEN_SESS_GAP_MIN (1801 s) apart,
 *     so the 30-minute rule recovers the sessions exactly from timestamps.
 *   - Every timestamp lies in [end_ts - days*86400, end_ts).
 *   - Output: users 1..users ascending, each user's events in time order,
 *     ties in generation order. Never prints, never exits.
 */
#include "loaders/gen_log.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model's constants (docs/GENERATOR.md, "Model constants") ------- */

#define GEN_ID_SPACE 4999999u          /* raw ids are 1 + scramble(index) in [1, 5,000,000) */
#define GEN_ITEMS_PER_USER 20u         /* derived items = max(1000, 20 * users) */
#define GEN_ITEMS_MIN 1000u
#define GEN_ITEMS_PER_CAT 440u         /* derived categories = max(200, items / 440) */
#define GEN_CATS_MIN 200u
#define GEN_MIN_ITEMS_PER_CAT 5u       /* each category gets at least 5 items (if items allow) */
#define GEN_ITEM_ZIPF_S 1.1            /* within-category item popularity exponent */
#define GEN_SESS_SPACING_S 7200        /* sessions per user capped at span / 2 h on average */
#define GEN_SESS_GAP_MIN 1801          /* seconds between a session's last event and the next */
#define GEN_GAP_MEAN_S 90.0            /* within-session gap mean (exponential, floored) */
#define GEN_GAP_MAX 1799               /* within-session gap cap (< 30 min) */
#define GEN_GAP_P_ZERO 0.03            /* share of within-session gaps forced to 0 */
#define GEN_CONC_MAX 1e9               /* bound on the concentrations a, b, beta */
#define GEN_SESS_MEAN_MAX 1e6          /* bound on sess_mean */
#define GEN_CARRY_DAYS_MAX 1e6         /* bound on carry_days */
#define GEN_P_PV 0.89                  /* behavior types: pv 89%, cart 5.5%, fav 3%, buy 2.5% */
#define GEN_P_CART 0.055
#define GEN_P_FAV 0.03
#define GEN_MAX_LEN_LIMIT 10000000u
#define GEN_TS_MAX 4102444800LL        /* end_ts bound: the log readers' default range */

#define GEN_KEY_ITEMS 0x6a09e667f3bcc908ULL /* scramble keys: fixed, not seeded */
#define GEN_KEY_CATS 0xbb67ae8584caa73bULL

#define GEN_OUTBUF (1u << 20)

static const char *const gen_type_name[4] = {"pv", "cart", "fav", "buy"};
static const unsigned char gen_type_len[4] = {2, 4, 3, 3};

/* ---- deterministic arithmetic ------------------------------------------- */

static const double gen_ln2_hi = 6.93147180369123816490e-01; /* high bits of ln 2 */
static const double gen_ln2_lo = 1.90821492927058770002e-10; /* ln 2 - gen_ln2_hi */

/* Series coefficients, each a correctly rounded quotient (so the same double
 * on every IEEE machine, whether folded by the compiler or not). */
static const double gen_atanh_c[12] = {
    1.0 / 1.0,  1.0 / 3.0,  1.0 / 5.0,  1.0 / 7.0,  1.0 / 9.0,  1.0 / 11.0,
    1.0 / 13.0, 1.0 / 15.0, 1.0 / 17.0, 1.0 / 19.0, 1.0 / 21.0, 1.0 / 23.0,
};
static const double gen_exp_c[19] = { /* 1 / n! */
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
    1.0 / 87178291200.0,
    1.0 / 1307674368000.0,
    1.0 / 20922789888000.0,
    1.0 / 355687428096000.0,
    1.0 / 6402373705728000.0,
};

/* Natural log of x > 0 (finite) from IEEE basic operations only:
 * x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m-1)/(m+1),
 * |s| < 0.1716, so 12 terms of the atanh series reach double precision. */
static double gen_log_det(double x)
{
    int e;
    double m = frexp(x, &e);
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    double p = gen_atanh_c[11];
    for (int k = 10; k >= 0; k--) p = gen_atanh_c[k] + s2 * p;
    return (double)e * gen_ln2_hi + ((double)e * gen_ln2_lo + 2.0 * s * p);
}

/* e^x for x <= 700 from IEEE basic operations only: x = k ln2 + r, |r| <= 0.35,
 * Taylor to r^18, then an exact scaling by 2^k. Underflows to 0 below -745. */
static double gen_exp_det(double x)
{
    if (x < -745.0) return 0.0;
    double t = x * 1.44269504088896340736;
    int k = (int)(t < 0 ? t - 0.5 : t + 0.5);
    double r = (x - (double)k * gen_ln2_hi) - (double)k * gen_ln2_lo;
    double p = gen_exp_c[18];
    for (int n = 17; n >= 0; n--) p = gen_exp_c[n] + r * p;
    return ldexp(p, k);
}

/* ---- PRNG: xoshiro256**, seeded by splitmix64 from (seed, user, stream) -- */

typedef struct gen_rng {
    uint64_t s[4];
} gen_rng;

static uint64_t gen_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void gen_rng_seed(gen_rng *r, uint64_t seed, uint64_t user, uint64_t stream)
{
    uint64_t x = gen_mix64(gen_mix64(gen_mix64(seed + 0x9e3779b97f4a7c15ULL) ^ user) ^
                           (stream + 0x632be59bd9b4e019ULL));
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ULL;
        r->s[i] = gen_mix64(x);
    }
}

static inline uint64_t gen_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t gen_next(gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = gen_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = gen_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1), 53 bits. */
static inline double gen_u01(gen_rng *r)
{
    return (double)(gen_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1], 53 bits (safe under log). */
static inline double gen_u01_open0(gen_rng *r)
{
    return (double)((gen_next(r) >> 11) + 1) * 0x1.0p-53;
}

/* Exponential with mean 1. */
static inline double gen_exp1(gen_rng *r)
{
    return -gen_log_det(gen_u01_open0(r));
}

/* Uniform integer in [0, n), n >= 1, by a 53-bit uniform (bias < n 2^-53). */
static inline uint64_t gen_below(gen_rng *r, uint64_t n)
{
    uint64_t v = (uint64_t)(gen_u01(r) * (double)n);
    return v < n ? v : n - 1;
}

/* Smallest index k < n with x < cum[k] (cum non-decreasing); n-1 if none.
 * Branchless: the range [b, b + len) always holds the answer. */
static inline uint32_t gen_search(const double *cum, uint32_t n, double x)
{
    const double *b = cum;
    uint32_t len = n;
    while (len > 1) {
        uint32_t half = len / 2;
        b += (b[half - 1] <= x) ? half : 0;
        len -= half;
    }
    return (uint32_t)(b - cum);
}

/* ---- the catalog --------------------------------------------------------- */

/* A balanced 24-bit Feistel permutation (4 rounds of 12 bits). */
static uint32_t gen_feistel24(uint32_t x, uint64_t key)
{
    uint32_t l = x >> 12, r = x & 0xfffu;
    for (uint64_t round = 0; round < 4; round++) {
        uint32_t f = (uint32_t)(gen_mix64(key + round * 0x9e3779b97f4a7c15ULL + r) & 0xfffu);
        uint32_t nl = r;
        r = l ^ f;
        l = nl;
    }
    return (l << 12) | r;
}

/* The fixed bijection [0, GEN_ID_SPACE) -> [1, 5,000,000): Feistel on 24 bits,
 * cycle-walked back into the domain (a permutation restricted by walking its
 * cycles is a permutation of the subset). */
static uint32_t gen_scramble(uint32_t idx, uint64_t key)
{
    uint32_t y = idx;
    do {
        y = gen_feistel24(y, key);
    } while (y >= GEN_ID_SPACE);
    return y + 1;
}

typedef struct gen_catalog {
    uint32_t n_items, n_cats, max_cat_items;
    uint32_t theme_size, n_themes; /* theme t = categories [t * theme_size, (t + 1) * theme_size) */
    double *cat_cum;     /* (n_cats) cumulative sum of 1/rank, unnormalized */
    double *rank_cum;    /* (max_cat_items) H(k) = sum_{r=1..k+1} r^-1.1, unnormalized */
    uint32_t *cat_first; /* (n_cats + 1) category c owns items [cat_first[c], cat_first[c+1]) */
    uint32_t *item_raw;  /* (n_items) raw item id of each item index */
    uint32_t *cat_raw;   /* (n_cats) raw category id of each category index */
    void *block;
} gen_catalog;

static int gen_catalog_build(gen_catalog *cat, uint32_t n_items, uint32_t n_cats, uint32_t theme_size)
{
    memset(cat, 0, sizeof *cat);
    cat->n_items = n_items;
    cat->n_cats = n_cats;
    cat->theme_size = theme_size < n_cats ? theme_size : n_cats;
    cat->n_themes = (n_cats - 1) / cat->theme_size + 1;

    /* Shares: base b each, the rest by weight 1/sqrt(rank) (popularity^0.5),
     * rounded by cumulative floors so that they sum to n_items exactly. */
    uint32_t base = n_items / n_cats;
    if (base > GEN_MIN_ITEMS_PER_CAT) base = GEN_MIN_ITEMS_PER_CAT;
    uint64_t rest = (uint64_t)n_items - (uint64_t)base * n_cats;

    double wsum = 0;
    for (uint32_t c = 0; c < n_cats; c++) wsum += 1.0 / sqrt((double)(c + 1));

    /* Sizes need the shares first; compute them into a temporary pass. */
    uint32_t max_n = 0;
    {
        double wcum = 0;
        uint64_t prev = 0;
        for (uint32_t c = 0; c < n_cats; c++) {
            wcum += 1.0 / sqrt((double)(c + 1));
            uint64_t cum = (c + 1 == n_cats) ? rest : (uint64_t)floor((double)rest * wcum / wsum);
            if (cum > rest) cum = rest;
            if (cum < prev) cum = prev;
            uint32_t n = base + (uint32_t)(cum - prev);
            if (n > max_n) max_n = n;
            prev = cum;
        }
    }
    cat->max_cat_items = max_n;

    size_t bytes = sizeof(double) * ((size_t)n_cats + max_n) +
                   sizeof(uint32_t) * ((size_t)n_cats + 1 + n_items + n_cats);
    unsigned char *p = malloc(bytes);
    if (!p) return LSIM_E_NOMEM;
    cat->block = p;
    cat->cat_cum = (double *)p;
    p += sizeof(double) * n_cats;
    cat->rank_cum = (double *)p;
    p += sizeof(double) * max_n;
    cat->cat_first = (uint32_t *)p;
    p += sizeof(uint32_t) * ((size_t)n_cats + 1);
    cat->item_raw = (uint32_t *)p;
    p += sizeof(uint32_t) * n_items;
    cat->cat_raw = (uint32_t *)p;

    double wcum = 0, pcum = 0;
    uint64_t prev = 0;
    cat->cat_first[0] = 0;
    for (uint32_t c = 0; c < n_cats; c++) {
        wcum += 1.0 / sqrt((double)(c + 1));
        uint64_t cum = (c + 1 == n_cats) ? rest : (uint64_t)floor((double)rest * wcum / wsum);
        if (cum > rest) cum = rest;
        if (cum < prev) cum = prev;
        cat->cat_first[c + 1] = cat->cat_first[c] + base + (uint32_t)(cum - prev);
        prev = cum;
        pcum += 1.0 / (double)(c + 1); /* Zipf(1.0) over category rank */
        cat->cat_cum[c] = pcum;
        cat->cat_raw[c] = gen_scramble(c, GEN_KEY_CATS);
    }
    double h = 0;
    for (uint32_t k = 0; k < max_n; k++) {
        h += gen_exp_det(-GEN_ITEM_ZIPF_S * gen_log_det((double)(k + 1)));
        cat->rank_cum[k] = h;
    }
    for (uint32_t i = 0; i < n_items; i++) cat->item_raw[i] = gen_scramble(i, GEN_KEY_ITEMS);
    return 0;
}

static void gen_catalog_free(gen_catalog *cat)
{
    free(cat->block);
    cat->block = NULL;
}

/* A category index by Zipf(1.0) popularity. */
static inline uint32_t gen_draw_cat(const gen_catalog *cat, gen_rng *r)
{
    double x = gen_u01(r) * cat->cat_cum[cat->n_cats - 1];
    return gen_search(cat->cat_cum, cat->n_cats, x);
}

/* An item index of category c by Zipf(1.1) over its within-category rank. */
static inline uint32_t gen_draw_item(const gen_catalog *cat, gen_rng *r, uint32_t c)
{
    uint32_t first = cat->cat_first[c], n = cat->cat_first[c + 1] - first;
    double x = gen_u01(r) * cat->rank_cum[n - 1];
    return first + gen_search(cat->rank_cum, n, x);
}

/* A category index of theme t, by popularity restricted to the theme. */
static inline uint32_t gen_draw_cat_in_theme(const gen_catalog *cat, gen_rng *r, uint32_t t)
{
    uint32_t lo = t * cat->theme_size, hi = lo + cat->theme_size;
    if (hi > cat->n_cats) hi = cat->n_cats;
    double base = lo ? cat->cat_cum[lo - 1] : 0.0;
    double x = base + gen_u01(r) * (cat->cat_cum[hi - 1] - base);
    return lo + gen_search(cat->cat_cum + lo, hi - lo, x);
}

/* ---- one user ------------------------------------------------------------ */

/* Workspace for one user, sized once for max_len (events), max_sess and the catalog. */
typedef struct gen_user {
    uint32_t len, n_sess, n_slots;
    uint32_t *sess_size;  /* (max_sess) events per session */
    int64_t *sess_start;  /* (max_sess) seconds from the window's start */
    uint16_t *gap;        /* (max_len) seconds since the previous event; 0 at a session's first */
    uint32_t *ev_cat;     /* (max_len) category index of each event */
    uint32_t *pool;       /* (max_len) past items, grouped by category slot */
    uint32_t *slot_cat;   /* (max_len) category of each slot */
    uint32_t *slot_off;   /* (max_len) slot's first pool index */
    uint32_t *slot_cnt;   /* (max_len) planned events, then items drawn so far */
    int32_t *cat_slot;    /* (n_cats) slot of a category, -1 if the user has none */
    uint32_t *run_cat;    /* (max_len) category of each run so far (a run: a maximal stretch of
                             consecutive events of one category) */
    uint32_t *cat_cnt;    /* (n_cats) the user's events so far per category (0 between users) */
    uint32_t *cat_runs;   /* (n_cats) the user's runs so far per category (0 between users) */
    uint32_t *theme_runs; /* (n_themes) the same per theme */
    void *block;
} gen_user;

static int gen_user_alloc(gen_user *u, uint32_t max_len, uint32_t max_sess, const gen_catalog *cat)
{
    memset(u, 0, sizeof *u);
    /* A user touches at most min(max_len, n_cats) categories: one slot each. */
    size_t n_slots = max_len < cat->n_cats ? max_len : cat->n_cats;
    size_t bytes = sizeof(int64_t) * max_sess + sizeof(uint32_t) * max_sess +
                   sizeof(uint32_t) * (size_t)max_len * 3 + sizeof(uint32_t) * n_slots * 3 +
                   sizeof(int32_t) * (size_t)cat->n_cats * 3 + sizeof(uint32_t) * (size_t)cat->n_themes +
                   sizeof(uint16_t) * (size_t)max_len;
    unsigned char *p = calloc(bytes, 1);
    if (!p) return LSIM_E_NOMEM;
    u->block = p;
    u->sess_start = (int64_t *)p;
    p += sizeof(int64_t) * max_sess;
    u->sess_size = (uint32_t *)p;
    p += sizeof(uint32_t) * max_sess;
    u->ev_cat = (uint32_t *)p;
    p += sizeof(uint32_t) * max_len;
    u->pool = (uint32_t *)p;
    p += sizeof(uint32_t) * max_len;
    u->slot_cat = (uint32_t *)p;
    p += sizeof(uint32_t) * n_slots;
    u->slot_off = (uint32_t *)p;
    p += sizeof(uint32_t) * n_slots;
    u->slot_cnt = (uint32_t *)p;
    p += sizeof(uint32_t) * n_slots;
    u->cat_slot = (int32_t *)p;
    p += sizeof(int32_t) * cat->n_cats;
    u->cat_cnt = (uint32_t *)p;
    p += sizeof(uint32_t) * cat->n_cats;
    u->cat_runs = (uint32_t *)p;
    p += sizeof(uint32_t) * cat->n_cats;
    u->run_cat = (uint32_t *)p;
    p += sizeof(uint32_t) * max_len;
    u->theme_runs = (uint32_t *)p;
    p += sizeof(uint32_t) * cat->n_themes;
    u->gap = (uint16_t *)p;
    for (uint32_t c = 0; c < cat->n_cats; c++) u->cat_slot[c] = -1;
    return 0;
}

static int gen_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Shared, read-only during the user loop. */
typedef struct gen_ctx {
    const gen_log_params *p;
    const gen_catalog *cat;
    int64_t span;     /* days * 86400 */
    uint32_t max_sess; /* hard bound on sessions: (span - 1) / 1801 + 1, and <= max_len */
} gen_ctx;

/* The span and the bound on sessions for p (gen_ctx's derived fields); cat is set by the caller. */
static void gen_ctx_init(gen_ctx *g, const gen_log_params *p)
{
    g->p = p;
    g->cat = NULL;
    g->span = (int64_t)p->days * 86400;
    int64_t ms = (g->span - 1) / GEN_SESS_GAP_MIN + 1;
    g->max_sess = ms < (int64_t)p->max_len ? (uint32_t)ms : p->max_len;
}

/* The probability that a session's first event keeps the category of the
 * user's previous event, dt seconds before: carry exp(-dt / (carry_days days)). */
static double gen_carry(const gen_log_params *p, int64_t dt)
{
    return p->carry * gen_exp_det(-(double)dt / (p->carry_days * 86400.0));
}

/* The category of a user's next event drawn from the reinforced urns
 * (docs/GENERATOR.md, step 6), which count runs, not events: n runs so far
 * (run_cat, cat_runs, theme_runs). A theme with probability
 * (a Pi(t) + n(t)) / (a + n), then a category of it with
 * (b pi(c) / Pi(t) + n(c)) / (b + n(t)). The "+ n" parts are drawn as a
 * uniformly chosen past run's theme, and a category of the theme chosen by
 * its run count. Counting runs makes a preference grow with the times the
 * user came back to it, whatever the sessions' sizes: a heavy user's long
 * sessions do not freeze it on its first categories. */
static uint32_t gen_draw_urn(const gen_user *u, const gen_catalog *cat, const gen_log_params *p, gen_rng *r,
                             uint32_t n)
{
    uint32_t t;
    if (n == 0 || gen_u01(r) * (p->theme_conc + (double)n) < p->theme_conc)
        t = gen_draw_cat(cat, r) / cat->theme_size;
    else
        t = u->run_cat[gen_below(r, n)] / cat->theme_size;
    uint32_t nt = u->theme_runs[t];
    if (nt == 0 || gen_u01(r) * (p->cat_conc + (double)nt) < p->cat_conc) return gen_draw_cat_in_theme(cat, r, t);
    uint32_t x = (uint32_t)gen_below(r, nt), c = t * cat->theme_size;
    while (x >= u->cat_runs[c]) x -= u->cat_runs[c++];
    return c;
}

/* Stream 0: everything but the items. Fills u's plan for user `user_id`. */
static void gen_user_plan(gen_user *u, const gen_ctx *g, uint32_t user_id)
{
    const gen_log_params *p = g->p;
    const gen_catalog *cat = g->cat;
    gen_rng r;
    gen_rng_seed(&r, p->seed, user_id, 0);

    /* Sequence length: Pareto(min_len, alpha) floored, capped; user 1 = max_len. */
    double t = gen_exp1(&r) / p->len_alpha; /* -ln(U) / alpha */
    uint32_t len = p->max_len;
    if (user_id != 1 && t < 700.0) {
        double x = floor((double)p->min_len * gen_exp_det(t));
        if (x < (double)p->max_len) len = (uint32_t)x;
    }
    u->len = len;

    /* Session sizes: geometric (>= 1) with mean max(sess_mean, len / (span / 2 h));
     * the last one is truncated to what remains; at most max_sess sessions. */
    int64_t s_cap = g->span / GEN_SESS_SPACING_S;
    if (s_cap < 1) s_cap = 1;
    double mean = (double)len / (double)s_cap;
    if (mean < p->sess_mean) mean = p->sess_mean;
    uint32_t n_sess = 0, left = len;
    if (mean <= 1.0) { /* sessions of one event each (as many as max_sess allows) */
        while (left > 0) {
            uint32_t size = n_sess + 1 < g->max_sess ? 1 : left;
            u->sess_size[n_sess++] = size;
            left -= size;
        }
    }
    double log_cont = mean > 1.0 ? gen_log_det(1.0 - 1.0 / mean) : -1.0; /* log P(session continues) */
    while (left > 0) {
        uint32_t size = left;
        if (n_sess + 1 < g->max_sess) {
            double k = floor(gen_log_det(gen_u01_open0(&r)) / log_cont);
            if (k + 1.0 < (double)left) size = (uint32_t)k + 1;
        }
        u->sess_size[n_sess++] = size;
        left -= size;
    }
    u->n_sess = n_sess;

    /* Within-session gaps: 3% exactly 0, else floor(Exp(mean g)) capped at
     * 1799 s, g = min(90, span / (2 len)) so that heavy users still fit. */
    double gmean = (double)g->span / (2.0 * (double)len);
    if (gmean > GEN_GAP_MEAN_S) gmean = GEN_GAP_MEAN_S;
    int64_t busy = 0;
    uint32_t e = 0;
    for (uint32_t s = 0; s < n_sess; s++) {
        u->gap[e++] = 0;
        for (uint32_t j = 1; j < u->sess_size[s]; j++) {
            double z = gen_u01(&r);
            double x = gen_exp1(&r) * gmean;
            uint16_t gap = 0;
            if (z >= GEN_GAP_P_ZERO) gap = x >= GEN_GAP_MAX ? GEN_GAP_MAX : (uint16_t)x;
            u->gap[e++] = gap;
            busy += gap;
        }
    }
    /* Fit: sessions' durations plus the minimum spacing must fit in the span;
     * if a rare draw does not, halve every gap until it does. */
    int64_t need = (int64_t)(n_sess - 1) * GEN_SESS_GAP_MIN;
    while (busy + need > g->span - 1) {
        busy = 0;
        for (uint32_t i = 0; i < len; i++) {
            u->gap[i] /= 2;
            busy += u->gap[i];
        }
    }

    /* Session starts: the free time F is spread by n_sess sorted uniform
     * points in [0, F]; start_s = x_(s) + (durations of earlier sessions) +
     * s * 1801, which keeps the spacing and the end before the span's end. */
    int64_t free_s = g->span - 1 - busy - need;
    for (uint32_t s = 0; s < n_sess; s++)
        u->sess_start[s] = (int64_t)gen_below(&r, (uint64_t)free_s + 1);
    qsort(u->sess_start, n_sess, sizeof *u->sess_start, gen_cmp_i64);
    int64_t before = 0;
    e = 0;
    for (uint32_t s = 0; s < n_sess; s++) {
        u->sess_start[s] += before + (int64_t)s * GEN_SESS_GAP_MIN;
        int64_t dur = 0;
        for (uint32_t j = 0; j < u->sess_size[s]; j++) dur += u->gap[e++];
        before += dur;
    }

    /* Categories, event by event: a session's later event keeps the previous
     * event's category with probability sess_stay; a session's first event
     * (but the user's first) keeps it with probability gen_carry(gap since the
     * previous event); otherwise the urns draw it. An event whose category
     * differs from the previous event's starts a run, which the urns count.
     * Slots: one per category the user touches, in order of first use. */
    uint32_t n_slots = 0, n_runs = 0;
    int64_t prev_end = 0;
    e = 0;
    for (uint32_t s = 0; s < n_sess; s++) {
        int64_t ts = u->sess_start[s];
        for (uint32_t j = 0; j < u->sess_size[s]; j++, e++) {
            ts += u->gap[e];
            double keep = j > 0 ? p->sess_stay : e > 0 ? gen_carry(p, ts - prev_end) : 0.0;
            uint32_t c;
            if (e > 0 && gen_u01(&r) < keep)
                c = u->ev_cat[e - 1];
            else
                c = gen_draw_urn(u, cat, p, &r, n_runs);
            u->ev_cat[e] = c;
            if (e == 0 || u->ev_cat[e - 1] != c) {
                u->run_cat[n_runs++] = c;
                u->cat_runs[c]++;
                u->theme_runs[c / cat->theme_size]++;
            }
            if (u->cat_slot[c] < 0) {
                u->cat_slot[c] = (int32_t)n_slots;
                u->slot_cat[n_slots++] = c;
            }
            u->cat_cnt[c]++;
        }
        prev_end = ts;
    }

    /* Each slot's pool range is sized by its category's planned events. */
    uint32_t off = 0;
    for (uint32_t k = 0; k < n_slots; k++) {
        u->slot_off[k] = off;
        off += u->cat_cnt[u->slot_cat[k]];
        u->slot_cnt[k] = 0;
    }
    u->n_slots = n_slots;
}

/* Clears what the plan set in the per-category arrays (cat_slot, cat_cnt, cat_runs, theme_runs). */
static void gen_user_reset(gen_user *u, const gen_catalog *cat)
{
    for (uint32_t k = 0; k < u->n_slots; k++) {
        uint32_t c = u->slot_cat[k];
        u->cat_slot[c] = -1;
        u->cat_cnt[c] = 0;
        u->cat_runs[c] = 0;
        u->theme_runs[c / cat->theme_size] = 0;
    }
    u->n_slots = 0;
}

/* ---- output -------------------------------------------------------------- */

typedef struct gen_out {
    FILE *f;
    char *buf;
    size_t len;
    int failed;
    int err_no;
} gen_out;

static void gen_out_flush(gen_out *o)
{
    if (o->len && !o->failed) {
        if (fwrite(o->buf, 1, o->len, o->f) != o->len) {
            o->failed = 1;
            o->err_no = errno;
        }
    }
    o->len = 0;
}

static const char gen_digits2[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

/* Writes v in decimal at d; returns the end. */
static inline char *gen_put_u64(char *d, uint64_t v)
{
    int n = 1;
    for (uint64_t t = v; t >= 10; t /= 10) n++;
    char *end = d + n, *q = end;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        q -= 2;
        memcpy(q, gen_digits2 + 2 * r, 2);
    }
    if (v >= 10) {
        q -= 2;
        memcpy(q, gen_digits2 + 2 * v, 2);
    } else {
        *--q = (char)('0' + v);
    }
    return end;
}

/* One event of category c: the item from the category's reinforced urn,
 * p(i) = (beta q(i) + n(i)) / (beta + n(c)) (a fresh draw from q with
 * probability beta / (beta + n(c)), else the item of one of the user's n(c)
 * earlier events in c, uniformly), and the type. The only code that draws
 * from stream 1: the log and the truth replay share it. */
static inline uint32_t gen_next_item(gen_user *u, const gen_catalog *cat, gen_rng *r, double beta, uint32_t c,
                                     int *type)
{
    uint32_t slot = (uint32_t)u->cat_slot[c];
    uint32_t *pool = u->pool + u->slot_off[slot];
    uint32_t n = u->slot_cnt[slot];
    uint32_t it;
    if (n > 0 && gen_u01(r) * (beta + (double)n) >= beta)
        it = pool[gen_below(r, n)];
    else
        it = gen_draw_item(cat, r, c);
    pool[n] = it;
    u->slot_cnt[slot] = n + 1;
    double z = gen_u01(r);
    *type = z < GEN_P_PV ? 0
            : z < GEN_P_PV + GEN_P_CART ? 1
            : z < GEN_P_PV + GEN_P_CART + GEN_P_FAV ? 2
            : 3;
    return it;
}

/* Stream 1: the items and types, written as they are drawn. */
static void gen_user_items(gen_user *u, const gen_ctx *g, uint32_t user_id, gen_out *o,
                           uint8_t *item_seen, uint8_t *cat_seen, uint64_t *items_used)
{
    const gen_catalog *cat = g->cat;
    gen_rng r;
    gen_rng_seed(&r, g->p->seed, user_id, 1);
    int64_t t0 = g->p->end_ts - g->span;

    char ubuf[16];
    size_t ulen = (size_t)(gen_put_u64(ubuf, user_id) - ubuf);
    ubuf[ulen++] = ',';

    uint32_t e = 0;
    for (uint32_t s = 0; s < u->n_sess; s++) {
        int64_t ts = t0 + u->sess_start[s];
        for (uint32_t j = 0; j < u->sess_size[s]; j++, e++) {
            ts += u->gap[e];
            uint32_t c = u->ev_cat[e], craw = cat->cat_raw[c];
            cat_seen[c >> 3] |= (uint8_t)(1u << (c & 7));
            int type;
            uint32_t it = gen_next_item(u, cat, &r, g->p->item_conc, c, &type);
            if (!(item_seen[it >> 3] & (1u << (it & 7)))) {
                item_seen[it >> 3] |= (uint8_t)(1u << (it & 7));
                (*items_used)++;
            }

            if (GEN_OUTBUF - o->len < 96) gen_out_flush(o);
            char *d = o->buf + o->len;
            memcpy(d, ubuf, ulen);
            d += ulen;
            d = gen_put_u64(d, cat->item_raw[it]);
            *d++ = ',';
            d = gen_put_u64(d, craw);
            *d++ = ',';
            memcpy(d, gen_type_name[type], gen_type_len[type]);
            d += gen_type_len[type];
            *d++ = ',';
            d = gen_put_u64(d, (uint64_t)ts);
            *d++ = '\n';
            o->len = (size_t)(d - o->buf);
        }
    }
}

/* ---- the public (private-header) functions ------------------------------- */

void gen_log_params_default(gen_log_params *p)
{
    memset(p, 0, sizeof *p);
    p->seed = 1;
    p->users = 1000;
    p->items = 0;
    p->categories = 0;
    p->min_len = 100;
    p->max_len = 54000;
    p->len_alpha = 1.1;
    p->days = 180;
    p->end_ts = 1512345600; /* 2017-12-04 00:00:00 UTC */
    p->theme_size = 1;
    p->theme_conc = 5.0;
    p->cat_conc = 2.0;
    p->item_conc = 20.0;
    p->sess_stay = 1.0;
    p->sess_mean = 6.0;
    p->carry = 0.3;
    p->carry_days = 1.0;
}

/* The catalog sizes after deriving zeros (see docs/GENERATOR.md). */
static void gen_derive(const gen_log_params *p, uint64_t *items, uint64_t *cats)
{
    uint64_t it = p->items, ca = p->categories;
    if (it == 0) {
        it = (uint64_t)GEN_ITEMS_PER_USER * p->users;
        if (it < GEN_ITEMS_MIN) it = GEN_ITEMS_MIN;
        if (it < (uint64_t)GEN_MIN_ITEMS_PER_CAT * ca) it = (uint64_t)GEN_MIN_ITEMS_PER_CAT * ca;
        if (it > GEN_ID_SPACE) it = GEN_ID_SPACE;
    }
    if (ca == 0) {
        ca = it / GEN_ITEMS_PER_CAT;
        if (ca < GEN_CATS_MIN) ca = GEN_CATS_MIN;
        if (ca > it) ca = it;
    }
    *items = it;
    *cats = ca;
}

static int gen_validate(const gen_log_params *p, char *err, size_t errlen)
{
    if (p->users < 1) return err_set(err, errlen, LSIM_E_INVAL, "gen log: users must be >= 1");
    if (p->min_len < 1)
        return err_set(err, errlen, LSIM_E_INVAL, "gen log: min_len must be >= 1");
    if (p->max_len > GEN_MAX_LEN_LIMIT)
        return err_set(err, errlen, LSIM_E_INVAL, "gen log: max_len %u exceeds %u", p->max_len,
                       GEN_MAX_LEN_LIMIT);
    if (p->min_len > p->max_len)
        return err_set(err, errlen, LSIM_E_INVAL, "gen log: min_len %u > max_len %u", p->min_len,
                       p->max_len);
    if (!(p->len_alpha > 0.0) || !isfinite(p->len_alpha))
        return err_set(err, errlen, LSIM_E_INVAL,
                       "gen log: len_alpha must be a finite number > 0 (got %g)", p->len_alpha);
    if (p->days < 1) return err_set(err, errlen, LSIM_E_INVAL, "gen log: days must be >= 1");
    int64_t span = (int64_t)p->days * 86400;
    if (p->end_ts > GEN_TS_MAX || p->end_ts - span < 0)
        return err_set(err, errlen, LSIM_E_INVAL,
                       "gen log: the window [end_ts - days*86400, end_ts) = [%lld, %lld) must "
                       "lie within [0, %lld]",
                       (long long)(p->end_ts - span), (long long)p->end_ts,
                       (long long)GEN_TS_MAX);
    if (p->theme_size < 1) return err_set(err, errlen, LSIM_E_INVAL, "gen log: theme_size must be >= 1");
    const struct { const char *name; double v; } conc[3] = {
        {"theme_conc", p->theme_conc}, {"cat_conc", p->cat_conc}, {"item_conc", p->item_conc}};
    for (int k = 0; k < 3; k++)
        if (!(conc[k].v > 0.0) || !(conc[k].v <= GEN_CONC_MAX))
            return err_set(err, errlen, LSIM_E_INVAL, "gen log: %s must be in (0, %g] (got %g)", conc[k].name,
                           GEN_CONC_MAX, conc[k].v);
    if (!(p->sess_stay >= 0.0) || !(p->sess_stay <= 1.0))
        return err_set(err, errlen, LSIM_E_INVAL, "gen log: sess_stay must be in [0, 1] (got %g)", p->sess_stay);
    if (!(p->carry >= 0.0) || !(p->carry <= 1.0))
        return err_set(err, errlen, LSIM_E_INVAL, "gen log: carry must be in [0, 1] (got %g)", p->carry);
    if (!(p->carry_days > 0.0) || !(p->carry_days <= GEN_CARRY_DAYS_MAX))
        return err_set(err, errlen, LSIM_E_INVAL, "gen log: carry_days must be in (0, %g] (got %g)",
                       GEN_CARRY_DAYS_MAX, p->carry_days);
    if (!(p->sess_mean >= 1.0) || !(p->sess_mean <= GEN_SESS_MEAN_MAX))
        return err_set(err, errlen, LSIM_E_INVAL, "gen log: sess_mean must be in [1, %g] (got %g)",
                       GEN_SESS_MEAN_MAX, p->sess_mean);
    uint64_t items, cats;
    gen_derive(p, &items, &cats);
    if (items > GEN_ID_SPACE)
        return err_set(err, errlen, LSIM_E_INVAL,
                       "gen log: items %llu exceeds the id space of %u",
                       (unsigned long long)items, GEN_ID_SPACE);
    if (cats > GEN_ID_SPACE)
        return err_set(err, errlen, LSIM_E_INVAL,
                       "gen log: categories %llu exceeds the id space of %u",
                       (unsigned long long)cats, GEN_ID_SPACE);
    if (cats < 1 || items < cats)
        return err_set(err, errlen, LSIM_E_INVAL,
                       "gen log: items (%llu) must be >= categories (%llu) >= 1",
                       (unsigned long long)items, (unsigned long long)cats);
    return 0;
}

int gen_log_write(FILE *out, const gen_log_params *p, gen_log_summary *summary, char *err,
                  size_t errlen)
{
    if (summary) memset(summary, 0, sizeof *summary);
    if (!out || !p) return err_set(err, errlen, LSIM_E_INVAL, "gen log: NULL out or params");
    int rc = gen_validate(p, err, errlen);
    if (rc) return rc;

    uint64_t n_items, n_cats;
    gen_derive(p, &n_items, &n_cats);

    gen_ctx g;
    gen_ctx_init(&g, p);

    gen_catalog cat;
    gen_user u;
    gen_out o = {out, NULL, 0, 0, 0};
    uint8_t *item_seen = NULL, *cat_seen = NULL;
    memset(&u, 0, sizeof u);
    rc = gen_catalog_build(&cat, (uint32_t)n_items, (uint32_t)n_cats, p->theme_size);
    if (rc) return err_set(err, errlen, rc, "gen log: out of memory for the catalog");
    g.cat = &cat;
    rc = gen_user_alloc(&u, p->max_len, g.max_sess, &cat);
    o.buf = malloc(GEN_OUTBUF);
    item_seen = calloc(n_items / 8 + 1, 1);
    cat_seen = calloc(n_cats / 8 + 1, 1);
    if (rc || !o.buf || !item_seen || !cat_seen) {
        rc = err_set(err, errlen, LSIM_E_NOMEM,
                     "gen log: out of memory for a user's workspace (max_len %u)", p->max_len);
        goto done;
    }

    uint64_t events = 0, items_used = 0;
    uint32_t longest = 0;
    for (uint32_t user = 1; user <= p->users && !o.failed; user++) {
        gen_user_plan(&u, &g, user);
        gen_user_items(&u, &g, user, &o, item_seen, cat_seen, &items_used);
        gen_user_reset(&u, &cat);
        events += u.len;
        if (u.len > longest) longest = u.len;
        if (user == UINT32_MAX) break;
    }
    gen_out_flush(&o);
    if (!o.failed && fflush(out) != 0) {
        o.failed = 1;
        o.err_no = errno;
    }
    if (o.failed) {
        rc = err_set(err, errlen, LSIM_E_IO, "gen log: write failed: %s", strerror(o.err_no));
        goto done;
    }
    if (summary) {
        uint64_t cats_used = 0;
        for (uint64_t c = 0; c < n_cats; c++) cats_used += (cat_seen[c >> 3] >> (c & 7)) & 1u;
        summary->events = events;
        summary->users = p->users;
        summary->items_used = items_used;
        summary->categories_used = cats_used;
        summary->longest = longest;
    }
    rc = 0;
done:
    free(item_seen);
    free(cat_seen);
    free(o.buf);
    free(u.block);
    gen_catalog_free(&cat);
    return rc;
}

double gen_log_expected_len(const gen_log_params *p)
{
    if (!p || p->min_len < 1 || p->max_len < p->min_len || !(p->len_alpha > 0.0) ||
        !isfinite(p->len_alpha))
        return 0.0;
    /* E[min(M, floor(m U^(-1/a)))] = sum_{k=1..M} P(m U^(-1/a) >= k)
     *                               = m + sum_{k=m+1..M} (m/k)^a.
     * Summed term by term up to 200,000 terms past m, then Euler-Maclaurin. */
    double m = p->min_len, a = p->len_alpha;
    uint64_t lo = (uint64_t)p->min_len + 1, hi = p->max_len;
    uint64_t direct_end = lo + 200000;
    if (direct_end > hi) direct_end = hi;
    double sum = 0;
    uint64_t k;
    for (k = lo; k <= direct_end; k++) sum += pow(m / (double)k, a);
    if (k <= hi) {
        double A = (double)k, B = (double)hi;
        double integral = (a == 1.0) ? log(B / A)
                                     : (expm1((1.0 - a) * log(A)) - expm1((1.0 - a) * log(B))) /
                                           (a - 1.0);
        double tail = integral + 0.5 * (pow(A, -a) + pow(B, -a)) +
                      a / 12.0 * (pow(A, -a - 1.0) - pow(B, -a - 1.0));
        sum += pow(m, a) * tail;
    }
    return m + sum;
}

/* ---- the truth: p(next item | the generator's state) --------------------- */

struct gen_truth {
    gen_log_params p;
    gen_ctx g;
    gen_catalog cat;
    gen_user u;
    uint32_t user;      /* the user replayed in u / items / ts (0: none) */
    uint32_t *items;    /* (max_len) item index of each event */
    int64_t *ts;        /* (max_len) */
    uint32_t *ev_sess;  /* (max_len) session of each event */
    uint32_t *by_raw;   /* (n_items) item indices sorted by raw id */
};

void gen_log_derive(gen_log_params *p)
{
    uint64_t it, ca;
    gen_derive(p, &it, &ca);
    p->items = (uint32_t)it;
    p->categories = (uint32_t)ca;
}

int gen_log_check(const gen_log_params *p, char *err, size_t errlen)
{
    return gen_validate(p, err, errlen);
}

static int gen_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

size_t gen_truth_catalog(const gen_truth *t, const uint32_t **item_raw)
{
    *item_raw = t->cat.item_raw;
    return t->cat.n_items;
}

int gen_truth_new(gen_truth **out, const gen_log_params *p, char *err, size_t errlen)
{
    *out = NULL;
    int rc = gen_validate(p, err, errlen);
    if (rc) return rc;
    gen_truth *t = calloc(1, sizeof *t);
    if (!t) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    t->p = *p;
    uint64_t n_items, n_cats;
    gen_derive(p, &n_items, &n_cats);
    gen_ctx_init(&t->g, &t->p);
    rc = gen_catalog_build(&t->cat, (uint32_t)n_items, (uint32_t)n_cats, p->theme_size);
    t->g.cat = &t->cat;
    if (!rc) rc = gen_user_alloc(&t->u, p->max_len, t->g.max_sess, &t->cat);
    t->items = malloc((size_t)p->max_len * sizeof *t->items);
    t->ts = malloc((size_t)p->max_len * sizeof *t->ts);
    t->ev_sess = malloc((size_t)p->max_len * sizeof *t->ev_sess);
    t->by_raw = malloc(n_items * sizeof *t->by_raw);
    if (rc || !t->items || !t->ts || !t->ev_sess || !t->by_raw) {
        gen_truth_free(t);
        return err_set(err, errlen, LSIM_E_NOMEM, "gen truth: out of memory (max_len %u)", p->max_len);
    }
    uint64_t *key = malloc(n_items * sizeof *key); /* (raw << 32 | index), sorted */
    if (!key) {
        gen_truth_free(t);
        return err_set(err, errlen, LSIM_E_NOMEM, "gen truth: out of memory");
    }
    for (uint32_t i = 0; i < n_items; i++) key[i] = (uint64_t)t->cat.item_raw[i] << 32 | i;
    qsort(key, n_items, sizeof *key, gen_cmp_u64);
    for (uint32_t i = 0; i < n_items; i++) t->by_raw[i] = (uint32_t)key[i];
    free(key);
    *out = t;
    return 0;
}

void gen_truth_free(gen_truth *t)
{
    if (!t) return;
    free(t->u.block);
    gen_catalog_free(&t->cat);
    free(t->items);
    free(t->ts);
    free(t->ev_sess);
    free(t->by_raw);
    free(t);
}

/* Replays user `user` (its plan, then its items exactly as the log drew them). */
static void truth_replay(gen_truth *t, uint32_t user)
{
    gen_user *u = &t->u;
    if (t->user) gen_user_reset(u, &t->cat);
    t->user = 0;
    gen_user_plan(u, &t->g, user);
    gen_rng r;
    gen_rng_seed(&r, t->p.seed, user, 1);
    int64_t t0 = t->p.end_ts - t->g.span;
    uint32_t e = 0;
    for (uint32_t s = 0; s < u->n_sess; s++) {
        int64_t ts = t0 + u->sess_start[s];
        for (uint32_t j = 0; j < u->sess_size[s]; j++, e++) {
            int type;
            ts += u->gap[e];
            t->items[e] = gen_next_item(u, &t->cat, &r, t->p.item_conc, u->ev_cat[e], &type);
            t->ts[e] = ts;
            t->ev_sess[e] = s;
        }
    }
    t->user = user;
}

static uint32_t cat_of_item(const gen_catalog *cat, uint32_t it)
{
    uint32_t lo = 0, hi = cat->n_cats; /* the last c with cat_first[c] <= it */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cat->cat_first[mid] <= it) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Sum of the unnormalized popularity 1/rank over categories [lo, hi). */
static double cum_range(const gen_catalog *cat, uint32_t lo, uint32_t hi)
{
    return cat->cat_cum[hi - 1] - (lo ? cat->cat_cum[lo - 1] : 0.0);
}

int gen_truth_prob(gen_truth *t, uint32_t user, int64_t ts, uint32_t item_raw, double *prob)
{
    *prob = 0;
    if (user < 1 || user > t->p.users) return LSIM_E_NOTFOUND;
    if (t->user != user) truth_replay(t, user);
    const gen_user *u = &t->u;
    const gen_catalog *cat = &t->cat;
    size_t lo = 0, hi = u->len; /* j: the first event at or after ts */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->ts[mid] < ts) lo = mid + 1;
        else hi = mid;
    }
    size_t j = lo;
    if (j == u->len) return LSIM_E_NOTFOUND;
    lo = 0, hi = cat->n_items; /* the item's index from its raw id */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cat->item_raw[t->by_raw[mid]] < item_raw) lo = mid + 1;
        else hi = mid;
    }
    if (lo == cat->n_items || cat->item_raw[t->by_raw[lo]] != item_raw) return 0; /* not in the catalog: 0 */
    uint32_t it = t->by_raw[lo], c = cat_of_item(cat, it), th = c / cat->theme_size;
    uint64_t n_c = 0, n_i = 0, runs = 0, runs_c = 0, runs_t = 0; /* events; runs (see gen_draw_urn) */
    for (size_t e = 0; e < j; e++) {
        n_c += u->ev_cat[e] == c;
        n_i += t->items[e] == it;
        if (e == 0 || u->ev_cat[e - 1] != u->ev_cat[e]) {
            runs++;
            runs_c += u->ev_cat[e] == c;
            runs_t += u->ev_cat[e] / cat->theme_size == th;
        }
    }
    const gen_log_params *p = &t->p;
    uint32_t tlo = th * cat->theme_size, thi = tlo + cat->theme_size;
    if (thi > cat->n_cats) thi = cat->n_cats;
    double pi_t = cum_range(cat, tlo, thi) / cat->cat_cum[cat->n_cats - 1];
    double pi_c_in_t = cum_range(cat, c, c + 1) / cum_range(cat, tlo, thi);
    double urn = (p->theme_conc * pi_t + (double)runs_t) / (p->theme_conc + (double)runs) *
                 (p->cat_conc * pi_c_in_t + (double)runs_c) / (p->cat_conc + (double)runs_t);
    double p_cat = urn;
    if (j > 0) { /* keep the previous event's category, within a session or carried over to the next */
        double keep = t->ev_sess[j - 1] == t->ev_sess[j] ? p->sess_stay : gen_carry(p, t->ts[j] - t->ts[j - 1]);
        p_cat = keep * (u->ev_cat[j - 1] == c ? 1.0 : 0.0) + (1.0 - keep) * urn;
    }
    uint32_t first = cat->cat_first[c], n_in = cat->cat_first[c + 1] - first, r = it - first;
    double q = (cat->rank_cum[r] - (r ? cat->rank_cum[r - 1] : 0.0)) / cat->rank_cum[n_in - 1];
    *prob = p_cat * (p->item_conc * q + (double)n_i) / (p->item_conc + (double)n_c);
    return 0;
}
