/*
 * test_block_codec.c: the event block codec (storage/block_codec.h) and
 * CRC-32C (storage/crc32c.c).
 *
 * What it checks:
 *   - CRC-32C known answers (RFC 3720 B.4 and "123456789"), chaining, and the
 *     SSE4.2 path against the portable reference on random buffers, lengths
 *     and alignments;
 *   - round trips of thousands of random blocks (n in 1..BLOCK_MAX_EVENTS,
 *     equal timestamps, huge gaps, negative and extreme timestamps, ties,
 *     every type id, with and without categories, with and without a zstd
 *     dictionary);
 *   - corruption: every single-byte change of encoded blocks, every
 *     truncation, garbage, and hand-built blocks with a correct CRC but bad
 *     internals (docs/BLOCK_FORMAT.md is what they are built from), all
 *     LSIM_E_CORRUPT; argument errors LSIM_E_INVAL;
 *   - the worked example of docs/BLOCK_FORMAT.md, byte for byte;
 *   - and it prints, without asserting, bytes per event and speed on
 *     session-like synthetic chains and on the Taobao sample if present.
 * What it is not: a benchmark (bench/ holds those).
 */
#include "lsim.h"
#include "storage/block_codec.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define ZSTD_STATIC_LINKING_ONLY /* magicless frames, to build bad blocks by hand */
#include <zstd.h>

/* The format's flag bits, as docs/BLOCK_FORMAT.md gives them (written here
 * again on purpose: the hand-built blocks test the document). */
#define F_RAW 0x00u
#define F_ZSTD 0x01u
#define F_ZSTD_DICT 0x02u
#define F_WITH_CAT 0x04u
#define F_TS32 0x08u
#define F_ITEM_DIRECT 0x10u
#define F_CAT_DIRECT 0x20u
#define F_TIES 0x40u

#define MAXN BLOCK_MAX_EVENTS

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rnd(uint64_t *s, uint64_t bound) /* [0, bound), bound > 0 */
{
    return tu_rand(s) % bound;
}

static double rnd01(uint64_t *s)
{
    return (double)(tu_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void events_eq(const ubt_event *a, const ubt_event *b, size_t n, int with_cat,
                      uint32_t default_cat)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(a[i].ts, b[i].ts, "event %zu: ts %" PRId64 " != %" PRId64, i, a[i].ts,
                     b[i].ts);
        cr_assert_eq(a[i].item, b[i].item, "event %zu: item", i);
        cr_assert_eq(a[i].type, b[i].type, "event %zu: type", i);
        cr_assert_eq(a[i].tie, b[i].tie, "event %zu: tie", i);
        cr_assert_eq(a[i].cat, with_cat ? b[i].cat : default_cat, "event %zu: cat", i);
    }
}

/* ---- CRC-32C --------------------------------------------------------------- */

static void crc_all_eq(const void *buf, size_t len, uint32_t want)
{
    cr_assert_eq(crc32c(0, buf, len), want, "crc32c len %zu", len);
    cr_assert_eq(crc32c_portable(0, buf, len), want, "crc32c_portable len %zu", len);
    cr_assert_eq(crc32c_hw(0, buf, len), want, "crc32c_hw len %zu", len);
}

Test(crc32c, known_answers)
{
    uint8_t b[32];
    crc_all_eq("123456789", 9, 0xE3069283u);
    crc_all_eq("", 0, 0);
    memset(b, 0, sizeof b);
    crc_all_eq(b, 32, 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    crc_all_eq(b, 32, 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)i;
    crc_all_eq(b, 32, 0x46DD794Eu);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)(31 - i);
    crc_all_eq(b, 32, 0x113FDB5Cu);
    /* Chaining: the CRC of a || b continues from the CRC of a. */
    cr_assert_eq(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    cr_assert_eq(crc32c_portable(crc32c_portable(0, "12345", 5), "6789", 4), 0xE3069283u);
    fprintf(stderr, "crc32c: SSE4.2 path %s\n", crc32c_hw_available() ? "in use" : "absent");
}

Test(crc32c, fast_equals_portable)
{
    enum { CAP = 8192 };
    uint8_t *buf = malloc(CAP + 64);
    cr_assert_not_null(buf);
    uint64_t s = 42;
    for (size_t i = 0; i < CAP + 64; i++) buf[i] = (uint8_t)tu_rand(&s);
    for (int it = 0; it < 20000; it++) {
        size_t off = (size_t)rnd(&s, 64);
        size_t len = it < 2000 ? (size_t)rnd(&s, 40) : (size_t)rnd(&s, CAP + 1);
        uint32_t seed = (it & 1) ? (uint32_t)tu_rand(&s) : 0u;
        uint32_t a = crc32c_portable(seed, buf + off, len);
        uint32_t b = crc32c_hw(seed, buf + off, len);
        cr_assert_eq(a, b, "off %zu len %zu: portable %08x hw %08x", off, len, a, b);
        /* Split anywhere: same result. */
        size_t cut = len ? (size_t)rnd(&s, len + 1) : 0;
        cr_assert_eq(crc32c(crc32c(seed, buf + off, cut), buf + off + cut, len - cut), a);
    }
    /* Speed, for the record (not asserted). */
    double t0 = now_s();
    uint32_t acc = 0;
    for (int r = 0; r < 2000; r++) acc ^= crc32c_portable(acc, buf, CAP);
    double t1 = now_s();
    for (int r = 0; r < 2000; r++) acc ^= crc32c_hw(acc, buf, CAP);
    double t2 = now_s();
    fprintf(stderr, "crc32c: portable %.2f GB/s, hw %.2f GB/s (%08x)\n",
            2000.0 * CAP / (t1 - t0) / 1e9, 2000.0 * CAP / (t2 - t1) / 1e9, acc);
    free(buf);
}

/* ---- random blocks ------------------------------------------------------------ */

/* Fills ev[0..n) with a random, (ts, tie)-ordered block of one of many shapes. */
static void gen_random(ubt_event *ev, size_t n, uint64_t *s)
{
    unsigned ts_mode = (unsigned)rnd(s, 7);
    int64_t *ts = malloc(n * sizeof *ts);
    cr_assert_not_null(ts);
    int64_t base = (int64_t)rnd(s, 2000000000u) + 1000000000;
    switch (ts_mode) {
    case 0: /* all equal */
        for (size_t i = 0; i < n; i++) ts[i] = base;
        break;
    case 1: /* sessions: seconds apart, days between */
        ts[0] = base;
        for (size_t i = 1; i < n; i++)
            ts[i] = ts[i - 1] + (rnd(s, 10) == 0 ? (int64_t)rnd(s, 5 * 86400) : (int64_t)rnd(s, 300));
        break;
    case 2: /* anywhere in int64, huge gaps */
        for (size_t i = 0; i < n; i++) ts[i] = (int64_t)tu_rand(s);
        if (rnd(s, 2)) ts[0] = INT64_MIN;
        if (rnd(s, 2)) ts[n - 1] = INT64_MAX;
        qsort(ts, n, sizeof *ts, cmp_i64);
        break;
    case 3: /* negative, small */
        ts[0] = -(int64_t)rnd(s, 100000) - 1;
        for (size_t i = 1; i < n; i++) ts[i] = ts[i - 1] + (int64_t)rnd(s, 3);
        break;
    case 4: /* around the u32 boundary of first_ts, and 0 */
        ts[0] = rnd(s, 2) ? (int64_t)UINT32_MAX - (int64_t)rnd(s, 3) : (int64_t)rnd(s, 3) - 1;
        for (size_t i = 1; i < n; i++) ts[i] = ts[i - 1] + (int64_t)rnd(s, 2);
        break;
    case 5: /* the extremes only */
        for (size_t i = 0; i < n; i++) ts[i] = (i < n / 2) ? INT64_MIN : INT64_MAX;
        if (rnd(s, 2))
            for (size_t i = 0; i < n; i++) ts[i] = (i < n / 2) ? INT64_MAX - 1 : INT64_MAX;
        break;
    default: /* dense, many equal */
        ts[0] = base;
        for (size_t i = 1; i < n; i++) ts[i] = ts[i - 1] + (rnd(s, 3) == 0);
        break;
    }
    unsigned item_mode = (unsigned)rnd(s, 5), type_mode = (unsigned)rnd(s, 4),
             cat_mode = (unsigned)rnd(s, 4), tie_mode = (unsigned)rnd(s, 4);
    uint32_t item_base = (uint32_t)tu_rand(s);
    for (size_t i = 0; i < n; i++) {
        ubt_event *e = &ev[i];
        e->ts = ts[i];
        switch (item_mode) {
        case 0: e->item = (uint32_t)tu_rand(s); break;
        case 1: e->item = (uint32_t)rnd(s, 50); break;
        case 2: e->item = item_base; break;
        case 3: e->item = rnd(s, 2) ? UINT32_MAX - (uint32_t)rnd(s, 3) : (uint32_t)rnd(s, 3); break;
        default: e->item = item_base + (uint32_t)(rnd(s, 400) * rnd(s, 400) / 400); break;
        }
        switch (type_mode) {
        case 0: e->type = 0; break;
        case 1: e->type = (uint8_t)(rnd(s, 10) == 0 ? rnd(s, 4) : 0); break;
        case 2: e->type = (uint8_t)rnd(s, 256); break;
        default: e->type = (uint8_t)(200 + rnd(s, 3)); break;
        }
        switch (cat_mode) {
        case 0: e->cat = (uint32_t)tu_rand(s); break;
        case 1: e->cat = (uint32_t)rnd(s, 5); break;
        case 2: e->cat = 7; break;
        default: e->cat = UINT32_MAX - (uint32_t)rnd(s, 2); break;
        }
        e->tie = 0;
    }
    /* Ties: non-decreasing within each run of equal timestamps. */
    if (tie_mode > 0) {
        for (size_t i = 0; i < n; i++) {
            int same = i > 0 && ev[i].ts == ev[i - 1].ts;
            uint32_t lo = same ? ev[i - 1].tie : 0;
            uint32_t t = 0;
            if (tie_mode == 1) t = same ? lo + 1 : (rnd(s, 20) == 0 ? (uint32_t)rnd(s, 5) : 0);
            else if (tie_mode == 2) t = (rnd(s, 8) == 0) ? lo + (uint32_t)rnd(s, 3) : lo;
            else t = lo + (uint32_t)rnd(s, (uint64_t)(UINT32_MAX - lo) + 1);
            ev[i].tie = t;
        }
    }
    free(ts);
}

static size_t rand_n(uint64_t *s)
{
    uint64_t r = rnd(s, 10);
    if (r < 6) return 1 + (size_t)rnd(s, 40);
    if (r < 9) return 1 + (size_t)rnd(s, 600);
    return 1 + (size_t)rnd(s, MAXN);
}

/* Encodes and decodes ev[0..n); checks the header, the bound and the events. */
static size_t round_trip(block_codec *c, const ubt_event *ev, size_t n, int with_cat,
                         uint8_t *buf, size_t cap, ubt_event *out)
{
    size_t len = 0, m = 0;
    int rc = block_encode(c, buf, cap, &len, ev, n, with_cat);
    cr_assert_eq(rc, 0, "encode n=%zu: %d", n, rc);
    cr_assert(len > 0 && len <= block_encoded_bound(n), "len %zu bound %zu", len,
              block_encoded_bound(n));
    block_header h;
    cr_assert_eq(block_read_header(buf, len, &h), 0);
    cr_assert_eq(h.n, n);
    cr_assert_eq(h.first_ts, ev[0].ts);
    cr_assert_eq(h.last_ts, ev[n - 1].ts);
    cr_assert_eq(h.with_cat, with_cat);
    uint32_t dcat = 0xC0FFEEu;
    rc = block_decode(c, out, n, &m, buf, len, dcat);
    cr_assert_eq(rc, 0, "decode n=%zu: %d", n, rc);
    cr_assert_eq(m, n);
    events_eq(out, ev, n, with_cat, dcat);
    return len;
}

/* A dictionary trained on random-but-plausible blocks. */
static size_t train_test_dict(void *dict, size_t cap, uint64_t seed)
{
    uint64_t s = seed;
    size_t n_samples = 400, total = 0;
    uint8_t *samples = malloc(n_samples * block_encoded_bound(200));
    size_t *lens = malloc(n_samples * sizeof *lens);
    ubt_event *ev = malloc(200 * sizeof *ev);
    cr_assert(samples && lens && ev);
    for (size_t i = 0; i < n_samples; i++) {
        size_t n = 1 + (size_t)rnd(&s, 200);
        gen_random(ev, n, &s);
        int rc = block_raw_payload(samples + total, block_encoded_bound(200), &lens[i], ev, n,
                                   (int)(i & 1));
        cr_assert_eq(rc, 0);
        total += lens[i];
    }
    size_t dlen = 0;
    int rc = block_train_dict(dict, cap, &dlen, samples, lens, n_samples);
    cr_assert_eq(rc, 0, "train: %d", rc);
    cr_assert(dlen > 0 && dlen <= cap);
    free(samples);
    free(lens);
    free(ev);
    return dlen;
}

Test(block_codec, round_trip_random)
{
    static uint8_t dict[8192];
    size_t dlen = train_test_dict(dict, sizeof dict, 7);
    block_codec *plain = NULL, *withd = NULL, *rawd = NULL;
    cr_assert_eq(block_codec_new(&plain, NULL, 0, 3), 0);
    cr_assert_eq(block_codec_new(&withd, dict, dlen, 3), 0);
    /* A "raw content" dictionary (no zstd dictionary header) works too. */
    static uint8_t content[1024];
    uint64_t s = 99;
    for (size_t i = 0; i < sizeof content; i++) content[i] = (uint8_t)rnd(&s, 8);
    cr_assert_eq(block_codec_new(&rawd, content, sizeof content, 1), 0);

    size_t cap = block_encoded_bound(MAXN);
    uint8_t *buf = malloc(cap), *buf2 = malloc(cap);
    ubt_event *ev = malloc(MAXN * sizeof *ev), *out = malloc(MAXN * sizeof *out);
    cr_assert(buf && buf2 && ev && out);
    size_t comp_seen[3] = {0, 0, 0};
    size_t blocks = 0, events = 0;
    for (int it = 0; it < 4000; it++) {
        size_t n = it < 8 ? (it < 4 ? 1 : MAXN) : rand_n(&s);
        gen_random(ev, n, &s);
        int with_cat = (int)rnd(&s, 2);
        block_codec *c = (it % 3 == 0) ? plain : (it % 3 == 1) ? withd : rawd;
        size_t len = round_trip(c, ev, n, with_cat, buf, cap, out);
        comp_seen[buf[0] & 3u]++;
        /* The exact length is enough room and gives the same bytes; one
         * byte less is not enough. */
        size_t len2 = 0;
        cr_assert_eq(block_encode(c, buf2, len, &len2, ev, n, with_cat), 0);
        cr_assert(len2 == len && memcmp(buf, buf2, len) == 0);
        cr_assert_eq(block_encode(c, buf2, len - 1, &len2, ev, n, with_cat), LSIM_E_INVAL);
        blocks++;
        events += n;
    }
    /* Blocks written without a dictionary read back with a dictionary codec. */
    for (int it = 0; it < 200; it++) {
        size_t n = rand_n(&s), len = 0, m = 0;
        gen_random(ev, n, &s);
        cr_assert_eq(block_encode(plain, buf, cap, &len, ev, n, 1), 0);
        cr_assert_eq(block_decode(withd, out, MAXN, &m, buf, len, 0), 0);
        events_eq(out, ev, n, 1, 0);
    }
    cr_assert(comp_seen[0] > 0 && comp_seen[1] > 0 && comp_seen[2] > 0,
              "raw %zu zstd %zu dict %zu", comp_seen[0], comp_seen[1], comp_seen[2]);
    fprintf(stderr, "round trip: %zu blocks, %zu events (raw %zu, zstd %zu, zstd+dict %zu)\n",
            blocks, events, comp_seen[0], comp_seen[1], comp_seen[2]);
    block_codec_free(plain);
    block_codec_free(withd);
    block_codec_free(rawd);
    free(buf);
    free(buf2);
    free(ev);
    free(out);
}

Test(block_codec, raw_payload_is_the_stored_payload)
{
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    uint64_t s = 5;
    ubt_event ev[64];
    uint8_t blk[4096], raw[4096];
    int checked = 0;
    for (int it = 0; it < 2000; it++) {
        size_t n = 1 + (size_t)rnd(&s, 64), len = 0, rlen = 0;
        gen_random(ev, n, &s);
        int wc = (int)rnd(&s, 2);
        cr_assert_eq(block_encode(c, blk, sizeof blk, &len, ev, n, wc), 0);
        cr_assert_eq(block_raw_payload(raw, sizeof raw, &rlen, ev, n, wc), 0);
        cr_assert_eq(block_raw_payload(raw, rlen - 1, &rlen, ev, n, wc), LSIM_E_INVAL);
        cr_assert_eq(block_raw_payload(raw, sizeof raw, &rlen, ev, n, wc), 0);
        if ((blk[0] & 3u) == F_RAW) {
            cr_assert_eq(memcmp(blk + len - 4 - rlen, raw, rlen), 0);
            checked++;
        }
    }
    cr_assert(checked > 100);
    block_codec_free(c);
}

/* ---- argument errors --------------------------------------------------------- */

Test(block_codec, encode_rejects_bad_input)
{
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    ubt_event ev[3] = {{.ts = 10, .item = 1}, {.ts = 20, .item = 2}, {.ts = 30, .item = 3}};
    uint8_t buf[256];
    size_t len = 0;
    cr_assert_eq(block_encode(c, buf, sizeof buf, &len, ev, 3, 0), 0);
    cr_assert_eq(block_encode(c, buf, sizeof buf, &len, ev, 0, 0), LSIM_E_INVAL);
    cr_assert_eq(len, 0);
    ev[1].ts = 5; /* not time-ordered */
    cr_assert_eq(block_encode(c, buf, sizeof buf, &len, ev, 3, 0), LSIM_E_INVAL);
    ev[1].ts = 10;
    ev[0].tie = 2; /* same ts, tie going down */
    ev[1].tie = 1;
    cr_assert_eq(block_encode(c, buf, sizeof buf, &len, ev, 3, 0), LSIM_E_INVAL);
    ev[1].tie = 2; /* equal (ts, tie) is allowed */
    cr_assert_eq(block_encode(c, buf, sizeof buf, &len, ev, 3, 0), 0);
    cr_assert_eq(block_encode(NULL, buf, sizeof buf, &len, ev, 3, 0), LSIM_E_INVAL);
    cr_assert_eq(block_encode(c, NULL, sizeof buf, &len, ev, 3, 0), LSIM_E_INVAL);
    cr_assert_eq(block_encode(c, buf, sizeof buf, NULL, ev, 3, 0), LSIM_E_INVAL);
    cr_assert_eq(block_encode(c, buf, sizeof buf, &len, NULL, 3, 0), LSIM_E_INVAL);
    cr_assert_eq(block_encode(c, buf, 0, &len, ev, 3, 0), LSIM_E_INVAL);
    cr_assert_eq(block_encode(c, buf, 5, &len, ev, 3, 0), LSIM_E_INVAL);

    size_t big = MAXN + 1;
    ubt_event *many = calloc(big, sizeof *many);
    size_t cap = block_encoded_bound(big);
    uint8_t *out = malloc(cap);
    cr_assert(many && out);
    cr_assert_eq(block_encode(c, out, cap, &len, many, big, 0), LSIM_E_INVAL);
    cr_assert_eq(block_encode(c, out, cap, &len, many, MAXN, 1), 0);
    cr_assert_eq(block_raw_payload(out, cap, &len, many, big, 0), LSIM_E_INVAL);
    cr_assert_eq(block_raw_payload(out, cap, &len, many, 0, 0), LSIM_E_INVAL);
    free(many);
    free(out);

    block_codec *bad = NULL;
    cr_assert_eq(block_codec_new(&bad, NULL, 0, 1000), LSIM_E_INVAL);
    cr_assert_null(bad);
    cr_assert_eq(block_codec_new(&bad, NULL, 10, 3), LSIM_E_INVAL);
    cr_assert_eq(block_codec_new(NULL, NULL, 0, 3), LSIM_E_INVAL);
    block_codec_free(NULL);
    block_codec_free(c);
}

Test(block_codec, decode_rejects_bad_arguments)
{
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    ubt_event ev[40], out[40];
    uint64_t s = 11;
    gen_random(ev, 40, &s);
    uint8_t buf[2048];
    size_t len = 0, m = 99;
    cr_assert_eq(block_encode(c, buf, sizeof buf, &len, ev, 40, 1), 0);
    cr_assert_eq(block_decode(c, out, 39, &m, buf, len, 0), LSIM_E_INVAL);
    cr_assert_eq(m, 0);
    cr_assert_eq(block_decode(c, out, 40, &m, buf, len, 0), 0);
    cr_assert_eq(m, 40);
    cr_assert_eq(block_decode(NULL, out, 40, &m, buf, len, 0), LSIM_E_INVAL);
    cr_assert_eq(block_decode(c, NULL, 40, &m, buf, len, 0), LSIM_E_INVAL);
    cr_assert_eq(block_decode(c, out, 40, NULL, buf, len, 0), LSIM_E_INVAL);
    cr_assert_eq(block_decode(c, out, 40, &m, NULL, len, 0), LSIM_E_INVAL);
    block_header h;
    cr_assert_eq(block_read_header(NULL, len, &h), LSIM_E_INVAL);
    cr_assert_eq(block_read_header(buf, len, NULL), LSIM_E_INVAL);
    block_codec_free(c);
}

/* ---- corruption -------------------------------------------------------------- */

/* Every single-byte change, every truncation and an extension of buf[0..len)
 * must be LSIM_E_CORRUPT; read_header must not crash on any of them. */
static void all_damage_corrupt(block_codec *c, uint8_t *buf, size_t len, ubt_event *out)
{
    uint8_t *tmp = malloc(len + 1);
    cr_assert_not_null(tmp);
    size_t m = 0;
    block_header h;
    static const uint8_t flips[] = {0x01, 0x80, 0xff, 0x5a};
    for (size_t i = 0; i < len; i++) {
        for (size_t f = 0; f < sizeof flips; f++) {
            memcpy(tmp, buf, len);
            tmp[i] ^= flips[f];
            int rc = block_decode(c, out, MAXN, &m, tmp, len, 0);
            cr_assert_eq(rc, LSIM_E_CORRUPT, "byte %zu of %zu ^ %02x: rc %d", i, len, flips[f], rc);
            (void)block_read_header(tmp, len, &h);
        }
    }
    for (size_t l = 0; l < len; l++) {
        /* A fresh allocation of exactly l bytes, so ASan sees any overread. */
        uint8_t *t = malloc(l ? l : 1);
        cr_assert_not_null(t);
        memcpy(t, buf, l);
        int rc = block_decode(c, out, MAXN, &m, t, l, 0);
        cr_assert_eq(rc, LSIM_E_CORRUPT, "truncated to %zu of %zu: rc %d", l, len, rc);
        (void)block_read_header(t, l, &h);
        free(t);
    }
    memcpy(tmp, buf, len);
    tmp[len] = 0;
    cr_assert_eq(block_decode(c, out, MAXN, &m, tmp, len + 1, 0), LSIM_E_CORRUPT);
    free(tmp);
}

Test(block_codec, every_byte_flip_and_truncation_is_corrupt)
{
    static uint8_t dict[8192];
    size_t dlen = train_test_dict(dict, sizeof dict, 8);
    block_codec *plain = NULL, *withd = NULL;
    cr_assert_eq(block_codec_new(&plain, NULL, 0, 3), 0);
    cr_assert_eq(block_codec_new(&withd, dict, dlen, 3), 0);
    size_t cap = block_encoded_bound(MAXN);
    uint8_t *buf = malloc(cap);
    ubt_event *ev = malloc(MAXN * sizeof *ev), *out = malloc(MAXN * sizeof *out);
    cr_assert(buf && ev && out);
    uint64_t s = 1234;
    size_t sizes[] = {1, 2, 3, 5, 17, 30, 64, 200, 500};
    int kinds[3] = {0, 0, 0};
    for (size_t k = 0; k < 2 * sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k / 2], len = 0;
        gen_random(ev, n, &s);
        block_codec *c = (k & 1) ? withd : plain;
        cr_assert_eq(block_encode(c, buf, cap, &len, ev, n, (int)(k % 3 == 0)), 0);
        kinds[buf[0] & 3u]++;
        all_damage_corrupt(c, buf, len, out);
    }
    /* Make sure the compressed kinds were damaged too. */
    for (int tries = 0; (kinds[1] == 0 || kinds[2] == 0) && tries < 100; tries++) {
        size_t n = 100, len = 0;
        for (size_t i = 0; i < n; i++)
            ev[i] = (ubt_event){.ts = 1500000000 + (int64_t)i * 60, .item = (uint32_t)(i % 7),
                                .cat = 3, .type = 0};
        block_codec *c = kinds[1] == 0 ? plain : withd;
        cr_assert_eq(block_encode(c, buf, cap, &len, ev, n, 1), 0);
        if (kinds[buf[0] & 3u]++ == 0) all_damage_corrupt(c, buf, len, out);
    }
    cr_assert(kinds[0] && kinds[1] && kinds[2], "%d %d %d", kinds[0], kinds[1], kinds[2]);
    block_codec_free(plain);
    block_codec_free(withd);
    free(buf);
    free(ev);
    free(out);
}

Test(block_codec, garbage_is_corrupt)
{
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    ubt_event *out = malloc(MAXN * sizeof *out);
    uint8_t buf[600];
    uint64_t s = 77;
    size_t m;
    block_header h;
    int valid_headers = 0, accepted = 0;
    for (int it = 0; it < 200000; it++) {
        size_t len = (size_t)rnd(&s, it < 100000 ? 24 : sizeof buf - 4);
        for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)tu_rand(&s);
        if (it & 1) buf[0] &= 0x7f; /* a plausible flags byte */
        if (it & 2) {
            /* Garbage behind a correct CRC: only the structural checks stand. */
            uint32_t crc = crc32c(0, buf, len);
            for (int b = 0; b < 4; b++) buf[len + (size_t)b] = (uint8_t)(crc >> (8 * b));
            len += 4;
        }
        valid_headers += block_read_header(buf, len, &h) == 0;
        int rc = block_decode(c, out, MAXN, &m, buf, len, 0);
        cr_assert(rc == LSIM_E_CORRUPT || rc == 0, "rc %d", rc);
        if (rc == 0) {
            /* Rare, and then it must be a real block: its events re-encode. */
            accepted++;
            size_t l2;
            uint8_t re[8192];
            cr_assert_eq(block_encode(c, re, sizeof re, &l2, out, m, (buf[0] & F_WITH_CAT) != 0), 0);
        } else if (!(it & 2)) {
            cr_assert_eq(rc, LSIM_E_CORRUPT);
        }
    }
    fprintf(stderr, "garbage: %d of 200000 parse as headers, %d decode as blocks\n",
            valid_headers, accepted);
    free(out);
    block_codec_free(c);
}

/* Mutations behind a recomputed CRC: only the structural checks stand
 * between the decoder and the bytes. Whatever it accepts must be a block
 * that keeps the invariants and encodes again. */
Test(block_codec, mutations_behind_a_valid_crc)
{
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    ubt_event *ev = malloc(MAXN * sizeof *ev), *out = malloc(MAXN * sizeof *out);
    size_t cap = block_encoded_bound(MAXN);
    uint8_t *blk = malloc(cap), *mut = malloc(cap + 16), *re = malloc(cap);
    cr_assert(ev && out && blk && mut && re);
    uint64_t s = 4242;
    size_t accepted = 0, tried = 0;
    for (int b = 0; b < 300; b++) {
        size_t n = 1 + (size_t)rnd(&s, b < 250 ? 40 : 400), len = 0;
        gen_random(ev, n, &s);
        cr_assert_eq(block_encode(c, blk, cap, &len, ev, n, (int)rnd(&s, 2)), 0);
        for (int it = 0; it < 300; it++) {
            size_t l = len - 4;
            memcpy(mut, blk, l);
            unsigned kind = (unsigned)rnd(&s, 4);
            if (kind == 0) { /* flip 1-3 bits */
                for (uint64_t f = 1 + rnd(&s, 3); f > 0; f--)
                    mut[rnd(&s, l)] ^= (uint8_t)(1u << rnd(&s, 8));
            } else if (kind == 1) { /* a random byte */
                mut[rnd(&s, l)] = (uint8_t)tu_rand(&s);
            } else if (kind == 2 && l > 1) { /* drop a tail */
                l -= 1 + (size_t)rnd(&s, l < 8 ? l - 1 : 8);
            } else { /* append 1-4 bytes */
                for (uint64_t a = 1 + rnd(&s, 4); a > 0; a--) mut[l++] = (uint8_t)tu_rand(&s);
            }
            mut[0] &= 0xfc; /* keep it raw, so the parser sees the bits */
            uint32_t crc = crc32c(0, mut, l);
            for (int i = 0; i < 4; i++) mut[l + (size_t)i] = (uint8_t)(crc >> (8 * i));
            size_t m = 0;
            int rc = block_decode(c, out, MAXN, &m, mut, l + 4, 0);
            tried++;
            cr_assert(rc == 0 || rc == LSIM_E_CORRUPT, "rc %d", rc);
            if (rc != 0) continue;
            accepted++;
            block_header h;
            cr_assert_eq(block_read_header(mut, l + 4, &h), 0);
            cr_assert(m == h.n && out[0].ts == h.first_ts && out[m - 1].ts == h.last_ts);
            for (size_t i = 1; i < m; i++)
                cr_assert(out[i].ts > out[i - 1].ts ||
                          (out[i].ts == out[i - 1].ts && out[i].tie >= out[i - 1].tie));
            size_t l2;
            cr_assert_eq(block_encode(c, re, cap, &l2, out, m, h.with_cat), 0);
        }
    }
    fprintf(stderr, "mutations behind a valid CRC: %zu tried, %zu still well-formed blocks\n", tried,
            accepted);
    free(ev);
    free(out);
    free(blk);
    free(mut);
    free(re);
    block_codec_free(c);
}

/* The bound holds for the worst blocks: every column at its most costly. */
Test(block_codec, bound_holds_for_worst_blocks)
{
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    ubt_event *ev = malloc(MAXN * sizeof *ev), *out = malloc(MAXN * sizeof *out);
    size_t cap = block_encoded_bound(MAXN);
    uint8_t *blk = malloc(cap), *raw = malloc(cap);
    int64_t *ts = malloc(MAXN * sizeof *ts);
    uint64_t s = 777;
    size_t sizes[] = {1, 2, 3, 7, 100, 255, 256, 257, 1000, MAXN};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int rep = 0; rep < 3; rep++) {
            for (size_t i = 0; i < n; i++) ts[i] = (int64_t)tu_rand(&s);
            ts[0] = INT64_MIN;
            ts[n - 1] = INT64_MAX;
            qsort(ts, n, sizeof *ts, cmp_i64);
            for (size_t i = 0; i < n; i++) {
                ev[i].ts = ts[i];
                ev[i].item = rep == 2 ? (uint32_t)i * 1048573u : (uint32_t)tu_rand(&s) | 0x80000000u;
                ev[i].cat = (uint32_t)tu_rand(&s) | 0x80000000u;
                ev[i].type = (uint8_t)(i * 37u + (size_t)rep);
                ev[i].tie = (i > 0 && ev[i].ts == ev[i - 1].ts) ? ev[i - 1].tie + 1u
                                                                  : UINT32_MAX - (uint32_t)rnd(&s, 2);
            }
            size_t len = 0, rlen = 0, m = 0;
            cr_assert_eq(block_encode(c, blk, cap, &len, ev, n, 1), 0);
            cr_assert(len <= block_encoded_bound(n), "n %zu: %zu > %zu", n, len, block_encoded_bound(n));
            cr_assert_eq(block_raw_payload(raw, cap, &rlen, ev, n, 1), 0);
            cr_assert(rlen + 27 <= block_encoded_bound(n), "raw n %zu: %zu", n, rlen);
            cr_assert_eq(block_decode(c, out, n, &m, blk, len, 0), 0);
            events_eq(out, ev, n, 1, 0);
        }
    }
    free(ev);
    free(out);
    free(blk);
    free(raw);
    free(ts);
    block_codec_free(c);
}

/* A hand-built block: header bytes, then payload bits (LSB first, as
 * docs/BLOCK_FORMAT.md says), then sealed with its CRC. */
typedef struct hb {
    uint8_t b[1 << 14];
    size_t n;     /* whole bytes */
    uint64_t acc; /* pending payload bits */
    unsigned nb;
} hb;

static void hb_reset(hb *h)
{
    h->n = 0;
    h->acc = 0;
    h->nb = 0;
}

static void hb_u8(hb *h, unsigned v)
{
    h->b[h->n++] = (uint8_t)v;
}

static void hb_var(hb *h, uint64_t v)
{
    while (v >= 0x80) {
        hb_u8(h, (unsigned)(v & 0x7f) | 0x80u);
        v >>= 7;
    }
    hb_u8(h, (unsigned)v);
}

static void hb_le32(hb *h, uint32_t v)
{
    for (int i = 0; i < 4; i++) hb_u8(h, (v >> (8 * i)) & 0xffu);
}

static void hb_zz(hb *h, int64_t v)
{
    hb_var(h, v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1);
}

static void hb_bits(hb *h, uint64_t v, unsigned w) /* w <= 64 */
{
    for (unsigned i = 0; i < w; i++) {
        h->acc |= ((v >> i) & 1u) << h->nb;
        if (++h->nb == 8) {
            hb_u8(h, (unsigned)h->acc);
            h->acc = 0;
            h->nb = 0;
        }
    }
}

static unsigned hb_width(uint64_t x)
{
    unsigned w = 0;
    while (x) {
        w++;
        x >>= 1;
    }
    return w;
}

/* Exp-Golomb order k: L = width(x >> k) ones, a zero, the L - 1 bits of
 * x >> k below its top bit, the k low bits of x. */
static void hb_eg(hb *h, uint64_t x, unsigned k)
{
    uint64_t hi = x >> k;
    unsigned L = hb_width(hi);
    for (unsigned i = 0; i < L; i++) hb_bits(h, 1, 1);
    hb_bits(h, 0, 1);
    if (L >= 2) hb_bits(h, hi, L - 1);
    hb_bits(h, x, k);
}

/* A lone number: 7 bits of width, then the bits below the top one. */
static void hb_num(hb *h, uint64_t x)
{
    unsigned w = hb_width(x);
    hb_bits(h, w, 7);
    if (w >= 2) hb_bits(h, x, w - 1);
}

/* Truncated binary of x < d. */
static void hb_tb(hb *h, uint32_t x, uint32_t d)
{
    unsigned w = hb_width(d - 1);
    uint32_t u = (1u << w) - d;
    if (x < u) {
        hb_bits(h, x, w - 1);
    } else {
        hb_bits(h, (x + u) >> 1, w - 1);
        hb_bits(h, (x + u) & 1u, 1);
    }
}

static void hb_flush(hb *h)
{
    if (h->nb) hb_u8(h, (unsigned)h->acc);
    h->acc = 0;
    h->nb = 0;
}

static void hb_seal(hb *h, uint32_t seed)
{
    hb_flush(h);
    hb_le32(h, crc32c(seed, h->b, h->n));
}

static int hb_decode(block_codec *c, const hb *h, ubt_event *out, size_t *m)
{
    /* An exact-size copy, so ASan catches any read past the end. */
    uint8_t *t = malloc(h->n);
    memcpy(t, h->b, h->n);
    int rc = block_decode(c, out, MAXN, m, t, h->n, 0);
    free(t);
    return rc;
}

/* The valid 3-event block every broken variant below starts from:
 * ts 1000, 1005, 1020; type 7; items 100, 105, 100 (block dictionary). */
typedef struct base_opts {
    unsigned flags;
    int n_override;         /* >= 0: write this n instead of 3 */
    int skip_span;
    uint64_t span;          /* default 20 */
    uint64_t delta;         /* default 5 */
    unsigned ts_k;          /* default 0 */
    unsigned k_minus_1;     /* type column: default 0 */
    unsigned n_types;       /* type values written: default 1 */
    unsigned type_vals[4];  /* default {7} */
    int type_mode;          /* 0 truncated binary, 1 Exp-Golomb */
    unsigned type_idx[3];   /* indices, when k > 1 */
    uint64_t d_minus_1;     /* item dictionary: default 1 */
    uint64_t u0, gap;       /* default 100, 4 */
    unsigned item_idx[3];   /* default 0, 1, 0 */
    int tail_bit;           /* append a 1 bit (a nonzero padding bit) */
    int extra_byte;         /* append a zero byte */
    int drop_last;          /* drop the last payload byte */
} base_opts;

static base_opts base_default(void)
{
    base_opts o = {.flags = F_TS32, .n_override = -1, .span = 20, .delta = 5, .n_types = 1,
                   .type_vals = {7}, .d_minus_1 = 1, .u0 = 100, .gap = 4, .item_idx = {0, 1, 0}};
    return o;
}

static void build_base(hb *h, const base_opts *o)
{
    hb_reset(h);
    hb_u8(h, o->flags);
    hb_var(h, o->n_override >= 0 ? (uint64_t)o->n_override : 3);
    hb_le32(h, 1000);
    if (!o->skip_span) hb_var(h, o->span);
    size_t p0 = h->n;
    hb_bits(h, o->ts_k, 6); /* ts column: k, one delta */
    hb_eg(h, o->delta, o->ts_k);
    hb_eg(h, o->k_minus_1, 0); /* types */
    for (unsigned i = 0; i < o->n_types; i++) hb_eg(h, o->type_vals[i], 0);
    if (o->k_minus_1 > 0) {
        hb_bits(h, (uint64_t)o->type_mode, 1);
        for (int i = 0; i < 3; i++) {
            if (o->type_mode) hb_eg(h, o->type_idx[i], 0);
            else hb_tb(h, o->type_idx[i], o->k_minus_1 + 1);
        }
    }
    hb_num(h, o->d_minus_1); /* items: dictionary */
    hb_num(h, o->u0);
    if (o->d_minus_1 > 0) {
        hb_bits(h, 0, 6);
        for (uint64_t j = 0; j < o->d_minus_1; j++) hb_eg(h, o->gap, 0);
        for (int i = 0; i < 3; i++) hb_tb(h, o->item_idx[i], (uint32_t)o->d_minus_1 + 1);
    }
    if (o->tail_bit) hb_bits(h, 1, 1);
    hb_flush(h);
    if (o->extra_byte) hb_u8(h, 0);
    if (o->drop_last && h->n > p0) h->n--;
    hb_seal(h, 0);
}

#define EXPECT_CORRUPT(c, h, what)                                                              \
    do {                                                                                        \
        size_t m_;                                                                              \
        int rc_ = hb_decode((c), (h), out, &m_);                                                \
        cr_assert_eq(rc_, LSIM_E_CORRUPT, "%s: rc %d", (what), rc_);                            \
    } while (0)

#define EXPECT_OK(c, h, what)                                                                   \
    do {                                                                                        \
        int rc_ = hb_decode((c), (h), out, &m);                                                 \
        cr_assert_eq(rc_, 0, "%s: rc %d", (what), rc_);                                         \
    } while (0)

/* A one-event block with a negative first_ts (so a zigzag varint), type 7,
 * direct item `item` with order k. */
static void build_one(hb *h, unsigned flags, uint64_t item, unsigned k)
{
    hb_reset(h);
    hb_u8(h, flags | F_ITEM_DIRECT);
    hb_var(h, 1);
    hb_zz(h, -5);
    hb_eg(h, 7, 0);
    hb_bits(h, k, 6);
    hb_eg(h, item, k);
}

Test(block_codec, hand_built_structural_errors)
{
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    ubt_event *out = malloc(MAXN * sizeof *out);
    static hb h;
    size_t m;
    base_opts o;

    /* The control: the base block is valid and means what the doc says. */
    o = base_default();
    build_base(&h, &o);
    EXPECT_OK(c, &h, "base block");
    cr_assert_eq(m, 3);
    cr_assert(out[0].ts == 1000 && out[1].ts == 1005 && out[2].ts == 1020);
    cr_assert(out[0].item == 100 && out[1].item == 105 && out[2].item == 100);
    cr_assert(out[0].type == 7 && out[2].type == 7 && out[1].tie == 0 && out[1].cat == 0);
    block_header bh;
    cr_assert_eq(block_read_header(h.b, h.n, &bh), 0);
    cr_assert(bh.n == 3 && bh.first_ts == 1000 && bh.last_ts == 1020 && bh.with_cat == 0);
    /* Two types, both index codings; a bigger ts order. */
    for (int mode = 0; mode < 2; mode++) {
        o = base_default();
        o.k_minus_1 = 1;
        o.n_types = 2;
        o.type_vals[0] = 0;
        o.type_vals[1] = 3;
        o.type_mode = mode;
        o.type_idx[2] = 1;
        o.ts_k = 9;
        build_base(&h, &o);
        EXPECT_OK(c, &h, "two types");
        cr_assert(out[0].type == 0 && out[1].type == 0 && out[2].type == 3);
        cr_assert(out[1].ts == 1005);
    }

    /* Header. */
    o = base_default(); o.flags |= 0x80u; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "reserved flag");
    o = base_default(); o.flags |= 0x03u; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "comp 3");
    o = base_default(); o.flags |= F_CAT_DIRECT; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "cat mode without cats");
    o = base_default(); o.flags |= F_WITH_CAT; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "cat column missing");
    o = base_default(); o.flags |= F_TIES; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "tie column missing");
    o = base_default(); o.flags |= F_ITEM_DIRECT; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "item mode mismatch");
    o = base_default(); o.n_override = 0; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "n = 0");
    o = base_default(); o.n_override = MAXN + 1; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "n too big");
    o = base_default(); o.n_override = 4; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "n larger than the payload");
    o = base_default(); o.n_override = 2; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "n smaller than the payload");
    o = base_default(); o.skip_span = 1; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "no span");
    o = base_default(); o.span = 4; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "delta beyond span");
    o = base_default(); o.extra_byte = 1; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "trailing byte");
    o = base_default(); o.tail_bit = 1; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "nonzero padding bit");
    o = base_default(); o.drop_last = 1; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "short payload");

    /* Overlong n (0x83 0x00 = 3 in two bytes). */
    o = base_default(); build_base(&h, &o);
    memmove(h.b + 3, h.b + 2, h.n - 4 - 2);
    h.b[1] = 0x83;
    h.b[2] = 0x00;
    h.n = h.n - 4 + 1;
    hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "overlong n");

    /* first_ts: in u32 range but stored as a varint (not canonical). */
    hb_reset(&h); hb_u8(&h, F_ITEM_DIRECT); hb_var(&h, 1); hb_zz(&h, 1000); hb_eg(&h, 7, 0);
    hb_bits(&h, 0, 6); hb_eg(&h, 9, 0); hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "u32 first_ts as varint");
    /* The same with a negative first_ts is valid (the control). */
    build_one(&h, 0, 9, 0); hb_seal(&h, 0);
    EXPECT_OK(c, &h, "one event");
    cr_assert(m == 1 && out[0].ts == -5 && out[0].item == 9 && out[0].type == 7);
    /* 11-byte varint; 10-byte varint with too many bits. */
    hb_reset(&h); hb_u8(&h, F_ITEM_DIRECT); hb_var(&h, 1);
    for (int i = 0; i < 10; i++) hb_u8(&h, 0xff);
    hb_u8(&h, 0x01); hb_eg(&h, 7, 0); hb_bits(&h, 0, 6); hb_eg(&h, 9, 0); hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "11-byte varint");
    hb_reset(&h); hb_u8(&h, F_ITEM_DIRECT); hb_var(&h, 1);
    for (int i = 0; i < 9; i++) hb_u8(&h, 0xff);
    hb_u8(&h, 0x02); hb_eg(&h, 7, 0); hb_bits(&h, 0, 6); hb_eg(&h, 9, 0); hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "65-bit varint");
    /* Span overflowing int64: first INT64_MAX - 5, span 6; then 5, the most that fits. */
    for (uint64_t span = 6; span >= 5; span--) {
        hb_reset(&h); hb_u8(&h, F_ITEM_DIRECT); hb_var(&h, 2); hb_zz(&h, INT64_MAX - 5); hb_var(&h, span);
        hb_eg(&h, 0, 0); hb_eg(&h, 7, 0); hb_bits(&h, 0, 6); hb_eg(&h, 9, 0); hb_eg(&h, 9, 0);
        hb_seal(&h, 0);
        if (span == 6) {
            EXPECT_CORRUPT(c, &h, "span overflows int64");
            cr_assert_eq(block_read_header(h.b, h.n, &bh), LSIM_E_CORRUPT);
        } else {
            EXPECT_OK(c, &h, "span up to INT64_MAX");
            cr_assert(out[0].ts == INT64_MAX - 5 && out[1].ts == INT64_MAX);
        }
    }
    /* INT64_MIN to INT64_MAX in one span (control), then a delta one past it. */
    for (int bad = 0; bad < 2; bad++) {
        hb_reset(&h); hb_u8(&h, F_ITEM_DIRECT); hb_var(&h, 3); hb_zz(&h, INT64_MIN);
        hb_var(&h, UINT64_MAX - (uint64_t)bad);
        hb_bits(&h, 63, 6); hb_eg(&h, UINT64_MAX, 63); /* the middle event at INT64_MAX */
        hb_eg(&h, 0, 0); hb_eg(&h, 7, 0);
        hb_bits(&h, 0, 6); hb_eg(&h, 1, 0); hb_eg(&h, 2, 0); hb_eg(&h, 3, 0);
        hb_seal(&h, 0);
        if (bad) {
            EXPECT_CORRUPT(c, &h, "delta past the span");
        } else {
            EXPECT_OK(c, &h, "the whole int64 range");
            cr_assert(out[0].ts == INT64_MIN && out[1].ts == INT64_MAX && out[2].ts == INT64_MAX);
            cr_assert(out[0].item == 1 && out[2].item == 3);
        }
    }
    /* An Exp-Golomb code longer than 64 bits (70 leading ones). */
    o = base_default(); build_base(&h, &o);
    hb_reset(&h); hb_u8(&h, F_TS32); hb_var(&h, 3); hb_le32(&h, 1000); hb_var(&h, 20);
    hb_bits(&h, 0, 6);
    for (int i = 0; i < 70; i++) hb_bits(&h, 1, 1);
    hb_bits(&h, 0, 1); hb_bits(&h, 0, 64); hb_bits(&h, 0, 6);
    hb_eg(&h, 0, 0); hb_eg(&h, 7, 0); hb_num(&h, 0); hb_num(&h, 100);
    hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "code longer than 64 bits");
    /* Only ones to the end. */
    hb_reset(&h); hb_u8(&h, F_TS32); hb_var(&h, 3); hb_le32(&h, 1000); hb_var(&h, 20);
    for (int i = 0; i < 30; i++) hb_u8(&h, 0xff);
    hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "all ones");

    /* Types. */
    o = base_default(); o.k_minus_1 = 3; o.n_types = 4; o.type_vals[1] = 8; o.type_vals[2] = 9;
    o.type_vals[3] = 10; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "k > n");
    o = base_default(); o.k_minus_1 = 1; o.n_types = 2; o.type_vals[0] = 3; o.type_vals[1] = 3;
    o.type_idx[2] = 1; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "a type listed twice");
    o = base_default(); o.type_vals[0] = 256; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "type > 255");
    o = base_default(); o.k_minus_1 = 256; o.n_types = 0; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "k > 256");
    o = base_default(); o.k_minus_1 = 1; o.n_types = 2; o.type_vals[0] = 0; o.type_vals[1] = 3;
    o.type_mode = 1; o.type_idx[0] = 2; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "type index >= k");

    /* Item dictionary. */
    o = base_default(); o.d_minus_1 = 3; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "d > n");
    o = base_default(); o.u0 = UINT32_MAX; o.gap = 0; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "dictionary past u32");
    o = base_default(); o.u0 = UINT32_MAX - 2; o.gap = 1; build_base(&h, &o);
    EXPECT_OK(c, &h, "dictionary up to UINT32_MAX");
    cr_assert(out[1].item == UINT32_MAX && out[0].item == UINT32_MAX - 2);
    o = base_default(); o.u0 = (uint64_t)UINT32_MAX + 1; build_base(&h, &o); EXPECT_CORRUPT(c, &h, "item > u32");
    /* d = 3, indices 2, 1, 0 (truncated binary: 0 takes 1 bit, 1 and 2 take 2). */
    hb_reset(&h); hb_u8(&h, F_TS32); hb_var(&h, 3); hb_le32(&h, 1000); hb_var(&h, 20);
    hb_bits(&h, 0, 6); hb_eg(&h, 5, 0); hb_eg(&h, 0, 0); hb_eg(&h, 7, 0);
    hb_num(&h, 2); hb_num(&h, 1); hb_bits(&h, 0, 6); hb_eg(&h, 0, 0); hb_eg(&h, 0, 0);
    hb_tb(&h, 2, 3); hb_tb(&h, 1, 3); hb_tb(&h, 0, 3); hb_seal(&h, 0);
    EXPECT_OK(c, &h, "item indices 2 1 0");
    cr_assert(out[0].item == 3 && out[1].item == 2 && out[2].item == 1);
    /* A width field beyond 64 in a lone number. */
    hb_reset(&h); hb_u8(&h, F_TS32); hb_var(&h, 3); hb_le32(&h, 1000); hb_var(&h, 20);
    hb_bits(&h, 0, 6); hb_eg(&h, 5, 0); hb_eg(&h, 0, 0); hb_eg(&h, 7, 0);
    hb_bits(&h, 65, 7); hb_bits(&h, 0, 64); hb_num(&h, 1); hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "number wider than 64 bits");
    /* Direct items beyond u32. */
    build_one(&h, 0, (uint64_t)UINT32_MAX + 1, 32); hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "direct item > u32");
    build_one(&h, 0, UINT32_MAX, 32); hb_seal(&h, 0);
    EXPECT_OK(c, &h, "direct item UINT32_MAX");
    cr_assert_eq(out[0].item, UINT32_MAX);

    /* Categories: direct, then missing. */
    build_one(&h, F_WITH_CAT | F_CAT_DIRECT, 9, 0); hb_bits(&h, 2, 6); hb_eg(&h, 44, 2); hb_seal(&h, 0);
    EXPECT_OK(c, &h, "direct category");
    cr_assert(out[0].cat == 44 && out[0].item == 9);
    build_one(&h, F_WITH_CAT, 9, 0); hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "category column missing");
    build_one(&h, F_WITH_CAT, 9, 0); hb_num(&h, 1); hb_num(&h, 5); hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "category dictionary d > n");

    /* Ties: valid (control), then each way to break them. Two events at
     * ts -5: [m - 1] [k] gaps [k] ranks - 1, then types and items. */
#define TIE_BLOCK(m_, g1, t1, g2, t2, twice)                                                    \
    do {                                                                                        \
        hb_reset(&h); hb_u8(&h, F_ITEM_DIRECT | F_TIES); hb_var(&h, 2); hb_zz(&h, -5);           \
        hb_var(&h, 0); hb_num(&h, (m_) - 1u); hb_bits(&h, 0, 6); hb_eg(&h, (g1), 0);             \
        if (twice) hb_eg(&h, (g2), 0);                                                          \
        hb_bits(&h, 0, 6); hb_eg(&h, (t1), 0);                                                  \
        if (twice) hb_eg(&h, (t2), 0);                                                          \
        hb_eg(&h, 0, 0); hb_eg(&h, 7, 0); hb_bits(&h, 0, 6); hb_eg(&h, 9, 0); hb_eg(&h, 9, 0);  \
        hb_seal(&h, 0);                                                                         \
    } while (0)
    TIE_BLOCK(2u, 0, 0, 0, 1, 1);
    EXPECT_OK(c, &h, "ties 1 2");
    cr_assert(out[0].tie == 1 && out[1].tie == 2 && out[0].ts == -5 && out[1].ts == -5);
    TIE_BLOCK(1u, 1, 6, 0, 0, 0);
    EXPECT_OK(c, &h, "tie 0 7");
    cr_assert(out[0].tie == 0 && out[1].tie == 7);
    TIE_BLOCK(3u, 0, 0, 0, 1, 1); EXPECT_CORRUPT(c, &h, "tie count > n");
    TIE_BLOCK(1u, 2, 0, 0, 0, 0); EXPECT_CORRUPT(c, &h, "tie position past n");
    TIE_BLOCK(2u, 1, 0, 0, 0, 1); EXPECT_CORRUPT(c, &h, "second tie past n");
    TIE_BLOCK(1u, 0, UINT32_MAX, 0, 0, 0); EXPECT_CORRUPT(c, &h, "tie > u32");
    TIE_BLOCK(2u, 0, 5, 0, 1, 1); EXPECT_CORRUPT(c, &h, "ties out of order at equal ts");
#undef TIE_BLOCK

    free(out);
    block_codec_free(c);
}

/* Compressed payloads with a correct CRC but wrong content. */
Test(block_codec, hand_built_compressed_errors)
{
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    ubt_event *out = malloc(MAXN * sizeof *out);
    size_t m;
    static hb h;
    /* A real block of 200 events to take its compressed frame apart. */
    ubt_event ev[200];
    for (size_t i = 0; i < 200; i++)
        ev[i] = (ubt_event){.ts = 1500000000 + (int64_t)i * 30, .item = (uint32_t)(i % 5), .type = 0};
    uint8_t blk[4096];
    size_t len = 0;
    cr_assert_eq(block_encode(c, blk, sizeof blk, &len, ev, 200, 0), 0);
    cr_assert_eq(blk[0] & 3u, F_ZSTD, "the 200-event block compresses");
    block_header bh;
    cr_assert_eq(block_read_header(blk, len, &bh), 0);

    /* Garbage frame after a valid header. */
    size_t hlen = 1 + 2 + 4 + 2; /* flags, n = 200 (2 bytes), ts32, span = 5970 (2 bytes) */
    hb_reset(&h);
    memcpy(h.b, blk, hlen);
    h.n = hlen;
    for (int i = 0; i < 20; i++) hb_u8(&h, (unsigned)(i * 37 + 11));
    hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "garbage frame");
    /* The frame cut short, the CRC recomputed. */
    memcpy(h.b, blk, len - 4);
    h.n = len - 5;
    hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "frame cut short");
    /* The frame with a byte after it. */
    memcpy(h.b, blk, len - 4);
    h.n = len - 4;
    hb_u8(&h, 0);
    hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "byte after the frame");
    /* The frame decoded as raw: flags say raw. */
    memcpy(h.b, blk, len - 4);
    h.n = len - 4;
    h.b[0] &= (uint8_t)~3u;
    hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "frame read as raw");
    /* A dictionary block without (and with the wrong) dictionary. */
    memcpy(h.b, blk, len - 4);
    h.n = len - 4;
    h.b[0] = (uint8_t)((h.b[0] & ~3u) | F_ZSTD_DICT);
    hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "dictionary block, no dictionary");
    static uint8_t d1[2048], d2[2048];
    uint64_t s = 3;
    for (size_t i = 0; i < sizeof d1; i++) {
        d1[i] = (uint8_t)rnd(&s, 16);
        d2[i] = (uint8_t)rnd(&s, 16);
    }
    block_codec *c1 = NULL, *c2 = NULL;
    cr_assert_eq(block_codec_new(&c1, d1, sizeof d1, 3), 0);
    cr_assert_eq(block_codec_new(&c2, d2, sizeof d2, 3), 0);
    cr_assert_eq(block_encode(c1, blk, sizeof blk, &len, ev, 200, 0), 0);
    cr_assert_eq(blk[0] & 3u, F_ZSTD_DICT);
    cr_assert_eq(block_decode(c1, out, MAXN, &m, blk, len, 0), 0);
    cr_assert_eq(block_decode(c2, out, MAXN, &m, blk, len, 0), LSIM_E_CORRUPT, "other dictionary");
    cr_assert_eq(block_decode(c, out, MAXN, &m, blk, len, 0), LSIM_E_CORRUPT, "no dictionary");

    /* A frame that is not smaller than what it holds: refused (the encoder
     * would have stored it raw). Build it by compressing a short payload. */
    uint8_t raw[64];
    size_t rlen = 0;
    ubt_event one = {.ts = -5, .item = 9, .type = 7};
    cr_assert_eq(block_raw_payload(raw, sizeof raw, &rlen, &one, 1, 0), 0);
    ZSTD_CCtx *z = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(z, ZSTD_c_format, ZSTD_f_zstd1_magicless);
    ZSTD_CCtx_setParameter(z, ZSTD_c_contentSizeFlag, 0);
    static uint8_t frame[8192];
    size_t fl = ZSTD_compress2(z, frame, sizeof frame, raw, rlen);
    cr_assert(!ZSTD_isError(fl) && fl > rlen);
    hb_reset(&h); hb_u8(&h, F_ITEM_DIRECT | F_ZSTD); hb_var(&h, 1); hb_zz(&h, -5);
    for (size_t i = 0; i < fl; i++) hb_u8(&h, frame[i]);
    hb_seal(&h, 0);
    EXPECT_CORRUPT(c, &h, "frame not smaller than its content");
    /* The same content stored raw decodes (control). */
    hb_reset(&h); hb_u8(&h, F_ITEM_DIRECT); hb_var(&h, 1); hb_zz(&h, -5);
    for (size_t i = 0; i < rlen; i++) hb_u8(&h, raw[i]);
    hb_seal(&h, 0);
    cr_assert_eq(hb_decode(c, &h, out, &m), 0);
    /* A frame holding a valid payload (control), then one with a byte more. */
    {
        static uint8_t big[8192];
        static ubt_event e2[1000];
        size_t blen = 0;
        for (size_t i = 0; i < 1000; i++) e2[i] = (ubt_event){.ts = -5, .item = 9, .type = 7};
        cr_assert_eq(block_raw_payload(big, sizeof big, &blen, e2, 1000, 0), 0);
        for (int extra = 0; extra < 2; extra++) {
            if (extra) big[blen++] = 0; /* one byte the parse will not consume */
            fl = ZSTD_compress2(z, frame, sizeof frame, big, blen);
            cr_assert(!ZSTD_isError(fl) && fl < blen);
            hb_reset(&h); hb_u8(&h, F_ZSTD); hb_var(&h, 1000); hb_zz(&h, -5); hb_var(&h, 0);
            for (size_t i = 0; i < fl; i++) hb_u8(&h, frame[i]);
            hb_seal(&h, 0);
            if (extra) {
                EXPECT_CORRUPT(c, &h, "frame content one byte too long");
            } else {
                cr_assert_eq(hb_decode(c, &h, out, &m), 0, "a hand-made frame");
                cr_assert(m == 1000 && out[999].item == 9 && out[999].ts == -5);
            }
        }
    }
    ZSTD_freeCCtx(z);
    block_codec_free(c1);
    block_codec_free(c2);
    free(out);
    block_codec_free(c);
}

/* The worked example of docs/BLOCK_FORMAT.md, byte for byte: the format
 * does not drift without the document (and every index on disk) noticing. */
Test(block_codec, golden_example_of_the_doc)
{
    static const uint8_t golden[] = {0x18, 0x03, 0x06, 0x55, 0x18, 0x5a, 0x64, 0x46, 0x5a,
                                     0x06, 0x8d, 0xc8, 0xd2, 0x48, 0xe4, 0x38, 0x28, 0xd1};
    ubt_event ev[3] = {{.ts = 1511544070, .item = 100, .type = 0},
                       {.ts = 1511544160, .item = 105, .type = 0},
                       {.ts = 1511544170, .item = 100, .type = 2}};
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    uint8_t buf[64];
    size_t len = 0, m = 0;
    cr_assert_eq(block_encode(c, buf, sizeof buf, &len, ev, 3, 0), 0);
    cr_assert_eq(len, sizeof golden);
    cr_assert_eq(memcmp(buf, golden, len), 0);
    ubt_event out[3];
    cr_assert_eq(block_decode(c, out, 3, &m, golden, sizeof golden, 5), 0);
    events_eq(out, ev, 3, 0, 5);
    cr_assert_eq(crc32c(0, golden, sizeof golden - 4), 0xd12838e4u);
    block_codec_free(c);
}

Test(block_codec, train_dict_fails_cleanly)
{
    uint8_t dict[4096], samples[64];
    size_t lens[4] = {16, 16, 16, 16}, dlen = 99;
    memset(samples, 1, sizeof samples);
    cr_assert_lt(block_train_dict(dict, sizeof dict, &dlen, samples, lens, 4), 0);
    cr_assert_eq(dlen, 0);
    cr_assert_lt(block_train_dict(dict, sizeof dict, &dlen, NULL, NULL, 0), 0);
    cr_assert_eq(block_train_dict(NULL, sizeof dict, &dlen, samples, lens, 4), LSIM_E_INVAL);
    cr_assert_eq(block_train_dict(dict, sizeof dict, &dlen, NULL, lens, 4), LSIM_E_INVAL);
    /* Enough samples but all identical and tiny: refused, not a crash. */
    size_t many_lens[100];
    uint8_t *many = calloc(100, 16);
    for (int i = 0; i < 100; i++) many_lens[i] = 16;
    int rc = block_train_dict(dict, sizeof dict, &dlen, many, many_lens, 100);
    cr_assert(rc == 0 || rc < 0);
    free(many);
}

/* ---- measurements (printed, not asserted) ------------------------------------- */

/* Zipf(s = 1) CDF over k ranks. */
static void zipf_cdf(double *cdf, size_t k)
{
    double sum = 0;
    for (size_t i = 0; i < k; i++) sum += 1.0 / (double)(i + 1);
    double acc = 0;
    for (size_t i = 0; i < k; i++) {
        acc += 1.0 / (double)(i + 1) / sum;
        cdf[i] = acc;
    }
}

static size_t zipf_draw(const double *cdf, size_t k, uint64_t *s)
{
    double u = rnd01(s);
    size_t lo = 0, hi = k - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A session-like chain of n events in one category: gaps ~90 s within
 * sessions of ~8 events, days between; items Zipf over the category's 400
 * items (ids from cat_ids), 35% repeats of an earlier event; 89% pv. */
static void gen_session_chain(ubt_event *ev, size_t n, const uint32_t *cat_ids, const double *cdf,
                              uint64_t *s)
{
    int64_t t = 1511500000 + (int64_t)rnd(s, 86400 * 3);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            if (rnd(s, 8) == 0) t += 3600 * 6 + (int64_t)rnd(s, 86400 * 3);
            else t += (int64_t)(-90.0 * log(1.0 - rnd01(s)));
        }
        ev[i].ts = t;
        if (i > 0 && rnd01(s) < 0.35) ev[i].item = ev[rnd(s, i)].item;
        else ev[i].item = cat_ids[zipf_draw(cdf, 400, s)];
        double u = rnd01(s);
        ev[i].type = u < 0.89 ? 0 : u < 0.945 ? 2 : u < 0.975 ? 3 : 1;
        ev[i].cat = 0;
        ev[i].tie = 0;
    }
}

Test(block_codec, measure_session_chains)
{
    uint64_t s = 2024;
    double cdf[400];
    zipf_cdf(cdf, 400);
    /* Two id layouts of a category's 400 items: scattered over 4M dense ids
     * (ids by first appearance) or grouped (ids by category, then rank). */
    uint32_t scattered[400], grouped[400];
    for (int i = 0; i < 400; i++) {
        scattered[i] = (uint32_t)rnd(&s, 4000000);
        grouped[i] = 2345678u + (uint32_t)i;
    }
    size_t sizes[] = {5, 10, 30, 100, 300};
    enum { N_CHAINS = 2000 };
    ubt_event *ev = malloc(300 * sizeof *ev), *out = malloc(300 * sizeof *out);
    uint8_t *buf = malloc(block_encoded_bound(300));
    fprintf(stderr, "bytes/event, session-like chains (Zipf 400 items, 35%% repeats, 89%% pv), "
                    "%d chains each, dictionary trained on other chains:\n", N_CHAINS);
    fprintf(stderr, "  %-10s %5s %9s %9s\n", "ids", "n", "no dict", "dict");
    for (int layout = 0; layout < 2; layout++) {
        const uint32_t *ids = layout ? grouped : scattered;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t n = sizes[si];
            /* Train on 1000 chains of this shape. */
            size_t cap1 = block_encoded_bound(n);
            uint8_t *samples = malloc(1000 * cap1);
            size_t *lens = malloc(1000 * sizeof *lens), total = 0;
            for (int i = 0; i < 1000; i++) {
                gen_session_chain(ev, n, ids, cdf, &s);
                cr_assert_eq(block_raw_payload(samples + total, cap1, &lens[i], ev, n, 0), 0);
                total += lens[i];
            }
            static uint8_t dict[16384];
            size_t dlen = 0;
            int trc = block_train_dict(dict, sizeof dict, &dlen, samples, lens, 1000);
            block_codec *c0 = NULL, *c1 = NULL;
            cr_assert_eq(block_codec_new(&c0, NULL, 0, 3), 0);
            cr_assert_eq(block_codec_new(&c1, trc == 0 ? dict : NULL, trc == 0 ? dlen : 0, 3), 0);
            size_t bytes0 = 0, bytes1 = 0, m;
            for (int i = 0; i < N_CHAINS; i++) {
                size_t len;
                gen_session_chain(ev, n, ids, cdf, &s);
                cr_assert_eq(block_encode(c0, buf, block_encoded_bound(n), &len, ev, n, 0), 0);
                bytes0 += len;
                cr_assert_eq(block_encode(c1, buf, block_encoded_bound(n), &len, ev, n, 0), 0);
                cr_assert_eq(block_decode(c1, out, n, &m, buf, len, 0), 0);
                bytes1 += len;
            }
            fprintf(stderr, "  %-10s %5zu %9.3f %9.3f\n", layout ? "grouped" : "scattered", n,
                    (double)bytes0 / (double)(N_CHAINS * n), (double)bytes1 / (double)(N_CHAINS * n));
            block_codec_free(c0);
            block_codec_free(c1);
            free(samples);
            free(lens);
        }
    }
    /* Speed on 30-event chains (scattered ids, no dictionary). */
    {
        enum { NB = 4000, N = 30 };
        ubt_event *all = malloc((size_t)NB * N * sizeof *all);
        uint8_t *blocks = malloc((size_t)NB * block_encoded_bound(N));
        size_t *blens = malloc(NB * sizeof *blens);
        for (int b = 0; b < NB; b++) gen_session_chain(all + (size_t)b * N, N, scattered, cdf, &s);
        block_codec *c = NULL;
        cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
        double t0 = now_s();
        for (int b = 0; b < NB; b++)
            cr_assert_eq(block_encode(c, blocks + (size_t)b * block_encoded_bound(N),
                                      block_encoded_bound(N), &blens[b], all + (size_t)b * N, N, 0), 0);
        double t1 = now_s();
        size_t m;
        for (int r = 0; r < 5; r++)
            for (int b = 0; b < NB; b++)
                cr_assert_eq(block_decode(c, out, N, &m, blocks + (size_t)b * block_encoded_bound(N),
                                          blens[b], 0), 0);
        double t2 = now_s();
        fprintf(stderr, "speed, 30-event chains: encode %.1f M events/s, decode %.1f M events/s\n",
                NB * N / (t1 - t0) / 1e6, 5.0 * NB * N / (t2 - t1) / 1e6);
        block_codec_free(c);
        free(all);
        free(blocks);
        free(blens);
    }
    free(ev);
    free(out);
    free(buf);
}

/* The Taobao sample (user,item,category,type,ts): every (user, category)
 * chain round-trips; bytes/event printed. */
typedef struct tb_row {
    uint32_t user, item, cat;
    uint8_t type;
    int64_t ts;
    size_t line;
} tb_row;

static int tb_cmp(const void *a, const void *b)
{
    const tb_row *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->cat != y->cat) return x->cat < y->cat ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static int tb_cmp_user_ts(const void *a, const void *b)
{
    const tb_row *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* Dense id by first appearance (linear probing over a small open table). */
typedef struct densemap {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, n;
} densemap;

static uint32_t dense(densemap *m, uint64_t key)
{
    size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
    while (m->keys[i] != UINT64_MAX) {
        if (m->keys[i] == key) return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = key;
    m->vals[i] = (uint32_t)m->n++;
    return m->vals[i];
}

Test(block_codec, taobao_sample)
{
    char *path = tu_shared_data("taobao/UserBehavior_sample.csv");
    if (!path) return;
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t cap = 1 << 16, n = 0;
    tb_row *rows = malloc(cap * sizeof *rows);
    densemap dm[3];
    for (int k = 0; k < 3; k++) {
        dm[k].cap = 1 << 17;
        dm[k].n = 0;
        dm[k].keys = malloc(dm[k].cap * sizeof(uint64_t));
        dm[k].vals = malloc(dm[k].cap * sizeof(uint32_t));
        memset(dm[k].keys, 0xff, dm[k].cap * sizeof(uint64_t));
    }
    char line[256];
    while (fgets(line, sizeof line, f) && n < cap) {
        unsigned long long u, it, ct;
        long long ts;
        char ty[16];
        if (sscanf(line, "%llu,%llu,%llu,%15[^,],%lld", &u, &it, &ct, ty, &ts) != 5) continue;
        tb_row *r = &rows[n];
        r->user = dense(&dm[0], u);
        r->item = dense(&dm[1], it);
        r->cat = dense(&dm[2], ct);
        r->type = !strcmp(ty, "pv") ? 0 : !strcmp(ty, "buy") ? 1 : !strcmp(ty, "cart") ? 2 : 3;
        r->ts = ts;
        r->line = n++;
    }
    fclose(f);
    qsort(rows, n, sizeof *rows, tb_cmp);
    block_codec *c = NULL;
    cr_assert_eq(block_codec_new(&c, NULL, 0, 3), 0);
    ubt_event *ev = malloc(MAXN * sizeof *ev), *out = malloc(MAXN * sizeof *out);
    uint8_t *buf = malloc(block_encoded_bound(MAXN));
    size_t bytes = 0, chains = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && rows[j].user == rows[i].user && rows[j].cat == rows[i].cat) j++;
        size_t k = j - i;
        if (k > MAXN) k = MAXN;
        for (size_t q = 0; q < k; q++) {
            const tb_row *r = &rows[i + q];
            ev[q] = (ubt_event){.ts = r->ts, .item = r->item, .cat = r->cat, .type = r->type};
            /* ties: rank among equal timestamps in the chain */
            ev[q].tie = (q > 0 && ev[q - 1].ts == r->ts) ? ev[q - 1].tie + 1 : 0;
        }
        size_t len = round_trip(c, ev, k, 0, buf, block_encoded_bound(MAXN), out);
        bytes += len;
        chains++;
        i = j;
    }
    /* Each user's whole sequence as one block with categories (a mixed chain). */
    qsort(rows, n, sizeof *rows, tb_cmp_user_ts);
    size_t ubytes = 0, users = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && rows[j].user == rows[i].user) j++;
        size_t k = j - i < MAXN ? j - i : MAXN;
        for (size_t q = 0; q < k; q++) {
            const tb_row *r = &rows[i + q];
            ev[q] = (ubt_event){.ts = r->ts, .item = r->item, .cat = r->cat, .type = r->type};
            ev[q].tie = (q > 0 && ev[q - 1].ts == r->ts) ? ev[q - 1].tie + 1 : 0;
        }
        ubytes += round_trip(c, ev, k, 1, buf, block_encoded_bound(MAXN), out);
        users++;
        i = j;
    }
    fprintf(stderr, "taobao sample: %zu events; no dictionary: one block per (user, category) chain "
                    "(%zu blocks) %.3f bytes/event; one block with categories per user (%zu blocks) "
                    "%.3f bytes/event\n", n, chains, (double)bytes / (double)n, users,
            (double)ubytes / (double)n);
    block_codec_free(c);
    free(ev);
    free(out);
    free(buf);
    free(rows);
    for (int k = 0; k < 3; k++) {
        free(dm[k].keys);
        free(dm[k].vals);
    }
    free(path);
}
