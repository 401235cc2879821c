/*
 * fuzz_score.c: libFuzzer target for the request engine (include/lsim.h):
 * lsim_score and lsim_explain fed random requests against a small index.
 *
 * Once per process (LLVMFuzzerInitialize): a generated log (lsim gen log's
 * generator, 24 users) plus a few hand-written edge lines (ids of 255 bytes,
 * bytes that are not UTF-8, events at time 0 and at the last time a log may
 * hold, duplicate lines) is built into an index under /tmp; checkpoints with
 * random weights are written for every model kind, some with a vocabulary
 * smaller or larger than the index's; engines are opened over them with
 * several settings (soft search exact, approximate and through FAISS; a
 * long-before-short SIM hard; tiny windows). Removed at exit.
 *
 * Each input is one request: the first byte picks the engine, the rest
 * decodes into the user (known, unknown, raw bytes, NULL, too long), `now`
 * (any int64, the index's first and last times, the max_future limit and
 * its neighbours), the candidate count (0 .. above max_candidates) and each
 * candidate's item and category (known, unknown, raw bytes, empty, NULL,
 * longer than LSIM_MAX_ID_LEN). Checked:
 *   - lsim_score returns exactly what the contract predicts for the request:
 *     LSIM_E_INVAL (with a detail) for a bad one, 0 for a good one (the
 *     index is sound, so no other code);
 *   - on 0 every score is finite and in [0, 1], repeats of a candidate score
 *     the same, and the same request scored again gives the same bits;
 *   - on an error nothing is written to the scores;
 *   - the context stays usable: a fixed request scored after every error
 *     (and every 16th input) gives the bits it gave when the engine was opened;
 *   - lsim_explain (a SIM engine): the same verdict; its score is the score
 *     of a request of that one candidate; at most K picks, the attention
 *     finite, >= 0, summing to 1, every pick before `now`; any other model
 *     kind gives LSIM_E_INVAL.
 * One input in sixteen (first byte 0xf0 and up) opens a fresh engine over
 * one of the checkpoints with settings from the input (each field in range
 * or just outside it, approx_fraction any float): lsim_engine_open refuses
 * exactly the bad ones with LSIM_E_INVAL; a request is then scored in two
 * contexts of the new engine, which must agree to the bit.
 */
#include "fuzz_util.h"

#include "esu/model.h"
#include "index/index_internal.h"
#include "index/index_write.h"
#include "loaders/gen_log.h"

#include <cblas.h>
#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <time.h>

enum { MAX_CAND = 48, N_CAND_BUF = 1100, REF_N = 6 };

typedef struct fuzz_engine {
    const char *name;
    model_kind kind;
    int d_time_off, long_before_short, vocab_shift; /* shift: -1 half the index's vocabulary, 1 twice */
    uint32_t short_len, long_max;                    /* settings (0: the checkpoint's) */
    int soft_search;
    lsim_engine *e;
    lsim_ctx *c;
    int sim;
    float ref[REF_N]; /* the fixed request's scores at open */
} fuzz_engine;

static fuzz_engine g_eng[] = {
    {.name = "sim-hard", .kind = MODEL_SIM_HARD},
    {.name = "sim-hard-lbs", .kind = MODEL_SIM_HARD, .long_before_short = 1},
    {.name = "sim-hard-notime-small", .kind = MODEL_SIM_HARD, .d_time_off = 1, .vocab_shift = -1},
    {.name = "sim-soft", .kind = MODEL_SIM_SOFT},
    {.name = "sim-soft-approx", .kind = MODEL_SIM_SOFT, .soft_search = LSIM_SOFT_APPROX},
    {.name = "sim-soft-faiss", .kind = MODEL_SIM_SOFT, .soft_search = LSIM_SOFT_FAISS},
    {.name = "sim-soft-lbs-tiny", .kind = MODEL_SIM_SOFT, .long_before_short = 1, .short_len = 1, .long_max = 1},
    {.name = "sim-soft-small", .kind = MODEL_SIM_SOFT, .vocab_shift = -1, .soft_search = LSIM_SOFT_APPROX},
    {.name = "din", .kind = MODEL_DIN},
    {.name = "din-big", .kind = MODEL_DIN, .vocab_shift = 1, .short_len = 1},
    {.name = "avgpool-din", .kind = MODEL_AVGPOOL_DIN},
    {.name = "avgpool-din-lbs", .kind = MODEL_AVGPOOL_DIN, .long_before_short = 1, .long_max = 3},
    {.name = "dien", .kind = MODEL_DIEN},
    {.name = "dsin", .kind = MODEL_DSIN},
    {.name = "bst", .kind = MODEL_BST},
    {.name = "mimn", .kind = MODEL_MIMN},
};
enum { N_ENG = sizeof g_eng / sizeof g_eng[0] };

static char g_dir[64];
static int64_t g_first, g_last;          /* the index's first and last event times */
static const char **g_users, **g_items, **g_cats;
static uint32_t g_n_users, g_n_items, g_n_cats;
static lsim_index *g_ix;                 /* kept open: the known ids point into its vocabulary */
static char g_big[10240];                /* 'x' * 10240: ids too long */
static lsim_candidate g_ref_cand[REF_N];

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_score: %s: %s\n", what, detail ? detail : "");
    abort();
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void cleanup(void)
{
    for (size_t i = 0; i < N_ENG; i++) {
        lsim_ctx_free(g_eng[i].c);
        lsim_engine_close(g_eng[i].e);
    }
    lsim_index_close(g_ix);
    free(g_users), free(g_items), free(g_cats);
    if (g_dir[0]) nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_log(const char *path)
{
    gen_log_params p;
    gen_log_params_default(&p);
    p.users = 24;
    p.items = 400;
    p.categories = 12;
    p.min_len = 3;
    p.max_len = 600;
    p.days = 30;
    char err[512];
    FILE *f = fopen(path, "w");
    if (!f) die("fopen", path);
    if (gen_log_write(f, &p, NULL, err, sizeof err)) die("gen log", err);
    /* edge lines: the longest ids, bytes that are not UTF-8, the ends of the time range, duplicates */
    char id[LSIM_MAX_ID_LEN + 1];
    memset(id, 'u', LSIM_MAX_ID_LEN);
    id[LSIM_MAX_ID_LEN] = 0;
    fprintf(f, "%s,1,1,pv,0\n", id);
    fprintf(f, "%s,%.*s,%.*s,buy,1\n", id, LSIM_MAX_ID_LEN, g_big, LSIM_MAX_ID_LEN, g_big);
    for (int i = 0; i < 3; i++) fprintf(f, "\xff\xfe u,\xc3(,\x80,cart,1500000000\n");
    fprintf(f, "edge,\xe2\x82,7,fav,4102444799\n");
    fprintf(f, "edge,1,7,pv,1\n");
    fprintf(f, "1,%.*s,%.*s,pv,1511000000\n", LSIM_MAX_ID_LEN, g_big, LSIM_MAX_ID_LEN, g_big);
    if (fclose(f)) die("fclose", path);
}

static void write_checkpoint(fuzz_engine *fe, const char *path, uint32_t n_items, uint32_t n_cats)
{
    if (fe->vocab_shift < 0) n_items /= 2, n_cats /= 2;
    if (fe->vocab_shift > 0) n_items *= 2, n_cats *= 2;
    model_spec spec;
    model_spec_default(&spec, fe->kind, n_items, n_cats);
    if (fe->kind == MODEL_SIM_HARD || fe->kind == MODEL_SIM_SOFT) spec.topk = 8;
    model_spec_time_info(&spec, !fe->d_time_off, MODEL_RECENCY_ALL);
    model *m;
    char err[512];
    if (model_new(&m, &spec, 1, 20, 64)) die("model_new", fe->name);
    model_init(m, 7);
    const char *extra[] = {"lsim.short_len", "20", "lsim.long_max", "200", "lsim.long_before_short",
                           fe->long_before_short ? "1" : "0", NULL};
    if (model_save(m, path, extra, err, sizeof err)) die("model_save", err);
    model_free(m);
}

static void collect_ids(void)
{
    lsim_index_reader *rd;
    if (lsim_index_reader_new(g_ix, &rd) || index_time_range(rd, &g_first, &g_last)) die("index_time_range", NULL);
    lsim_index_reader_free(rd);
    g_n_users = vocab_size(g_ix->voc[IX_USER]);
    g_n_items = vocab_size(g_ix->voc[IX_ITEM]);
    g_n_cats = vocab_size(g_ix->voc[IX_CAT]);
    g_users = malloc(g_n_users * sizeof *g_users);
    g_items = malloc(g_n_items * sizeof *g_items);
    g_cats = malloc(g_n_cats * sizeof *g_cats);
    if (!g_users || !g_items || !g_cats) die("malloc", NULL);
    for (uint32_t i = 0; i < g_n_users; i++) g_users[i] = vocab_str(g_ix->voc[IX_USER], i);
    for (uint32_t i = 0; i < g_n_items; i++) g_items[i] = vocab_str(g_ix->voc[IX_ITEM], i);
    for (uint32_t i = 0; i < g_n_cats; i++) g_cats[i] = vocab_str(g_ix->voc[IX_CAT], i);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    openblas_set_num_threads(1);
    memset(g_big, 'x', sizeof g_big);
    snprintf(g_dir, sizeof g_dir, "/tmp/lsim_fuzz_score_XXXXXX");
    if (!mkdtemp(g_dir)) die("mkdtemp", g_dir);
    atexit(cleanup);
    char log[128], idx[128], err[LSIM_ERRLEN];
    snprintf(log, sizeof log, "%s/log.csv", g_dir);
    snprintf(idx, sizeof idx, "%s/idx", g_dir);
    write_log(log);
    ubt_write_opts o;
    ubt_write_result res;
    const char *inputs[1] = {log};
    ubt_write_opts_default(&o);
    o.inputs = inputs;
    o.n_inputs = 1;
    o.mapsize = 1ULL << 28;
    o.strict = 1;
    if (ubt_build(idx, &o, &res, err, sizeof err)) die("index build", err);
    if (lsim_index_open(&g_ix, idx, err, sizeof err)) die("index open", err);
    collect_ids();
    /* the fixed request scored after every input: known and unknown items, a known category, a looked-up one */
    g_ref_cand[0] = (lsim_candidate){g_items[0], strlen(g_items[0]), NULL, 0};
    g_ref_cand[1] = (lsim_candidate){g_items[1], strlen(g_items[1]), g_cats[0], strlen(g_cats[0])};
    g_ref_cand[2] = (lsim_candidate){"no-such-item", 12, NULL, 0};
    g_ref_cand[3] = (lsim_candidate){"no-such-item", 12, "no-such-cat", 11};
    g_ref_cand[4] = (lsim_candidate){g_items[2], strlen(g_items[2]), NULL, 0};
    g_ref_cand[5] = g_ref_cand[0];
    for (size_t i = 0; i < N_ENG; i++) {
        fuzz_engine *fe = &g_eng[i];
        char ck[160];
        snprintf(ck, sizeof ck, "%s/%s.safetensors", g_dir, fe->name);
        write_checkpoint(fe, ck, g_n_items, g_n_cats);
        lsim_settings s;
        lsim_settings_default(&s);
        s.max_candidates = MAX_CAND;
        s.short_len = fe->short_len;
        s.long_max = fe->long_max;
        s.soft_search = fe->soft_search;
        s.approx_fraction = 0.3f;
        if (lsim_engine_open(&fe->e, idx, ck, &s, err, sizeof err)) die("engine open", err);
        if (lsim_ctx_new(fe->e, &fe->c)) die("ctx new", fe->name);
        fe->sim = fe->kind == MODEL_SIM_HARD || fe->kind == MODEL_SIM_SOFT;
        if (lsim_score(fe->c, "1", 1, g_last, g_ref_cand, REF_N, fe->ref))
            die("the fixed request", lsim_ctx_errmsg(fe->c));
    }
    return 0;
}

/* ---- the input, read as a stream of small decisions (zeros once it runs out) ---- */

typedef struct in {
    const uint8_t *p;
    size_t n, at;
} in;

static uint8_t u8(in *s)
{
    return s->at < s->n ? s->p[s->at++] : 0;
}

static uint32_t u16(in *s)
{
    uint32_t a = u8(s);
    return a | (uint32_t)u8(s) << 8;
}

static uint64_t u64(in *s)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)u8(s) << (8 * i);
    return v;
}

/* len bytes of the input itself (as many as are left), for ids of any bytes: ASan sees a read past them. */
static const char *raw_bytes(in *s, size_t *len)
{
    size_t want = u8(s);
    if (want == 255) want = u16(s);
    if (want > s->n - s->at) want = s->n - s->at;
    const char *p = (const char *)s->p + s->at;
    s->at += want;
    *len = want;
    return p;
}

/* An id of the given kind: known (from the vocabulary), unknown, raw input bytes, empty, NULL or too long. */
static void pick_id(in *s, const char **known, uint32_t n_known, const char *unknown, const char **p, size_t *len)
{
    uint8_t mode = u8(s);
    switch (mode % 8) {
    case 0:
    case 1:
    case 2: *p = known[u16(s) % n_known], *len = strlen(*p); break;
    case 3: *p = unknown, *len = strlen(unknown); break;
    case 4: *p = raw_bytes(s, len); break;
    case 5: *p = "", *len = 0; break;
    case 6: *p = NULL, *len = mode / 8; break;
    default: *p = g_big, *len = (size_t)LSIM_MAX_ID_LEN + (mode / 8 % 3 == 0 ? 1 : mode / 8 % 3 == 1 ? 0 : 9000); break;
    }
}

static bool id_ok(const char *p, size_t len)
{
    return p && len && len <= LSIM_MAX_ID_LEN && !memchr(p, 0, len);
}

/* What a request is scored through: a context of an engine, and what the contract needs to know of it. */
typedef struct target {
    const char *name;
    lsim_ctx *c;
    int sim;
    uint32_t max_cand;
    int64_t max_future;
    const float *ref; /* the fixed request's scores at open, or NULL */
} target;

static int64_t time_limit(const target *t)
{
    int64_t wall = (int64_t)time(NULL), base = g_last > wall ? g_last : wall;
    return base > INT64_MAX - t->max_future ? INT64_MAX : base + t->max_future;
}

static int64_t pick_now(in *s, const target *t)
{
    uint8_t mode = u8(s);
    int64_t d = (int8_t)u8(s), limit = time_limit(t);
    switch (mode % 10) {
    case 0: return (int64_t)u64(s);
    case 1: return g_first + d;
    case 2: return g_last + d;
    case 3: return limit > INT64_MAX - 128 ? limit - 128 + d : limit + d;
    case 4: return d;
    case 5: return d < 0 ? INT64_MIN - d - 1 : INT64_MAX - d;
    case 6: return 1512345600 + d * 3600; /* the generated log's end, give or take */
    default: return g_first + (int64_t)(u64(s) % (uint64_t)(1512345600 - g_first + 1));
    }
}

static void check_scores(const target *t, const lsim_candidate *cand, size_t n, const float *sc)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(sc[i]) || sc[i] < 0 || sc[i] > 1) {
            fprintf(stderr, "%s: score %zu is %g\n", t->name, i, sc[i]);
            abort();
        }
        for (size_t j = 0; j < i && j < 8; j++) /* a repeat of an earlier candidate: the same score */
            if (cand[j].item_len == cand[i].item_len && !memcmp(cand[j].item, cand[i].item, cand[i].item_len) &&
                !cand[j].category == !cand[i].category &&
                (!cand[i].category || (cand[j].category_len == cand[i].category_len &&
                                       !memcmp(cand[j].category, cand[i].category, cand[i].category_len))) &&
                memcmp(&sc[i], &sc[j], sizeof sc[i])) {
                fprintf(stderr, "%s: candidates %zu and %zu are the same, scores %.9g and %.9g\n", t->name, j, i,
                        sc[j], sc[i]);
                abort();
            }
    }
}

/* What the contract predicts: 1 when the request must be refused with LSIM_E_INVAL, 0 when it must score,
 * -1 when `now` is within a few seconds of the clock's limit (the clock may tick between). */
static int predict_inval(const target *t, const char *user, size_t user_len, int64_t now,
                         const lsim_candidate *cand, size_t n, const float *out)
{
    if (!cand || !out || !n || n > t->max_cand || now <= 0 || !id_ok(user, user_len)) return 1;
    for (size_t i = 0; i < n; i++)
        if (!id_ok(cand[i].item, cand[i].item_len) || (cand[i].category && !id_ok(cand[i].category,
                                                                                    cand[i].category_len)))
            return 1;
    int64_t limit = time_limit(t);
    if (limit < INT64_MAX - 5 && now > limit + 5) return 1;
    if (now >= limit - 5) return -1;
    return 0;
}

static void expect_verdict(const target *t, int rc, int inval, const char *what)
{
    fuzz_check_rc(rc, what);
    const char *msg = lsim_ctx_errmsg(t->c);
    if ((inval == 1 && rc != LSIM_E_INVAL) || (inval == 0 && rc != 0) || (inval == -1 && rc && rc != LSIM_E_INVAL)) {
        fprintf(stderr, "%s: %s returned %d (%s), the contract wants %s\n", t->name, what, rc, msg,
                inval ? "LSIM_E_INVAL" : "0");
        abort();
    }
    if (rc && !msg[0]) die(what, "an error without a detail");
}

static void explain(const target *t, in *s, const char *user, size_t user_len, int64_t now,
                    const lsim_candidate *cand)
{
    static lsim_explained ex[72];
    size_t cap = u8(s) % 72, n = 12345;
    lsim_explained *out = cap || (u8(s) & 1) ? ex : NULL;
    float score = -2, alone = -3;
    int rc = lsim_explain(t->c, user, user_len, now, cand, &score, out, cap, &n);
    fuzz_check_rc(rc, "lsim_explain");
    if (!t->sim) {
        if (rc != LSIM_E_INVAL) die(t->name, "lsim_explain on a model without a GSU did not give LSIM_E_INVAL");
        return;
    }
    int inval = predict_inval(t, user, user_len, now, cand, 1, &score);
    expect_verdict(t, rc, inval, "lsim_explain");
    if (rc) return;
    if (n > 8) die(t->name, "lsim_explain picked more than K");
    if (lsim_score(t->c, user, user_len, now, cand, 1, &alone)) die("lsim_score after lsim_explain", t->name);
    if (memcmp(&score, &alone, sizeof score)) {
        fprintf(stderr, "%s: explain's score %.9g, the score alone %.9g\n", t->name, score, alone);
        abort();
    }
    double sum = 0;
    for (size_t i = 0; i < n && i < cap; i++) {
        if (!isfinite(ex[i].weight) || ex[i].weight < 0 || ex[i].weight > 1.0001f) die(t->name, "a bad weight");
        if (!ex[i].event.item || !ex[i].event.category || !ex[i].event.type) die(t->name, "a NULL string");
        if (ex[i].event.ts >= now) die(t->name, "a pick not before now");
        sum += ex[i].weight;
    }
    if (n && n <= cap && fabs(sum - 1) > 1e-4) {
        fprintf(stderr, "%s: attention sums to %.9g over %zu picks\n", t->name, sum, n);
        abort();
    }
}

/* One request decoded from the input, scored (twice when it scores, and in a second context `c2` if given). */
static int request(const target *t, lsim_ctx *c2, in *s, uint8_t flags)
{
    static lsim_candidate cand[N_CAND_BUF];
    static float sc[N_CAND_BUF], again[N_CAND_BUF];
    const char *user;
    size_t user_len;
    pick_id(s, g_users, g_n_users, "no-such-user", &user, &user_len);
    int64_t now = pick_now(s, t);
    uint8_t nb = u8(s);
    size_t n = nb < 240 ? nb % (MAX_CAND + 3) : nb == 255 ? N_CAND_BUF : MAX_CAND + (nb - 240);
    for (size_t i = 0; i < n; i++) {
        if (i >= 8 && s->at >= s->n) { /* out of input: repeat the first eight */
            cand[i] = cand[i % 8];
            continue;
        }
        pick_id(s, g_items, g_n_items, "no-such-item", &cand[i].item, &cand[i].item_len);
        uint8_t cm = u8(s);
        if (cm % 3 == 0) {
            cand[i].category = NULL, cand[i].category_len = cm / 3;
        } else {
            pick_id(s, g_cats, g_n_cats, "no-such-cat", &cand[i].category, &cand[i].category_len);
            if (!cand[i].category) cand[i].category = "", cand[i].category_len = 0; /* NULL: lookup, done above */
        }
    }
    const lsim_candidate *cp = (flags & 0x30) == 0x30 ? NULL : cand;
    float *out = (flags & 0xc0) == 0xc0 ? NULL : sc;
    for (size_t i = 0; i < N_CAND_BUF; i++) sc[i] = -1.0f;

    int inval = predict_inval(t, user, user_len, now, cp, n, out);
    int rc = lsim_score(t->c, user, user_len, now, cp, n, out);
    expect_verdict(t, rc, inval, "lsim_score");
    if (getenv("FUZZ_SCORE_VERBOSE"))
        fprintf(stderr, "%s: n %zu now %lld: %d %s\n", t->name, n, (long long)now, rc, lsim_ctx_errmsg(t->c));
    if (rc == 0) {
        if (lsim_ctx_errmsg(t->c)[0]) die(t->name, "a detail after a success");
        check_scores(t, cand, n, sc);
        lsim_ctx *again_in = c2 ? c2 : t->c;
        for (size_t i = 0; i < N_CAND_BUF; i++) again[i] = -1.0f;
        if (lsim_score(again_in, user, user_len, now, cp, n, again)) die("the same request again", t->name);
        if (memcmp(sc, again, n * sizeof *sc)) die(t->name, "the same request gave other scores");
    } else {
        for (size_t i = 0; i < N_CAND_BUF; i++)
            if (sc[i] != -1.0f) die(t->name, "a refused request wrote scores");
    }
    if (flags & 1) explain(t, s, user, user_len, now, n && cp ? &cand[0] : (flags & 2) ? NULL : &g_ref_cand[2]);
    return rc;
}

/* The settings decoded from the input: each field in range or just outside it. Returns 1 when the contract
 * wants lsim_engine_open to refuse them (LSIM_E_INVAL). Sizes stay small enough for the fuzzer's memory limit. */
static int pick_settings(in *s, lsim_settings *set)
{
    lsim_settings_default(set);
    uint8_t m = u8(s);
    set->max_candidates = m < 250 ? m % (MAX_CAND + 1) : m == 250 ? 100001 : UINT32_MAX;
    m = u8(s);
    set->short_len = m < 250 ? m % 64 : 100001;
    uint32_t l = u16(s);
    set->long_max = l < 65000 ? l % 2000 : 10000001;
    m = u8(s);
    set->max_future = m < 128 ? (int64_t)m * 86400 : m < 250 ? (int64_t)u64(s) : m == 250 ? INT64_MAX : -1;
    set->soft_search = (int8_t)u8(s) % 4;
    uint32_t bits = (uint32_t)u16(s) | (uint32_t)u16(s) << 16;
    memcpy(&set->approx_fraction, &bits, sizeof bits);
    return !set->max_candidates || set->max_candidates > 100000 || set->short_len > 100000 ||
           set->long_max > 10000000 || set->soft_search < 0 || set->soft_search > 2 ||
           !(set->approx_fraction > 0 && set->approx_fraction <= 1) || set->max_future < 0;
}

/* An engine opened with settings from the input over one of the checkpoints; a request through two contexts. */
static void fresh_engine(in *s, uint8_t flags)
{
    fuzz_engine *fe = &g_eng[u8(s) % N_ENG];
    lsim_settings set;
    int inval = pick_settings(s, &set);
    char ck[160], idx[128], err[LSIM_ERRLEN];
    snprintf(ck, sizeof ck, "%s/%s.safetensors", g_dir, fe->name);
    snprintf(idx, sizeof idx, "%s/idx", g_dir);
    lsim_engine *e = NULL;
    int rc = lsim_engine_open(&e, idx, ck, &set, err, sizeof err);
    fuzz_check_rc(rc, "lsim_engine_open");
    if (rc != (inval ? LSIM_E_INVAL : 0) || !e != !!rc || (rc && !err[0])) {
        fprintf(stderr, "%s: lsim_engine_open returned %d (%s), the contract wants %s\n", fe->name, rc, err,
                inval ? "LSIM_E_INVAL" : "0");
        abort();
    }
    if (rc) return;
    lsim_ctx *c = NULL, *c2 = NULL;
    if (lsim_ctx_new(e, &c) || lsim_ctx_new(e, &c2)) die("lsim_ctx_new", fe->name);
    target t = {fe->name, c, fe->sim, set.max_candidates, set.max_future, NULL};
    request(&t, c2, s, flags);
    lsim_ctx_free(c2);
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in s = {data, size, 0};
    uint8_t pick = u8(&s), flags = u8(&s);
    if (pick >= 0xf0) { /* one in sixteen: a fresh engine with settings from the input */
        fresh_engine(&s, flags);
        return 0;
    }
    fuzz_engine *fe = &g_eng[pick % N_ENG];
    target t = {fe->name, fe->c, fe->sim, MAX_CAND, 366 * 86400, fe->ref};
    int rc = request(&t, NULL, &s, flags);
    static unsigned inputs;
    if (!rc && ++inputs % 16) return 0; /* the fixed request after every error, and now and then */
    float ref[REF_N];
    if (lsim_score(fe->c, "1", 1, g_last, g_ref_cand, REF_N, ref)) die("the fixed request", lsim_ctx_errmsg(fe->c));
    if (memcmp(ref, fe->ref, sizeof ref)) die(fe->name, "the fixed request scores differently now");
    return 0;
}
