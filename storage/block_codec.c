/*
 * block_codec.c: encoding and decoding of event blocks (see block_codec.h;
 * docs/BLOCK_FORMAT.md is the byte layout, and this file follows it).
 *
 * What it is: a pure byte codec. A block is a small byte-aligned header
 * (flags, n, first_ts, last_ts - first_ts), a payload, and a CRC-32C. The
 * payload is a bit stream of columns (timestamp deltas, sparse tie ranks,
 * types, items, categories), each numeric column coded with an Exp-Golomb
 * code whose parameter is chosen per column and per block, and ids through a
 * block-local dictionary when that is smaller; it is stored as it is, or
 * zstd-compressed (magicless frame, with or without the codec's dictionary)
 * when that is strictly smaller.
 * What it is not: storage. It knows nothing of LMDB, keys or vocabularies.
 *
 * Invariants:
 *   - Whatever bytes it is given, the decoder either returns events that
 *     satisfy the block invariants or LSIM_E_CORRUPT, and never reads
 *     outside src[0..len) nor writes outside out[0..n) and its scratch.
 *   - Decoding checks the CRC before it looks at the payload, and every
 *     field after it: varints canonical and in range, counts and dictionary
 *     indices in bounds, timestamps rebuilt in unsigned arithmetic within
 *     [first_ts, last_ts] (no signed overflow), events in (ts, tie) order,
 *     the payload consumed to its last byte with zero padding bits.
 *   - A codec allocates once (block_codec_new); encode and decode allocate
 *     nothing. block_raw_payload and block_train_dict, which run at build
 *     time only, may allocate.
 *   - Not thread-safe per codec: one codec per thread.
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_format / ZSTD_d_format (magicless frames) */
#include "storage/block_codec.h"

#include "lsim.h"
#include "storage/byte_order.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>

/* The bit reader's small functions sit in every decoding loop; make sure
 * they are inlined, so its state stays in registers. */
#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

/* ---- format constants (docs/BLOCK_FORMAT.md) ---------------------------- */

#define F_COMP_MASK 0x03u   /* bits 0-1: payload storage */
#define F_WITH_CAT 0x04u    /* bit 2: category column present */
#define F_TS32 0x08u        /* bit 3: first_ts as u32 LE (else zigzag varint) */
#define F_ITEM_DIRECT 0x10u /* bit 4: item column direct (else block dictionary) */
#define F_CAT_DIRECT 0x20u  /* bit 5: category column direct (else block dictionary) */
#define F_TIES 0x40u        /* bit 6: tie column present */
#define F_RESERVED 0x80u    /* bit 7: 0 in format 1; set = a later format, refused */

enum { COMP_RAW = 0, COMP_ZSTD = 1, COMP_ZSTD_DICT = 2 };

#define CRC_LEN 4u
#define HEADER_MAX (1u + 2u + 10u + 10u) /* flags, n, first_ts, span */
/* Bit streams shorter than this are not worth a zstd attempt: a frame costs
 * 5 bytes (2 of frame header, 3 of block header) before any content, and
 * an entropy-coded stream this short does not shrink by that much. */
#define COMPRESS_MIN 24u

/* Largest raw payload of n events, in bits, every column at its worst
 * (an Exp-Golomb code with the best parameter is never longer than with a
 * fixed one, and the encoder keeps the smaller of the two id modes):
 *   ts     6 + 65 (n - 2)        a u64 delta costs <= 65 bits with k = 63
 *   ties   19 + 12 + 46 n        count, two parameters, gap <= 13, rank <= 33
 *   types  16 + 16 * 256 + 1 + 8 n   k - 1 and k values (<= 16 bits each),
 *                                mode, indices (the shorter mode, <= 8 bits)
 *   items  6 + 33 n, cats 6 + 33 n   direct with k = 32
 * <= 4162 + 185 n bits <= 521 + 23.2 n bytes. */
static size_t raw_cap(size_t n)
{
    return 24u * n + 528u;
}

size_t block_encoded_bound(size_t n)
{
    if (n > (SIZE_MAX - HEADER_MAX - CRC_LEN - 528u) / 24u) return SIZE_MAX;
    return HEADER_MAX + raw_cap(n) + CRC_LEN;
}

/* ---- codec --------------------------------------------------------------- */

struct block_codec {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    ZSTD_CDict *cdict; /* NULL without a dictionary */
    ZSTD_DDict *ddict;
    uint32_t dict_crc; /* crc32c of the dictionary bytes: seeds the CRC of dict blocks */
    /* Scratch, carved from one allocation: */
    uint8_t *raw;   /* raw_cap(BLOCK_MAX_EVENTS): a payload being built or decompressed */
    uint8_t *zbuf;  /* ZSTD_COMPRESSBOUND(raw_cap(BLOCK_MAX_EVENTS)): a frame being built */
    size_t zcap;
    uint64_t *vals; /* BLOCK_MAX_EVENTS: one numeric column */
    uint32_t *ids;  /* BLOCK_MAX_EVENTS: one id column */
    uint32_t *uniq; /* BLOCK_MAX_EVENTS: its sorted distinct values (a block dictionary) */
    uint32_t *tmp;  /* BLOCK_MAX_EVENTS: radix sort buffer, decoded indices */
};

/* Scratch of the column builders and readers (a codec's, or block_raw_payload's own). */
typedef struct scratch {
    uint64_t *vals;
    uint32_t *ids, *uniq, *tmp;
} scratch;

static size_t round16(size_t x)
{
    return (x + 15u) & ~(size_t)15u;
}

/* Carves the four n-entry column arrays from mem (scratch_bytes(n) bytes). */
static void scratch_carve(scratch *s, uint8_t *mem, size_t n)
{
    s->vals = (uint64_t *)(void *)mem;
    s->ids = (uint32_t *)(void *)(mem + n * sizeof(uint64_t));
    s->uniq = s->ids + n;
    s->tmp = s->uniq + n;
}

static size_t scratch_bytes(size_t n)
{
    return n * (sizeof(uint64_t) + 3u * sizeof(uint32_t));
}

int block_codec_new(block_codec **out, const void *dict, size_t dict_len, int level)
{
    if (!out) return LSIM_E_INVAL;
    *out = NULL;
    if (dict_len > 0 && !dict) return LSIM_E_INVAL;
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) return LSIM_E_INVAL;

    size_t raw_bytes = round16(raw_cap(BLOCK_MAX_EVENTS));
    size_t zcap = round16(ZSTD_COMPRESSBOUND(raw_cap(BLOCK_MAX_EVENTS)));
    size_t total = round16(sizeof(block_codec)) + raw_bytes + zcap + scratch_bytes(BLOCK_MAX_EVENTS);
    uint8_t *mem = malloc(total);
    if (!mem) return LSIM_E_NOMEM;
    block_codec *c = (block_codec *)(void *)mem;
    memset(c, 0, sizeof *c);
    uint8_t *q = mem + round16(sizeof(block_codec));
    c->raw = q;
    q += raw_bytes;
    c->zbuf = q;
    c->zcap = zcap;
    q += zcap;
    scratch s;
    scratch_carve(&s, q, BLOCK_MAX_EVENTS);
    c->vals = s.vals;
    c->ids = s.ids;
    c->uniq = s.uniq;
    c->tmp = s.tmp;

    int rc = LSIM_E_NOMEM;
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    if (!c->cctx || !c->dctx) goto fail;
    rc = LSIM_E_INVAL;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_format, ZSTD_f_zstd1_magicless)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_dictIDFlag, 0)) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(c->dctx, ZSTD_d_format, ZSTD_f_zstd1_magicless)))
        goto fail;
    if (dict_len > 0) {
        c->cdict = ZSTD_createCDict(dict, dict_len, level);
        c->ddict = ZSTD_createDDict(dict, dict_len);
        /* Both copy the bytes. A NULL here is zstd refusing the dictionary
         * (a malformed header after the dictionary magic) or out of memory;
         * the dictionary comes from storage, so call it corrupt. */
        rc = LSIM_E_CORRUPT;
        if (!c->cdict || !c->ddict) goto fail;
        rc = LSIM_E_INVAL;
        if (ZSTD_isError(ZSTD_CCtx_refCDict(c->cctx, c->cdict))) goto fail;
        c->dict_crc = crc32c(0, dict, dict_len);
    }
    *out = c;
    return 0;
fail:
    block_codec_free(c);
    return rc;
}

void block_codec_free(block_codec *c)
{
    if (!c) return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    ZSTD_freeCDict(c->cdict);
    ZSTD_freeDDict(c->ddict);
    free(c);
}

/* ---- byte-level helpers (the header) -------------------------------------- */

static inline uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads a canonical LEB128 varint from [*p, end) into *v: at most 10 bytes,
 * no bits beyond 64, no overlong form (a last byte of 0 after the first).
 * Returns 0, or -1 (and *p unspecified). */
static inline int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t r = 0;
    for (unsigned i = 0, shift = 0; i < 10; i++, shift += 7) {
        if (q >= end) return -1;
        uint8_t b = *q++;
        if (i == 9 && b > 1) return -1;
        r |= (uint64_t)(b & 0x7fu) << shift;
        if (!(b & 0x80u)) {
            if (b == 0 && i > 0) return -1;
            *p = q;
            *v = r;
            return 0;
        }
    }
    return -1;
}

static inline uint64_t zigzag_enc(int64_t v)
{
    return v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
}

static inline int64_t zigzag_dec(uint64_t v)
{
    return (v & 1u) ? -(int64_t)(v >> 1) - 1 : (int64_t)(v >> 1);
}

/* base + off, where the caller guarantees the sum is an int64; no signed
 * overflow and no implementation-defined conversion on the way. */
static inline int64_t ts_add(int64_t base, uint64_t off)
{
    uint64_t u = (uint64_t)base + off;
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

/* Bits needed for x (0 for 0). */
static inline unsigned bit_width(uint64_t x)
{
    return (64u - (unsigned)__builtin_clzll(x | 1u)) - (x == 0); /* branch-free */
}

/* ---- bit stream: writing --------------------------------------------------- */

/* LSB-first: the first bit written is bit 0 of the first byte. */
typedef struct bit_writer {
    uint8_t *p;
    uint64_t acc; /* < 8 pending bits between calls */
    unsigned nb;
} bit_writer;

/* Appends the low w bits of v (w <= 32). */
static inline void bw_put(bit_writer *b, uint64_t v, unsigned w)
{
    b->acc |= (v & ((1ull << w) - 1u)) << b->nb;
    b->nb += w;
    while (b->nb >= 8) {
        *b->p++ = (uint8_t)b->acc;
        b->acc >>= 8;
        b->nb -= 8;
    }
}

static inline void bw_put64(bit_writer *b, uint64_t v, unsigned w) /* w <= 64 */
{
    if (w > 32) {
        bw_put(b, v, 32);
        v >>= 32;
        w -= 32;
    }
    bw_put(b, v, w);
}

/* Pads with zero bits to a byte boundary; returns the end. */
static inline uint8_t *bw_finish(bit_writer *b)
{
    if (b->nb) *b->p++ = (uint8_t)b->acc;
    b->acc = 0;
    b->nb = 0;
    return b->p;
}

/* Exp-Golomb code of order k (k <= 63) of x, in the form of
 * docs/BLOCK_FORMAT.md: with h = x >> k and L = bit_width(h), L one bits and
 * a zero bit, then the low L - 1 bits of h (its top bit is implied), then
 * the low k bits of x. Length: k + (L ? 2 L : 1). */
static inline void eg_put(bit_writer *b, uint64_t x, unsigned k)
{
    uint64_t h = x >> k;
    unsigned L = bit_width(h), ones = L;
    while (ones >= 32) {
        bw_put(b, 0xffffffffu, 32);
        ones -= 32;
    }
    bw_put(b, (1ull << ones) - 1u, ones + 1u);
    if (L >= 2) bw_put64(b, h, L - 1u);
    if (k) bw_put64(b, x, k);
}

static inline size_t eg_len(unsigned b, unsigned k) /* b = bit_width(x) */
{
    return b > k ? k + 2u * (b - k) : k + 1u;
}

/* A lone number: its bit width in 7 bits, then the bits below its top bit. */
static inline void num_put(bit_writer *b, uint64_t x)
{
    unsigned w = bit_width(x);
    bw_put(b, w, 7);
    if (w >= 2) bw_put64(b, x, w - 1u);
}

/* Truncated binary code of x < d (d >= 2), w = bit_width(d - 1): with
 * u = 2^w - d, x < u takes w - 1 bits; otherwise x + u takes w bits, sent
 * as its top w - 1 bits then its lowest bit. Every code is a valid index. */
static inline void tb_put(bit_writer *b, uint32_t x, uint32_t d, unsigned w)
{
    uint32_t u = (1u << w) - d;
    uint32_t y = x + u, is_long = x >= u, mask = 0u - is_long;
    uint32_t code_long = (y >> 1) | (y & 1u) << (w - 1u); /* top w - 1 bits first */
    bw_put(b, x ^ ((code_long ^ x) & mask), w - 1u + is_long);
}

static inline size_t tb_len(uint32_t x, uint32_t d, unsigned w)
{
    return x < (1u << w) - d ? w - 1u : w;
}

/* Histogram of bit widths of a column, to choose its Exp-Golomb order. */
typedef struct width_hist {
    size_t cnt[65];
} width_hist;

/* Returns the order k in 0..63 with the fewest bits for the column, and
 * those bits (without the 6 bits that store k) in *bits. */
static unsigned eg_best(const width_hist *h, size_t *bits)
{
    unsigned lo = 64, hi = 0;
    for (unsigned b = 0; b <= 64; b++) {
        if (!h->cnt[b]) continue;
        if (b < lo) lo = b;
        hi = b;
    }
    unsigned best_k = 0;
    size_t best = SIZE_MAX;
    if (lo > hi) lo = hi = 0; /* empty column */
    for (unsigned k = lo ? lo - 1u : 0u; k <= hi && k <= 63; k++) {
        size_t t = 0;
        for (unsigned b = lo; b <= hi; b++) t += h->cnt[b] * eg_len(b, k);
        if (t < best) {
            best = t;
            best_k = k;
        }
    }
    *bits = best == SIZE_MAX ? 0 : best;
    return best_k;
}

/* Writes the column vals[0..m): its order in 6 bits, then m codes. */
static void eg_column_put(bit_writer *b, const uint64_t *vals, size_t m)
{
    width_hist h;
    memset(&h, 0, sizeof h);
    for (size_t i = 0; i < m; i++) h.cnt[bit_width(vals[i])]++;
    size_t bits;
    unsigned k = eg_best(&h, &bits);
    bw_put(b, k, 6);
    for (size_t i = 0; i < m; i++) eg_put(b, vals[i], k);
}

/* ---- bit stream: reading --------------------------------------------------- */

typedef struct bit_reader {
    const uint8_t *p, *end;
    uint64_t acc; /* nb unread bits (nb <= 63), zero above them */
    unsigned nb;
} bit_reader;

/* Tops the buffer up to at least 56 bits, or to the end of the stream;
 * nb stays <= 63, so shifts by nb are defined. Branch-free but for the
 * stream's last 8 bytes, so callers call it before every code. */
HOT void br_refill(bit_reader *r)
{
    if (r->end - r->p >= 8) {
        /* One 8-byte load; keep the whole bytes that fit (branch-free). */
        uint64_t w = le64_get(r->p);
        unsigned nb = r->nb | 56u;
        r->acc = (r->acc | w << r->nb) & ((1ull << nb) - 1u);
        r->p += (63u - r->nb) >> 3;
        r->nb = nb;
        return;
    }
    while (r->nb <= 55 && r->p < r->end) {
        r->acc |= (uint64_t)*r->p++ << r->nb;
        r->nb += 8;
    }
}

HOT void br_skip(bit_reader *r, unsigned w) /* w <= nb */
{
    r->acc = w >= 64 ? 0 : r->acc >> w;
    r->nb -= w;
}

/* Reads w <= 32 bits; -1 past the end. */
HOT int br_get(bit_reader *r, unsigned w, uint64_t *v)
{
    if (r->nb < w) {
        br_refill(r);
        if (r->nb < w) return -1;
    }
    *v = r->acc & ((1ull << w) - 1u);
    r->acc >>= w;
    r->nb -= w;
    return 0;
}

HOT int br_get64(bit_reader *r, unsigned w, uint64_t *v) /* w <= 64 */
{
    uint64_t lo = 0, hi = 0;
    if (w > 32) {
        if (br_get(r, 32, &lo) != 0 || br_get(r, w - 32u, &hi) != 0) return -1;
        *v = lo | hi << 32;
        return 0;
    }
    return br_get(r, w, v);
}


HOT uint64_t low_bits(uint64_t v, unsigned w) /* w <= 64 */
{
    return w >= 64 ? v : v & ((1ull << w) - 1u);
}

/* Reads an Exp-Golomb code of order k (see eg_put) into *x, which must be
 * <= max. Returns 0 or -1. */
HOT int eg_get(bit_reader *r, unsigned k, uint64_t max, uint64_t *x)
{
    /* Fast path: the whole code is among the buffered bits. */
    br_refill(r);
    uint64_t zeros = ~r->acc & low_bits(~0ull, r->nb);
    if (zeros) {
        /* Branch-free on the code's length, which varies with the data. */
        unsigned L = (unsigned)__builtin_ctzll(zeros);
        unsigned nz = L != 0;
        unsigned sh = L - nz; /* bits of h below its implied top bit */
        unsigned len = L + 1u + sh + k;
        if (len <= r->nb) {
            /* len <= nb <= 63, so every shift below is < 64 (and L <= 64 - k). */
            uint64_t a = r->acc >> (L + 1u);
            uint64_t top = (uint64_t)nz << sh;
            uint64_t h = (a & ((1ull << sh) - 1u)) | top;
            a >>= sh;
            uint64_t v = h << k | (a & ((1ull << k) - 1u));
            r->acc >>= len;
            r->nb -= len;
            if (v > max) return -1;
            *x = v;
            return 0;
        }
    }
    unsigned L = 0;
    for (;;) {
        if (r->nb == 0) {
            br_refill(r);
            if (r->nb == 0) return -1;
        }
        uint64_t z = ~r->acc & low_bits(~0ull, r->nb);
        if (z) {
            unsigned t = (unsigned)__builtin_ctzll(z);
            L += t;
            br_skip(r, t + 1u);
            break;
        }
        L += r->nb;
        br_skip(r, r->nb);
        if (L > 64u - k) return -1;
    }
    if (L > 64u - k) return -1;
    uint64_t h = L, low = 0; /* L is 0 or 1 here unless read below */
    if (L >= 2) {
        if (br_get64(r, L - 1u, &h) != 0) return -1;
        h |= 1ull << (L - 1u);
    }
    if (k && br_get64(r, k, &low) != 0) return -1;
    uint64_t v = h << k | low;
    if (v > max) return -1;
    *x = v;
    return 0;
}

HOT int tb_get(bit_reader *r, uint32_t d, unsigned w, uint32_t *x)
{
    uint32_t u = (1u << w) - d;
    br_refill(r);
    if (r->nb >= w) {
        /* Fast path, branch-free: peek w bits; a long code takes all w. */
        uint32_t peek = (uint32_t)(r->acc & ((1ull << w) - 1u));
        uint32_t v = peek & ((1u << (w - 1u)) - 1u), top = peek >> (w - 1u);
        uint32_t is_long = v >= u, mask = 0u - is_long;
        *x = v ^ (((((v << 1) | top) - u) ^ v) & mask);
        r->acc >>= w - 1u + is_long;
        r->nb -= w - 1u + is_long;
        return 0;
    }
    uint64_t v, bit; /* at the end: the code may be shorter than w */
    if (br_get(r, w - 1u, &v) != 0) return -1;
    if (v >= u) {
        if (br_get(r, 1, &bit) != 0) return -1;
        v = ((v << 1) | bit) - u;
    }
    *x = (uint32_t)v; /* < d by construction */
    return 0;
}

HOT int num_get(bit_reader *r, uint64_t max, uint64_t *x)
{
    uint64_t w, v;
    if (br_get(r, 7, &w) != 0 || w > 64) return -1;
    if (w < 2) {
        v = w;
    } else {
        if (br_get64(r, (unsigned)w - 1u, &v) != 0) return -1;
        v |= 1ull << (w - 1u);
    }
    if (v > max) return -1;
    *x = v;
    return 0;
}

/* True when everything was read: no whole byte left, padding bits zero. */
static inline int br_at_end(bit_reader *r)
{
    return r->p == r->end && r->nb < 8 && r->acc == 0;
}

/* ---- sorting and block dictionaries ---------------------------------------- */

/* Sorts v[0..n) ascending; tmp holds n. LSD radix, 8 bits a pass, skipping
 * passes where all values share the digit; insertion sort when short. */
static void sort_u32(uint32_t *v, uint32_t *tmp, size_t n)
{
    if (n <= 48) {
        for (size_t i = 1; i < n; i++) {
            uint32_t x = v[i];
            size_t j = i;
            while (j > 0 && v[j - 1] > x) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
        return;
    }
    size_t cnt[4][256];
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < n; i++) {
        uint32_t x = v[i];
        cnt[0][x & 0xffu]++;
        cnt[1][(x >> 8) & 0xffu]++;
        cnt[2][(x >> 16) & 0xffu]++;
        cnt[3][x >> 24]++;
    }
    uint32_t *src = v, *dst = tmp;
    for (unsigned pass = 0; pass < 4; pass++) {
        unsigned shift = pass * 8u;
        if (cnt[pass][(src[0] >> shift) & 0xffu] == n) continue;
        size_t sum = 0;
        for (unsigned d = 0; d < 256; d++) {
            size_t c = cnt[pass][d];
            cnt[pass][d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[cnt[pass][(src[i] >> shift) & 0xffu]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != v) memcpy(v, src, n * sizeof *v);
}

/* Index of x in the sorted distinct u[0..d) (x is there). */
static inline uint32_t dict_find(const uint32_t *u, size_t d, uint32_t x)
{
    size_t lo = 0, hi = d;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (u[mid] <= x) lo = mid;
        else hi = mid;
    }
    return (uint32_t)lo;
}

/* ---- payload: building --------------------------------------------------- */

/* Writes the id column ids[0..n) in the smaller of its two modes (a tie
 * goes to the dictionary); returns 1 for direct, 0 for dictionary.
 *   dictionary: num(d - 1); num(u_0); if d >= 2: an Exp-Golomb column of
 *               u_j - u_{j-1} - 1 (j = 1..d-1), then n indices into u,
 *               truncated binary
 *   direct:     an Exp-Golomb column of the n values */
static int id_column_put(bit_writer *b, const uint32_t *ids, size_t n, const scratch *s)
{
    uint32_t *u = s->uniq;
    memcpy(u, ids, n * sizeof *ids);
    sort_u32(u, s->tmp, n);
    size_t d = 1;
    for (size_t i = 1; i < n; i++)
        if (u[i] != u[d - 1]) u[d++] = u[i];

    width_hist hd, hg;
    memset(&hd, 0, sizeof hd);
    memset(&hg, 0, sizeof hg);
    for (size_t i = 0; i < n; i++) hd.cnt[bit_width(ids[i])]++;
    for (size_t j = 1; j < d; j++) hg.cnt[bit_width(u[j] - u[j - 1] - 1u)]++;
    size_t direct_bits, gap_bits;
    unsigned kd = eg_best(&hd, &direct_bits);
    unsigned kg = eg_best(&hg, &gap_bits);
    unsigned w = bit_width(d - 1);
    size_t idx_bits = 0;
    if (d >= 2)
        for (size_t i = 0; i < n; i++) {
            s->tmp[i] = dict_find(u, d, ids[i]);
            idx_bits += tb_len(s->tmp[i], (uint32_t)d, w);
        }
    size_t dict_bits = 7u + (bit_width(d - 1) > 1 ? bit_width(d - 1) - 1u : 0u) + 7u +
                       (bit_width(u[0]) > 1 ? bit_width(u[0]) - 1u : 0u) +
                       (d >= 2 ? 6u + gap_bits + idx_bits : 0u);
    direct_bits += 6u;

    if (direct_bits < dict_bits) {
        bw_put(b, kd, 6);
        for (size_t i = 0; i < n; i++) eg_put(b, ids[i], kd);
        return 1;
    }
    num_put(b, d - 1);
    num_put(b, u[0]);
    if (d >= 2) {
        bw_put(b, kg, 6);
        for (size_t j = 1; j < d; j++) eg_put(b, u[j] - u[j - 1] - 1u, kg);
        for (size_t i = 0; i < n; i++) tb_put(b, s->tmp[i], (uint32_t)d, w);
    }
    return 0;
}

/* Writes the type column: k - 1 and the k distinct types by descending
 * count (equal counts by ascending value), as Exp-Golomb order 0 codes, then
 * each event's index into that list, truncated binary or Exp-Golomb order
 * 0, whichever is shorter (one mode bit; a tie goes to truncated binary).
 * A single event is its type alone. */
static void type_column_put(bit_writer *b, const ubt_event *ev, size_t n)
{
    if (n == 1) {
        eg_put(b, ev[0].type, 0);
        return;
    }
    size_t cnt[256];
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < n; i++) cnt[ev[i].type]++;
    uint8_t order[256], rank[256];
    unsigned k = 0;
    for (unsigned t = 0; t < 256; t++)
        if (cnt[t]) order[k++] = (uint8_t)t;
    /* Insertion sort by descending count; stable, so equal counts stay ascending. */
    for (unsigned i = 1; i < k; i++) {
        uint8_t x = order[i];
        unsigned j = i;
        while (j > 0 && cnt[order[j - 1]] < cnt[x]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    eg_put(b, k - 1u, 0);
    for (unsigned i = 0; i < k; i++) {
        eg_put(b, order[i], 0);
        rank[order[i]] = (uint8_t)i;
    }
    if (k == 1) return;
    unsigned w = bit_width(k - 1u);
    size_t eg_bits = 0, tb_bits = 0;
    for (unsigned i = 0; i < k; i++) {
        eg_bits += cnt[order[i]] * eg_len(bit_width(i), 0);
        tb_bits += cnt[order[i]] * tb_len(i, k, w);
    }
    int use_eg = eg_bits < tb_bits;
    bw_put(b, (uint64_t)use_eg, 1);
    for (size_t i = 0; i < n; i++) {
        if (use_eg) eg_put(b, rank[ev[i].type], 0);
        else tb_put(b, rank[ev[i].type], k, w);
    }
}

/* Checks ev[0..n) (n in range, (ts, tie) non-decreasing). */
static int events_check(const ubt_event *ev, size_t n)
{
    if (n < 1 || n > BLOCK_MAX_EVENTS) return LSIM_E_INVAL;
    for (size_t i = 1; i < n; i++) {
        if (ev[i].ts < ev[i - 1].ts) return LSIM_E_INVAL;
        if (ev[i].ts == ev[i - 1].ts && ev[i].tie < ev[i - 1].tie) return LSIM_E_INVAL;
    }
    return 0;
}

/* Writes the raw payload of ev[0..n) (checked) at dst (raw_cap(n) bytes);
 * ORs the column flags into *flags; returns the length. */
static size_t payload_build(uint8_t *dst, unsigned *flags, const ubt_event *ev, size_t n,
                            int with_cat, const scratch *s)
{
    bit_writer b = {dst, 0, 0};

    /* Timestamps: deltas of events 1..n-2; event 0 is first_ts and event
     * n-1 is last_ts, both in the header. */
    if (n >= 3) {
        for (size_t i = 1; i + 1 < n; i++) s->vals[i - 1] = (uint64_t)ev[i].ts - (uint64_t)ev[i - 1].ts;
        eg_column_put(&b, s->vals, n - 2);
    }

    /* Ties: only the nonzero ones: count, position gaps, ranks - 1. */
    size_t m = 0, next = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].tie == 0) continue;
        s->vals[m++] = i - next;
        next = i + 1;
    }
    if (m > 0) {
        *flags |= F_TIES;
        num_put(&b, m - 1);
        eg_column_put(&b, s->vals, m);
        m = 0;
        for (size_t i = 0; i < n; i++)
            if (ev[i].tie) s->vals[m++] = ev[i].tie - 1u;
        eg_column_put(&b, s->vals, m);
    }

    type_column_put(&b, ev, n);

    for (size_t i = 0; i < n; i++) s->ids[i] = ev[i].item;
    if (id_column_put(&b, s->ids, n, s)) *flags |= F_ITEM_DIRECT;
    if (with_cat) {
        for (size_t i = 0; i < n; i++) s->ids[i] = ev[i].cat;
        if (id_column_put(&b, s->ids, n, s)) *flags |= F_CAT_DIRECT;
    }
    return (size_t)(bw_finish(&b) - dst);
}

/* ---- header -------------------------------------------------------------- */

typedef struct hdr {
    unsigned flags;
    uint32_t n;
    int64_t first_ts;
    uint64_t span; /* last_ts - first_ts */
    size_t len;    /* header bytes */
} hdr;

/* Header bytes for flags (the compression bits do not change its length),
 * n, first, span; returns the length. */
static size_t header_put(uint8_t *p, unsigned flags, size_t n, int64_t first, uint64_t span)
{
    uint8_t *q = p;
    *q++ = (uint8_t)flags;
    q = varint_put(q, n);
    if (flags & F_TS32) {
        le32_put(q, (uint32_t)first);
        q += 4;
    } else {
        q = varint_put(q, zigzag_enc(first));
    }
    if (n >= 2) q = varint_put(q, span);
    return (size_t)(q - p);
}

/* Parses and checks the header of src[0..len), which must also leave room
 * for a payload of at least one byte and the CRC. Returns 0 or -1. */
static int header_parse(const uint8_t *src, size_t len, hdr *h)
{
    if (len < 1u + 1u + 1u + 1u + CRC_LEN) return -1; /* flags, n, first_ts, payload, CRC */
    const uint8_t *p = src, *end = src + len - CRC_LEN;
    unsigned f = *p++;
    if ((f & F_RESERVED) || (f & F_COMP_MASK) == 3u) return -1;
    if ((f & F_CAT_DIRECT) && !(f & F_WITH_CAT)) return -1;
    uint64_t v;
    if (varint_get(&p, end, &v) != 0 || v == 0 || v > BLOCK_MAX_EVENTS) return -1;
    h->n = (uint32_t)v;
    if (f & F_TS32) {
        if (end - p < 4) return -1;
        h->first_ts = (int64_t)le32_get(p);
        p += 4;
    } else {
        if (varint_get(&p, end, &v) != 0) return -1;
        h->first_ts = zigzag_dec(v);
        /* Canonical: a first_ts that fits u32 is stored as u32. */
        if (h->first_ts >= 0 && h->first_ts <= (int64_t)UINT32_MAX) return -1;
    }
    h->span = 0;
    if (h->n >= 2) {
        /* INT64_MAX - first_ts, exact in u64 for every first_ts. */
        uint64_t room = (uint64_t)INT64_MAX - (uint64_t)h->first_ts;
        if (varint_get(&p, end, &h->span) != 0 || h->span > room) return -1;
    }
    if (p >= end) return -1; /* no payload */
    h->flags = f;
    h->len = (size_t)(p - src);
    return 0;
}

int block_read_header(const uint8_t *src, size_t len, block_header *h)
{
    if (!src || !h) return LSIM_E_INVAL;
    hdr x;
    if (header_parse(src, len, &x) != 0) return LSIM_E_CORRUPT;
    h->n = x.n;
    h->first_ts = x.first_ts;
    h->last_ts = ts_add(x.first_ts, x.span);
    h->with_cat = (x.flags & F_WITH_CAT) ? 1 : 0;
    return 0;
}

/* ---- encode -------------------------------------------------------------- */

int block_encode(block_codec *c, uint8_t *dst, size_t cap, size_t *len, const ubt_event *ev,
                 size_t n, int with_cat)
{
    return block_encode_keyed(c, dst, cap, len, ev, n, with_cat, NULL, 0);
}

/* The CRC's seed: the dictionary for a dictionary block, then the key the block is stored under. */
static uint32_t crc_seed(const block_codec *c, unsigned comp, const void *key, size_t key_len)
{
    uint32_t seed = comp == COMP_ZSTD_DICT ? c->dict_crc : 0u;
    return key_len ? crc32c(seed, key, key_len) : seed;
}

int block_encode_keyed(block_codec *c, uint8_t *dst, size_t cap, size_t *len, const ubt_event *ev, size_t n,
                       int with_cat, const void *key, size_t key_len)
{
    if (!c || !dst || !len || !ev || (key_len && !key)) return LSIM_E_INVAL;
    *len = 0;
    int rc = events_check(ev, n);
    if (rc != 0) return rc;
    with_cat = with_cat ? 1 : 0;

    scratch s = {c->vals, c->ids, c->uniq, c->tmp};
    unsigned flags = with_cat ? F_WITH_CAT : 0u;
    size_t raw_len = payload_build(c->raw, &flags, ev, n, with_cat, &s);

    int64_t first = ev[0].ts;
    uint64_t span = (uint64_t)ev[n - 1].ts - (uint64_t)first;
    if (first >= 0 && first <= (int64_t)UINT32_MAX) flags |= F_TS32;

    /* zstd, kept only when strictly smaller than the raw payload. The frame
     * is built in scratch, so the choice never depends on cap. */
    unsigned comp = COMP_RAW;
    const uint8_t *payload = c->raw;
    size_t plen = raw_len;
    if (raw_len >= COMPRESS_MIN) {
        size_t z = ZSTD_compress2(c->cctx, c->zbuf, c->zcap, c->raw, raw_len);
        if (!ZSTD_isError(z) && z < raw_len) {
            comp = c->cdict ? COMP_ZSTD_DICT : COMP_ZSTD;
            payload = c->zbuf;
            plen = z;
        }
    }
    flags |= comp;
    uint8_t hbuf[HEADER_MAX];
    size_t hlen = header_put(hbuf, flags, n, first, span);
    size_t total = hlen + plen + CRC_LEN;
    if (cap < total) return LSIM_E_INVAL;
    memcpy(dst, hbuf, hlen);
    memcpy(dst + hlen, payload, plen);
    le32_put(dst + hlen + plen, crc32c(crc_seed(c, comp, key, key_len), dst, hlen + plen));
    *len = total;
    return 0;
}

int block_raw_payload(uint8_t *dst, size_t cap, size_t *len, const ubt_event *ev, size_t n,
                      int with_cat)
{
    if (!dst || !len || !ev) return LSIM_E_INVAL;
    *len = 0;
    int rc = events_check(ev, n);
    if (rc != 0) return rc;
    size_t rbytes = round16(raw_cap(n));
    uint8_t *mem = malloc(rbytes + scratch_bytes(n));
    if (!mem) return LSIM_E_NOMEM;
    scratch s;
    scratch_carve(&s, mem + rbytes, n);
    unsigned flags = 0;
    size_t l = payload_build(mem, &flags, ev, n, with_cat ? 1 : 0, &s);
    if (l > cap) {
        free(mem);
        return LSIM_E_INVAL;
    }
    memcpy(dst, mem, l);
    free(mem);
    *len = l;
    return 0;
}

/* ---- decode -------------------------------------------------------------- */

/* Reads one id column of n values into the uint32_t field at byte offset
 * `field` of out[0..n) (a dictionary goes through dict[0..n)). Returns 0
 * or -1. */
static int id_column_get(bit_reader *rp, ubt_event *out, size_t field, uint32_t *dict, size_t n,
                         int direct)
{
    bit_reader rr = *rp, *r = &rr; /* a local copy stays in registers: no aliasing with out */
    uint8_t *base = (uint8_t *)out + field;
#define ID_AT(i) (*(uint32_t *)(void *)(base + (i) * sizeof(ubt_event)))
    uint64_t v, k;
    if (direct) {
        if (br_get(r, 6, &k) != 0) return -1;
        for (size_t i = 0; i < n; i++) {
            if (eg_get(r, (unsigned)k, UINT32_MAX, &v) != 0) return -1;
            ID_AT(i) = (uint32_t)v;
        }
        *rp = rr;
        return 0;
    }
    if (num_get(r, n - 1, &v) != 0) return -1;
    size_t d = (size_t)v + 1u;
    if (num_get(r, UINT32_MAX, &v) != 0) return -1;
    dict[0] = (uint32_t)v;
    if (d == 1) {
        for (size_t i = 0; i < n; i++) ID_AT(i) = dict[0];
        *rp = rr;
        return 0;
    }
    if (br_get(r, 6, &k) != 0) return -1;
    for (size_t j = 1; j < d; j++) {
        uint32_t prev = dict[j - 1];
        if (prev == UINT32_MAX) return -1;
        if (eg_get(r, (unsigned)k, (uint64_t)UINT32_MAX - prev - 1u, &v) != 0) return -1;
        dict[j] = prev + 1u + (uint32_t)v;
    }
    unsigned w = bit_width(d - 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t x;
        if (tb_get(r, (uint32_t)d, w, &x) != 0) return -1;
        ID_AT(i) = dict[x];
    }
#undef ID_AT
    *rp = rr;
    return 0;
}

static int type_column_get(bit_reader *rp, ubt_event *out, size_t n)
{
    bit_reader rr = *rp, *r = &rr;
    uint64_t v;
    if (n == 1) {
        if (eg_get(r, 0, 255, &v) != 0) return -1;
        out[0].type = (uint8_t)v;
        *rp = rr;
        return 0;
    }
    if (eg_get(r, 0, 255, &v) != 0) return -1;
    size_t k = (size_t)v + 1u;
    if (k > n) return -1;
    uint8_t order[256], seen[256];
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < k; i++) {
        if (eg_get(r, 0, 255, &v) != 0 || seen[v]) return -1;
        seen[v] = 1;
        order[i] = (uint8_t)v;
    }
    if (k == 1) {
        for (size_t i = 0; i < n; i++) out[i].type = order[0];
        *rp = rr;
        return 0;
    }
    uint64_t use_eg;
    if (br_get(r, 1, &use_eg) != 0) return -1;
    unsigned w = bit_width(k - 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t x;
        if (use_eg) {
            if (eg_get(r, 0, k - 1, &v) != 0) return -1;
            x = (uint32_t)v;
        } else if (tb_get(r, (uint32_t)k, w, &x) != 0) {
            return -1;
        }
        out[i].type = order[x];
    }
    *rp = rr;
    return 0;
}

/* Decodes the raw payload raw[0..raw_len) of the block with header h into
 * out[0..h->n). Returns 0 or -1. */
static int payload_parse(ubt_event *out, const hdr *h, const uint8_t *raw, size_t raw_len,
                         uint32_t default_cat, const scratch *s)
{
    bit_reader r = {raw, raw + raw_len, 0, 0};
    size_t n = h->n;
    uint64_t v, k;

    /* Timestamps: every partial sum stays within [0, span], so every ts lies
     * in [first_ts, last_ts], which the header proved representable. */
    for (size_t i = 0; i < n; i++) {
        out[i].tie = 0;
        out[i].cat = default_cat;
    }
    out[0].ts = h->first_ts;
    if (n >= 3) {
        bit_reader b = r; /* local: no aliasing with out[].ts */
        if (br_get(&b, 6, &k) != 0) return -1;
        uint64_t sum = 0;
        int64_t first = h->first_ts;
        uint64_t span = h->span;
        for (size_t i = 1; i + 1 < n; i++) {
            if (eg_get(&b, (unsigned)k, span - sum, &v) != 0) return -1;
            sum += v;
            out[i].ts = ts_add(first, sum);
        }
        r = b;
    }
    if (n >= 2) out[n - 1].ts = ts_add(h->first_ts, h->span);

    if (h->flags & F_TIES) {
        if (num_get(&r, n - 1, &v) != 0) return -1;
        size_t m = (size_t)v + 1u, next = 0;
        if (br_get(&r, 6, &k) != 0) return -1;
        for (size_t j = 0; j < m; j++) {
            if (next >= n) return -1;
            if (eg_get(&r, (unsigned)k, n - 1 - next, &v) != 0) return -1;
            s->tmp[j] = (uint32_t)(next + v);
            next = s->tmp[j] + 1u;
        }
        if (br_get(&r, 6, &k) != 0) return -1;
        for (size_t j = 0; j < m; j++) {
            if (eg_get(&r, (unsigned)k, (uint64_t)UINT32_MAX - 1u, &v) != 0) return -1;
            out[s->tmp[j]].tie = (uint32_t)v + 1u;
        }
    }

    if (type_column_get(&r, out, n) != 0) return -1;

    if (id_column_get(&r, out, offsetof(ubt_event, item), s->uniq, n,
                      (h->flags & F_ITEM_DIRECT) != 0) != 0)
        return -1;
    if ((h->flags & F_WITH_CAT) &&
        id_column_get(&r, out, offsetof(ubt_event, cat), s->uniq, n,
                      (h->flags & F_CAT_DIRECT) != 0) != 0)
        return -1;
    if (!br_at_end(&r)) return -1;

    /* Ties must keep (ts, tie) order, as the encoder requires (without
     * ties, the deltas being unsigned is enough). */
    if (h->flags & F_TIES)
        for (size_t i = 1; i < n; i++)
            if (out[i].ts == out[i - 1].ts && out[i].tie < out[i - 1].tie) return -1;
    return 0;
}

int block_decode(block_codec *c, ubt_event *out, size_t cap, size_t *n, const uint8_t *src,
                 size_t len, uint32_t default_cat)
{
    return block_decode_keyed(c, out, cap, n, src, len, default_cat, NULL, 0);
}

int block_decode_keyed(block_codec *c, ubt_event *out, size_t cap, size_t *n, const uint8_t *src, size_t len,
                       uint32_t default_cat, const void *key, size_t key_len)
{
    if (!c || !out || !n || !src || (key_len && !key)) return LSIM_E_INVAL;
    *n = 0;
    hdr h;
    if (header_parse(src, len, &h) != 0) return LSIM_E_CORRUPT;
    unsigned comp = h.flags & F_COMP_MASK;
    if (comp == COMP_ZSTD_DICT && !c->ddict) return LSIM_E_CORRUPT; /* a dictionary block, and no dictionary */
    if (crc32c(crc_seed(c, comp, key, key_len), src, len - CRC_LEN) != le32_get(src + len - CRC_LEN))
        return LSIM_E_CORRUPT;
    if (cap < h.n) return LSIM_E_INVAL;

    const uint8_t *payload = src + h.len;
    size_t plen = len - CRC_LEN - h.len;
    const uint8_t *raw = payload;
    size_t raw_len = plen;
    if (comp != COMP_RAW) {
        size_t r = comp == COMP_ZSTD_DICT
                       ? ZSTD_decompress_usingDDict(c->dctx, c->raw, raw_cap(h.n), payload, plen,
                                                    c->ddict)
                       : ZSTD_decompressDCtx(c->dctx, c->raw, raw_cap(h.n), payload, plen);
        /* The encoder keeps a frame only when it is strictly smaller. */
        if (ZSTD_isError(r) || r <= plen) return LSIM_E_CORRUPT;
        raw = c->raw;
        raw_len = r;
    }
    scratch s = {c->vals, c->ids, c->uniq, c->tmp};
    if (payload_parse(out, &h, raw, raw_len, default_cat, &s) != 0) return LSIM_E_CORRUPT;
    *n = h.n;
    return 0;
}

/* ---- dictionary training ------------------------------------------------- */

int block_train_dict(void *dict, size_t dict_cap, size_t *dict_len, const void *samples,
                     const size_t *sample_lens, size_t n_samples)
{
    if (!dict || !dict_len) return LSIM_E_INVAL;
    *dict_len = 0;
    if (n_samples > 0 && (!samples || !sample_lens)) return LSIM_E_INVAL;
    if (n_samples > UINT_MAX) return LSIM_E_INVAL;
    size_t total = 0;
    for (size_t i = 0; i < n_samples; i++) total += sample_lens[i];
    /* ZDICT wants a few samples and some content (it errs itself when short;
     * refusing early keeps the reason plain). */
    if (n_samples < 8 || dict_cap < 256 || total < 1024) return LSIM_E_LIMIT;
    size_t r = ZDICT_trainFromBuffer(dict, dict_cap, samples, sample_lens, (unsigned)n_samples);
    if (ZDICT_isError(r)) return LSIM_E_LIMIT;
    *dict_len = r;
    return 0;
}
