/*
 * chain_encode.c: see chain_encode.h.
 */
#include "index/chain_encode.h"

#include "lsim.h"

#include <stdlib.h>
#include <string.h>

int ev_reserve(ev_buf *b, size_t n)
{
    if (n <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < n) nc *= 2;
    ubt_event *v = realloc(b->v, nc * sizeof *v);
    if (!v) return LSIM_E_NOMEM;
    b->v = v;
    b->cap = nc;
    return 0;
}

int chain_encoder_init(chain_encoder *e, const void *dict, size_t dict_len, int level)
{
    memset(e, 0, sizeof *e);
    chain_plan_init(&e->plan);
    e->samples_max = 512u << 10;
    return block_codec_new(&e->codec, dict, dict_len, level) ? LSIM_E_NOMEM : 0;
}

int chain_encoder_set_dict(chain_encoder *e, const void *dict, size_t dict_len, int level)
{
    block_codec *c;
    int rc = block_codec_new(&c, dict, dict_len, level);
    if (rc) return rc;
    block_codec_free(e->codec);
    e->codec = c;
    return 0;
}

void chain_encoder_free(chain_encoder *e)
{
    block_codec_free(e->codec);
    free(e->user.v);
    free(e->grouped.v);
    free(e->mixed.v);
    free(e->blk);
    free(e->samples);
    free(e->sample_lens);
    chain_plan_free(&e->plan);
    memset(e, 0, sizeof *e);
}

static int nomem(chain_encoder *e)
{
    return err_set(e->err, sizeof e->err, LSIM_E_NOMEM, "out of memory");
}

static int grow_bytes(uint8_t **p, size_t *cap, size_t want)
{
    if (want <= *cap) return 0;
    size_t nc = *cap ? *cap : 4096;
    while (nc < want) nc *= 2;
    uint8_t *q = realloc(*p, nc);
    if (!q) return LSIM_E_NOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

static int dict_sample(chain_encoder *e, const ubt_event *ev, size_t m, int with_cat)
{
    if (e->samples_len >= e->samples_max) return 0;
    if (grow_bytes(&e->samples, &e->samples_cap, e->samples_len + block_encoded_bound(m))) return nomem(e);
    if (e->n_samples == e->sample_lens_cap) {
        size_t nc = e->sample_lens_cap ? e->sample_lens_cap * 2 : 4096;
        size_t *l = realloc(e->sample_lens, nc * sizeof *l);
        if (!l) return nomem(e);
        e->sample_lens = l;
        e->sample_lens_cap = nc;
    }
    size_t len;
    int rc = block_raw_payload(e->samples + e->samples_len, e->samples_cap - e->samples_len, &len, ev, m, with_cat);
    if (rc) return err_set(e->err, sizeof e->err, rc, "a block payload for the dictionary failed");
    e->samples_len += len;
    e->sample_lens[e->n_samples++] = len;
    return 0;
}

int chain_write(chain_encoder *e, uint32_t user, uint32_t cat, uint32_t seq0, const ubt_event *ev, size_t m,
                int with_cat, uint64_t *blocks)
{
    int with = with_cat ? 1 : 0;
    size_t i = 0;
    uint32_t seq = seq0;
    while (i < m) {
        size_t take = m - i < UBT_CHUNK_EVENTS ? m - i : UBT_CHUNK_EVENTS;
        if (e->training) {
            int rc = dict_sample(e, ev + i, take, with);
            if (rc) return rc;
            i += take;
            continue;
        }
        size_t len = 0;
        uint8_t key[UBT_KEY_LEN];
        ubt_key(key, user, cat, seq);
        for (;;) {
            if (grow_bytes(&e->blk, &e->blk_cap, block_encoded_bound(take))) return nomem(e);
            int rc = block_encode_keyed(e->codec, e->blk, e->blk_cap, &len, ev + i, take, with, key, sizeof key);
            if (rc) return err_set(e->err, sizeof e->err, rc, "encoding a block of user %u failed", user);
            if (len <= UBT_BLOCK_MAX_BYTES || take == 1) break;
            take = (take + 1) / 2; /* keep blocks inline in LMDB pages */
        }
        if (seq == UINT32_MAX) return err_set(e->err, sizeof e->err, LSIM_E_LIMIT, "chain of user %u too long", user);
        int rc = e->put(e->put_ctx, key, e->blk, len);
        if (rc) return rc;
        (*blocks)++;
        seq++;
        i += take;
    }
    return 0;
}

static size_t count_equal(const int64_t *a, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    size_t c = 0;
    while (lo + c < n && a[lo + c] == x) c++;
    return c;
}

int chain_user_events(chain_encoder *e, const batch_event *run, size_t m, const int64_t *stored_ts, size_t n_stored)
{
    e->user.n = 0;
    if (ev_reserve(&e->user, m)) return nomem(e);
    uint32_t tie = 0;
    for (size_t i = 0; i < m; i++) {
        if (i > 0 && run[i].ts == run[i - 1].ts)
            tie++;
        else
            tie = n_stored ? (uint32_t)count_equal(stored_ts, n_stored, run[i].ts) : 0;
        e->user.v[i] = (ubt_event){.ts = run[i].ts, .item = run[i].item, .cat = run[i].cat, .tie = tie,
                                   .type = run[i].type};
    }
    e->user.n = m;
    return 0;
}

static int is_own(const chain_plan *p, uint32_t cat)
{
    size_t lo = 0, hi = p->n_groups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->groups[mid].cat < cat) lo = mid + 1;
        else hi = mid;
    }
    return lo < p->n_groups && p->groups[lo].cat == cat && p->groups[lo].own;
}

size_t chain_filter_mixed(const chain_plan *p, ubt_event *dst, const ubt_event *src, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_own(p, src[i].cat)) dst[k++] = src[i];
    return k;
}

int chain_encode_new_user(chain_encoder *e, uint32_t user, const batch_event *run, size_t m, uint32_t own_min,
                          uint32_t mixed_max, ubt_user_summary *sum, uint64_t *blocks)
{
    int rc = chain_user_events(e, run, m, NULL, 0);
    if (rc) return rc;
    if (ev_reserve(&e->grouped, m) || ev_reserve(&e->mixed, m)) return nomem(e);
    if (chain_plan_make(&e->plan, e->grouped.v, e->user.v, m, own_min, mixed_max)) return nomem(e);
    for (size_t g = 0; g < e->plan.n_groups; g++) {
        const cat_group *cg = &e->plan.groups[g];
        if (cg->own && (rc = chain_write(e, user, cg->cat, 0, e->grouped.v + cg->start, cg->count, 0, blocks)))
            return rc;
    }
    e->mixed.n = chain_filter_mixed(&e->plan, e->mixed.v, e->user.v, m);
    if (e->mixed.n && (rc = chain_write(e, user, UBT_MIXED, 0, e->mixed.v, e->mixed.n, 1, blocks))) return rc;
    *sum = (ubt_user_summary){m, run[0].ts, run[m - 1].ts};
    return 0;
}
