/*
 * vocab.c: see vocab.h. Strings live in fixed chunks that are never moved
 * (a pointer from vocab_str stays valid until vocab_free, even as the
 * vocabulary grows). A hash table slot holds the entry's id + 1 (0 = empty),
 * a tag (24 bits of its hash and its length) and its first 8 bytes, so a
 * probe for an id of at most 8 bytes (most raw ids: Taobao's are 7 digits)
 * is decided by the slot alone, without touching the entry's memory. The
 * table is kept at most half full.
 */
#include "index/vocab.h"

#include "index/ubt_layout.h"
#include "lsim.h"
#include "storage/block_codec.h"
#include "storage/byte_order.h"
#include "storage/error_detail.h"
#include "storage/lmdb_env.h"
#include "storage/varint.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

typedef struct vocab_slot {
    uint64_t head; /* the first 8 bytes of the id, zero-padded */
    uint32_t tag;  /* hash & 0xffffff00 | length */
    uint32_t id1;  /* id + 1; 0: empty */
} vocab_slot;

/* The largest block a vocabulary can write: every entry at the longest id,
 * stored raw, plus headers. A longer value is corrupt (checked before it is read). */
#define VOCAB_BLOCK_MAX_BYTES (VOCAB_BLOCK_ENTRIES * (LSIM_MAX_ID_LEN + 2 + 5) + 64)

struct vocab {
    char kind;
    int with_cat;
    uint32_t n, cap;       /* entries, capacity of strs/lens/hashes/cats */
    char **strs;           /* strs[id]: the NUL-terminated string, in a chunk that never moves */
    uint8_t *lens;         /* lens[id]: its length (ids are at most 255 bytes) */
    uint32_t *hashes;      /* low 32 bits of each entry's hash */
    uint32_t *cats;        /* items only */
    char **chunks;         /* string storage: chunks are never reallocated, so */
    size_t n_chunks, chunk_used, chunk_cap; /* pointers handed out stay valid */
    vocab_slot *table;
    size_t table_mask;
    uint32_t dirty_from;   /* first block to rewrite on store (UINT32_MAX: none) */
    uint32_t *crcs;        /* each loaded block's checksum: vocab_refresh decodes only blocks that changed */
    uint32_t n_crcs, crcs_cap;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
    const uint64_t m = 0x9e3779b97f4a7c15ULL;
    uint64_t h = 0x243f6a8885a308d3ULL ^ (len * m);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * m;
        h ^= h >> 29;
        s += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, len);
    h = (h ^ w) * m;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

int vocab_new(vocab **out, char kind, int with_cat)
{
    vocab *v = calloc(1, sizeof *v);
    if (!v) return LSIM_E_NOMEM;
    v->kind = kind;
    v->with_cat = with_cat;
    v->dirty_from = UINT32_MAX;
    v->table_mask = 1023;
    v->table = calloc(v->table_mask + 1, sizeof *v->table);
    if (!v->table) {
        free(v);
        return LSIM_E_NOMEM;
    }
    *out = v;
    return 0;
}

size_t vocab_string_bytes(const vocab *v)
{
    size_t total = 0;
    for (size_t i = 0; i < v->n_chunks; i++) /* add_entry's sizes */
        total += i < 8 ? ((size_t)4096 << i) : ((size_t)1 << 20);
    return total;
}

void vocab_free(vocab *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n_chunks; i++) free(v->chunks[i]);
    free(v->chunks);
    free(v->strs);
    free(v->lens);
    free(v->hashes);
    free(v->cats);
    free(v->crcs);
    free(v->table);
    free(v);
}

uint32_t vocab_size(const vocab *v)
{
    return v->n;
}

const char *vocab_str(const vocab *v, uint32_t id)
{
    return v->strs[id];
}

size_t vocab_len(const vocab *v, uint32_t id)
{
    return v->lens[id];
}

uint32_t vocab_cat(const vocab *v, uint32_t id)
{
    return v->with_cat && id < v->n ? v->cats[id] : VOCAB_NO_CAT;
}

static void mark_dirty(vocab *v, uint32_t id)
{
    uint32_t b = id / VOCAB_BLOCK_ENTRIES;
    if (b < v->dirty_from) v->dirty_from = b;
}

void vocab_set_cat(vocab *v, uint32_t id, uint32_t cat)
{
    if (!v->with_cat || id >= v->n || v->cats[id] == cat) return;
    v->cats[id] = cat;
    mark_dirty(v, id);
}

static uint64_t head_of(const char *s, size_t len)
{
    uint64_t h = 0;
    memcpy(&h, s, len < 8 ? len : 8);
    return h;
}

static uint32_t tag_of(uint32_t h32, size_t len)
{
    return (h32 & 0xffffff00u) | (uint32_t)len;
}

static int find_slot(const vocab *v, const char *s, size_t len, uint32_t h32, size_t *slot)
{
    size_t i = h32 & v->table_mask;
    uint32_t tag = tag_of(h32, len);
    uint64_t head = head_of(s, len);
    for (;;) {
        const vocab_slot *e = &v->table[i];
        if (!e->id1) {
            *slot = i;
            return 0;
        }
        if (e->tag == tag && e->head == head && (len <= 8 || memcmp(v->strs[e->id1 - 1] + 8, s + 8, len - 8) == 0)) {
            *slot = i;
            return 1;
        }
        i = (i + 1) & v->table_mask;
    }
}

static vocab_slot slot_entry(const vocab *v, uint32_t h32, uint32_t id)
{
    return (vocab_slot){head_of(v->strs[id], v->lens[id]), tag_of(h32, v->lens[id]), id + 1};
}

int vocab_find(const vocab *v, const char *s, size_t len, uint32_t *id)
{
    size_t slot;
    uint32_t h32 = (uint32_t)hash_bytes(s, len);
    if (!find_slot(v, s, len, h32, &slot)) return LSIM_E_NOTFOUND;
    *id = v->table[slot].id1 - 1;
    return 0;
}

static int grow_table(vocab *v)
{
    size_t ncap = (v->table_mask + 1) * 2;
    vocab_slot *t = calloc(ncap, sizeof *t);
    if (!t) return LSIM_E_NOMEM;
    for (uint32_t id = 0; id < v->n; id++) {
        size_t i = v->hashes[id] & (ncap - 1);
        while (t[i].id1) i = (i + 1) & (ncap - 1);
        t[i] = slot_entry(v, v->hashes[id], id);
    }
    free(v->table);
    v->table = t;
    v->table_mask = ncap - 1;
    return 0;
}

static int reserve_entries(vocab *v, uint32_t want)
{
    if (want <= v->cap) return 0;
    uint32_t ncap = v->cap ? v->cap : 256;
    while (ncap < want) ncap = ncap > UINT32_MAX / 2 ? UINT32_MAX : ncap * 2;
    char **o = realloc(v->strs, (size_t)ncap * sizeof *o);
    if (!o) return LSIM_E_NOMEM;
    v->strs = o;
    uint8_t *l = realloc(v->lens, ncap);
    if (!l) return LSIM_E_NOMEM;
    v->lens = l;
    uint32_t *h = realloc(v->hashes, (size_t)ncap * sizeof *h);
    if (!h) return LSIM_E_NOMEM;
    v->hashes = h;
    if (v->with_cat) {
        uint32_t *c = realloc(v->cats, (size_t)ncap * sizeof *c);
        if (!c) return LSIM_E_NOMEM;
        v->cats = c;
    }
    v->cap = ncap;
    return 0;
}

/* Appends a new entry without looking it up (the caller knows it is new). */
static int add_entry(vocab *v, const char *s, size_t len, uint32_t h32, size_t slot)
{
    if (v->n == UINT32_MAX - 1) return LSIM_E_LIMIT;
    int rc = reserve_entries(v, v->n + 1);
    if (rc) return rc;
    if (len > LSIM_MAX_ID_LEN) return LSIM_E_LIMIT;
    if (!v->n_chunks || v->chunk_used + len + 1 > v->chunk_cap) {
        size_t csize = v->n_chunks < 8 ? ((size_t)4096 << v->n_chunks) : ((size_t)1 << 20);
        char **c = realloc(v->chunks, (v->n_chunks + 1) * sizeof *c);
        if (!c) return LSIM_E_NOMEM;
        v->chunks = c;
        if (!(c[v->n_chunks] = malloc(csize))) return LSIM_E_NOMEM;
        v->n_chunks++;
        v->chunk_used = 0;
        v->chunk_cap = csize;
    }
    uint32_t id = v->n++;
    char *dst = v->chunks[v->n_chunks - 1] + v->chunk_used;
    memcpy(dst, s, len);
    dst[len] = 0;
    v->chunk_used += len + 1;
    v->strs[id] = dst;
    v->lens[id] = (uint8_t)len;
    v->hashes[id] = h32;
    if (v->with_cat) v->cats[id] = VOCAB_NO_CAT;
    v->table[slot] = slot_entry(v, h32, id);
    mark_dirty(v, id);
    if ((size_t)v->n * 2 > v->table_mask + 1) return grow_table(v);
    return 0;
}

int vocab_intern(vocab *v, const char *s, size_t len, uint32_t *id, uint32_t limit)
{
    size_t slot;
    uint32_t h32 = (uint32_t)hash_bytes(s, len);
    if (find_slot(v, s, len, h32, &slot)) {
        *id = v->table[slot].id1 - 1;
        return 0;
    }
    if (v->n >= limit) return LSIM_E_LIMIT;
    int rc = add_entry(v, s, len, h32, slot);
    if (rc) return rc;
    *id = v->n - 1;
    return 0;
}

/* ---- persistence ---- */

static void vocab_key(uint8_t key[5], char kind, uint32_t block)
{
    key[0] = (uint8_t)kind;
    ubt_put_u32be(key + 1, block);
}

/* A block's checksum: CRC-32C of its key, its count and everything after
 * the checksum, so a block under another key, or changed, fails it. */
static uint32_t block_crc(const uint8_t key[5], const uint8_t *p, size_t len)
{
    return crc32c(crc32c(crc32c(0, key, 5), p, 4), p + 8, len - 8);
}

static int store_block(vocab *v, MDB_txn *txn, MDB_dbi dbi, uint32_t b, uint8_t **raw,
                       size_t *raw_cap, uint8_t **out, size_t *out_cap, char *err, size_t errlen)
{
    uint32_t lo = b * VOCAB_BLOCK_ENTRIES;
    uint32_t hi = lo + VOCAB_BLOCK_ENTRIES < v->n ? lo + VOCAB_BLOCK_ENTRIES : v->n;
    size_t need = (size_t)(hi - lo) * (10 + 5);
    for (uint32_t id = lo; id < hi; id++) need += vocab_len(v, id);
    if (need > *raw_cap) {
        uint8_t *r = realloc(*raw, need);
        if (!r) return LSIM_E_NOMEM;
        *raw = r;
        *raw_cap = need;
    }
    size_t n = 0;
    for (uint32_t id = lo; id < hi; id++) {
        size_t len = vocab_len(v, id);
        n += varint_put(*raw + n, len);
        memcpy(*raw + n, vocab_str(v, id), len);
        n += len;
    }
    if (v->with_cat)
        for (uint32_t id = lo; id < hi; id++) n += varint_put(*raw + n, (uint64_t)v->cats[id] + 1);
    size_t bound = ZSTD_compressBound(n) + 32;
    if (bound > *out_cap) {
        uint8_t *o = realloc(*out, bound);
        if (!o) return LSIM_E_NOMEM;
        *out = o;
        *out_cap = bound;
    }
    uint8_t *p = *out;
    le32_put(p, hi - lo);
    size_t h = 8;
    size_t z = ZSTD_compress(p + h + 11, bound - h - 11, *raw, n, 3);
    int packed = !ZSTD_isError(z) && z < n;
    p[h++] = (uint8_t)packed;
    h += varint_put(p + h, n);
    if (packed)
        memmove(p + h, p + 8 + 11, z);
    else
        memcpy(p + h, *raw, (z = n));
    size_t total = h + z;
    uint8_t key[5];
    vocab_key(key, v->kind, b);
    le32_put(p + 4, block_crc(key, p, total));
    MDB_val k = {sizeof key, key}, d = {total, p};
    int rc = mdb_put(txn, dbi, &k, &d, 0);
    if (rc) return lmdb_err(rc, err, errlen, "writing a vocabulary block");
    return 0;
}

int vocab_store(vocab *v, MDB_txn *txn, MDB_dbi dbi, char *err, size_t errlen)
{
    if (v->dirty_from == UINT32_MAX) return 0;
    uint8_t *raw = NULL, *out = NULL;
    size_t raw_cap = 0, out_cap = 0;
    int rc = 0;
    for (uint32_t b = v->dirty_from; b < vocab_blocks(v->n) && !rc; b++)
        rc = store_block(v, txn, dbi, b, &raw, &raw_cap, &out, &out_cap, err, errlen);
    free(raw);
    free(out);
    if (!rc) v->dirty_from = UINT32_MAX;
    return rc;
}

static const char *kind_name(char kind)
{
    switch (kind) {
    case UBT_VOCAB_USER: return "user";
    case UBT_VOCAB_ITEM: return "item";
    case UBT_VOCAB_CAT: return "category";
    default: return "type";
    }
}

/* Records block b's checksum. */
static int note_crc(vocab *v, uint32_t b, uint32_t crc)
{
    if (b >= v->crcs_cap) {
        uint32_t nc = v->crcs_cap ? 2 * v->crcs_cap : 64;
        while (nc <= b) nc *= 2;
        uint32_t *c = realloc(v->crcs, nc * sizeof *c);
        if (!c) return LSIM_E_NOMEM;
        v->crcs = c;
        v->crcs_cap = nc;
    }
    v->crcs[b] = crc;
    if (b >= v->n_crcs) v->n_crcs = b + 1;
    return 0;
}

/* Decodes block b. Its entries below v->n are already loaded (a refresh
 * after an append): their strings must be the same, their categories are
 * taken anew; the rest are added. */
static int load_block(vocab *v, const uint8_t *p, size_t len, uint32_t b, uint8_t **raw,
                      size_t *raw_cap, uint32_t *cat_tmp, char *err, size_t errlen)
{
#define BAD(why) err_set(err, errlen, LSIM_E_CORRUPT, "corrupt %s vocabulary block %u: %s", kind_name(v->kind), b, why)
    if (len < 10) return BAD("too short");
    if (len > VOCAB_BLOCK_MAX_BYTES) return BAD("too long");
    uint32_t count = le32_get(p);
    if (count == 0 || count > VOCAB_BLOCK_ENTRIES) return BAD("bad entry count");
    uint8_t key[5];
    vocab_key(key, v->kind, b);
    if (block_crc(key, p, len) != le32_get(p + 4)) return BAD("checksum mismatch");
    const uint8_t *q = p + 9, *end = p + len;
    uint64_t raw_len;
    if (p[8] > 1 || varint_get(&q, end, &raw_len) || raw_len > (uint64_t)count * (LSIM_MAX_ID_LEN + 16))
        return BAD("bad header");
    if (raw_len > *raw_cap) {
        uint8_t *r = realloc(*raw, raw_len);
        if (!r) return LSIM_E_NOMEM;
        *raw = r;
        *raw_cap = raw_len;
    }
    if (p[8] == 1) {
        size_t z = ZSTD_decompress(*raw, raw_len, q, (size_t)(end - q));
        if (ZSTD_isError(z) || z != raw_len) return BAD("does not decompress");
    } else {
        if ((uint64_t)(end - q) != raw_len) return BAD("bad length");
        memcpy(*raw, q, raw_len);
    }
    const uint8_t *r = *raw, *rend = *raw + raw_len;
    uint32_t first = b * VOCAB_BLOCK_ENTRIES;
    if (first > v->n) return BAD("out of order");
    if (count < VOCAB_BLOCK_ENTRIES && first + count < v->n) return BAD("fewer entries than were loaded");
    for (uint32_t i = 0; i < count; i++) {
        uint64_t sl;
        if (varint_get(&r, rend, &sl) || sl == 0 || sl > LSIM_MAX_ID_LEN || sl > (uint64_t)(rend - r))
            return BAD("bad string length");
        if (memchr(r, 0, sl)) return BAD("NUL in an id");
        if (first + i < v->n) { /* loaded before: ids never change */
            if (v->lens[first + i] != sl || memcmp(v->strs[first + i], r, sl)) return BAD("an existing id changed");
            r += sl;
            continue;
        }
        size_t slot;
        uint32_t h32 = (uint32_t)hash_bytes((const char *)r, sl);
        if (find_slot(v, (const char *)r, sl, h32, &slot)) return BAD("duplicate id");
        int rc = add_entry(v, (const char *)r, sl, h32, slot);
        if (rc) return rc;
        r += sl;
    }
    if (v->with_cat) {
        for (uint32_t i = 0; i < count; i++) {
            uint64_t c;
            if (varint_get(&r, rend, &c) || c > UINT32_MAX) return BAD("bad category");
            cat_tmp[i] = (uint32_t)(c - 1); /* 0 encodes VOCAB_NO_CAT */
        }
        memcpy(v->cats + first, cat_tmp, count * sizeof *cat_tmp);
    }
    if (r != rend) return BAD("trailing bytes");
    return note_crc(v, b, le32_get(p + 4));
#undef BAD
}

/* Forgets the entries (the string chunks are kept: old pointers stay valid). */
static void vocab_clear(vocab *v)
{
    v->n = 0;
    v->chunk_used = v->chunk_cap; /* start a new chunk: never overwrite handed-out strings */
    memset(v->table, 0, (v->table_mask + 1) * sizeof *v->table);
}

int vocab_load(vocab *v, MDB_txn *txn, MDB_dbi dbi, char *err, size_t errlen)
{
    vocab_clear(v);
    v->n_crcs = 0;
    return vocab_refresh(v, txn, dbi, err, errlen);
}

int vocab_refresh(vocab *v, MDB_txn *txn, MDB_dbi dbi, char *err, size_t errlen)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc) return lmdb_err(rc, err, errlen, "opening the vocabulary");
    uint8_t key[5];
    vocab_key(key, v->kind, 0);
    MDB_val k = {sizeof key, key}, d;
    uint8_t *raw = NULL;
    size_t raw_cap = 0;
    uint32_t cat_tmp[VOCAB_BLOCK_ENTRIES];
    uint32_t expect = 0;
    rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    while (rc == 0) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != 5 || kp[0] != (uint8_t)v->kind) break;
        uint32_t b = ubt_get_u32be(kp + 1);
        if (b != expect || (expect > 0 && v->n < expect * VOCAB_BLOCK_ENTRIES)) {
            rc = err_set(err, errlen, LSIM_E_CORRUPT, "corrupt %s vocabulary: block %u missing or short",
                         kind_name(v->kind), expect);
            break;
        }
        /* a block already loaded whose checksum is unchanged is the same block: skipped undecoded */
        int same = b < v->n_crcs && d.mv_size >= 8 && le32_get((const uint8_t *)d.mv_data + 4) == v->crcs[b] &&
                   v->n >= (b + 1) * VOCAB_BLOCK_ENTRIES;
        if (!same && (rc = load_block(v, d.mv_data, d.mv_size, b, &raw, &raw_cap, cat_tmp, err, errlen))) break;
        expect++;
        rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) rc = 0;
    else if (rc > 0) rc = lmdb_err(rc, err, errlen, "reading the vocabulary");
    mdb_cursor_close(cur);
    free(raw);
    v->dirty_from = UINT32_MAX;
    return rc;
}
