/*
 * lmdb_check.c: see lmdb_check.h.
 *
 * LMDB 0.9's file (mdb.c), as read here (little-endian, 64-bit):
 *   page   u64 pgno | u16 pad | u16 flags | u16 lower | u16 upper, then the
 *          u16 offsets of its nodes (from the page start) up to `lower`; the
 *          nodes lie in [upper, page size). An overflow page has a u32 page
 *          count in place of lower and upper.
 *   node   u16 lo | u16 hi | u16 flags | u16 key size | key | value. In a
 *          leaf, the value has lo | hi << 16 bytes; with F_BIGDATA the value
 *          is the u64 number of its first overflow page. In a branch page,
 *          the child is page lo | hi << 16 | flags << 32, and the first
 *          node's key is not used (LMDB writes none): child i holds the keys
 *          in [key i, key i+1).
 *   meta   pages 0 and 1, after the page header: u32 magic | u32 version |
 *          u64 address | u64 map size | MDB_db free list | MDB_db main |
 *          u64 last page | u64 transaction id. Commit T writes meta page T & 1;
 *          LMDB reads the one with the larger id.
 *   MDB_db u32 pad (the free list's: the page size) | u16 flags | u16 depth |
 *          u64 branch, leaf, overflow pages | u64 entries | u64 root.
 * Every read of the mapping is checked against the file's size first.
 * Recursion follows the tree depth, which is at most LMDB's 32.
 */
#include "storage/lmdb_check.h"

#include "lsim.h"
#include "storage/block_codec.h"
#include "storage/byte_order.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGEHDR 16u
#define NODEHDR 8u
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define P_META 0x08u
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u
#define DB_INTEGERKEY 0x08u
#define DB_BYTES 48u
#define META_MAGIC 0xBEEFC0DEu
#define META_VERSION 1u
#define META_BYTES 136u
#define P_INVALID (~(uint64_t)0)
#define MAX_DEPTH 32
#define MAX_KEY 511u
#define MAPSIZE_MAX ((uint64_t)1 << 50)

typedef struct dbrec {
    uint32_t pad;
    uint16_t flags, depth;
    uint64_t branch, leaf, overflow, entries, root;
} dbrec;

typedef struct meta {
    uint32_t magic, version;
    uint64_t address, mapsize, last_pg, txnid;
    dbrec free, main;
} meta;

/* A key, or an open end of a range (inf -1: below every key, +1: above). */
typedef struct key {
    const uint8_t *p;
    size_t n;
    int inf;
} key;

typedef struct checker {
    const uint8_t *map;
    size_t size, ps;
    uint64_t last_pg, txnid;
    uint8_t *seen; /* a bit per page: reached by a tree or held by the free list */
    const char *path;
    char *err;
    size_t errlen;
    const lmdb_check_spec *spec;
    /* the tree being walked */
    const char *tree;
    int integer_keys, is_main, is_free, is_stamp_db;
    size_t key_len;
    int depth;
    dbrec counted;
    /* what was found */
    int *found;
    char unknown[48]; /* the first database not in the spec ("" if none) */
    const uint8_t *stamp;
    size_t stamp_len;
    uint64_t used, free_pages;
} checker;

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}


#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(const checker *c, const char *fmt, ...);

static int fail(const checker *c, const char *fmt, ...)
{
    char msg[LSIM_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->tree)
        return err_set(c->err, c->errlen, LSIM_E_CORRUPT, "%s: corrupt: database %s: %s", c->path, c->tree, msg);
    return err_set(c->err, c->errlen, LSIM_E_CORRUPT, "%s: corrupt: %s", c->path, msg);
}

static void read_db(const uint8_t *p, dbrec *d)
{
    d->pad = le32_get(p);
    d->flags = rd16(p + 4);
    d->depth = rd16(p + 6);
    d->branch = le64_get(p + 8);
    d->leaf = le64_get(p + 16);
    d->overflow = le64_get(p + 24);
    d->entries = le64_get(p + 32);
    d->root = le64_get(p + 40);
}

static void read_meta(const uint8_t *p, meta *m)
{
    m->magic = le32_get(p);
    m->version = le32_get(p + 4);
    m->address = le64_get(p + 8);
    m->mapsize = le64_get(p + 16);
    read_db(p + 24, &m->free);
    read_db(p + 24 + DB_BYTES, &m->main);
    m->last_pg = le64_get(p + 24 + 2 * DB_BYTES);
    m->txnid = le64_get(p + 32 + 2 * DB_BYTES);
}

static int db_empty(const dbrec *d)
{
    return d->root == P_INVALID && !d->depth && !d->branch && !d->leaf && !d->overflow && !d->entries;
}

/* The keys' order: the free list's are integers (u64), the others compare as bytes, a prefix first. */
static int cmp_key(const checker *c, const key *a, const key *b)
{
    if (a->inf || b->inf) return a->inf == b->inf ? 0 : a->inf < b->inf ? -1 : 1;
    if (c->integer_keys) {
        uint64_t x = le64_get(a->p), y = le64_get(b->p);
        return (x > y) - (x < y);
    }
    size_t n = a->n < b->n ? a->n : b->n;
    int r = n ? memcmp(a->p, b->p, n) : 0;
    return r ? r : (a->n > b->n) - (a->n < b->n);
}

/* Page pgno of a tree: within [2, last page] (0 and 1 are the meta pages). */
static int tree_page(const checker *c, uint64_t pgno, const uint8_t **out)
{
    if (pgno < 2 || pgno > c->last_pg)
        return fail(c, "a pointer to page %" PRIu64 ", outside the pages in use (2 to %" PRIu64 ")", pgno, c->last_pg);
    *out = c->map + pgno * c->ps;
    return 0;
}

static int mark(checker *c, uint64_t pgno, uint64_t n, const char *what)
{
    for (uint64_t q = pgno; q < pgno + n; q++) {
        if (c->seen[q >> 3] & (1u << (q & 7)))
            return fail(c, "page %" PRIu64 " (%s) is reached twice (a loop, or a page used twice)", q, what);
        c->seen[q >> 3] |= (uint8_t)(1u << (q & 7));
    }
    return 0;
}

/* Node i of page p (pgno) and its key; checks it lies inside the page. */
static int node_at(const checker *c, const uint8_t *p, uint64_t pgno, size_t i, size_t upper, const uint8_t **nd,
                   key *k)
{
    size_t off = rd16(p + PAGEHDR + 2 * i);
    if (off < upper || (off & 1) || off + NODEHDR > c->ps)
        return fail(c, "page %" PRIu64 ": node %zu at offset %zu, outside the page's nodes [%zu, %zu)", pgno, i, off,
                    upper, c->ps);
    size_t ksize = rd16(p + off + 6);
    if (ksize > MAX_KEY || off + NODEHDR + ksize > c->ps)
        return fail(c, "page %" PRIu64 ": node %zu has a key of %zu bytes, past the page", pgno, i, ksize);
    *nd = p + off;
    *k = (key){p + off + NODEHDR, ksize, 0};
    return 0;
}

/* The page header of a branch or leaf page at depth `level` of a tree `depth` deep. */
static int check_header(const checker *c, const uint8_t *p, uint64_t pgno, int level, int depth, size_t *nkeys,
                        size_t *upper)
{
    int leaf = level == depth - 1;
    uint16_t flags = rd16(p + 10), lower = rd16(p + 12);
    *upper = rd16(p + 14);
    if (le64_get(p) != pgno) return fail(c, "page %" PRIu64 " says it is page %" PRIu64, pgno, le64_get(p));
    if (flags != (leaf ? P_LEAF : P_BRANCH) || rd16(p + 8) != 0)
        return fail(c, "page %" PRIu64 ": flags 0x%x, not those of a %s page (depth %d of %d)", pgno, flags,
                    leaf ? "leaf" : "branch", level + 1, depth);
    if (lower < PAGEHDR + 2 || (lower & 1) || *upper < lower || *upper > c->ps)
        return fail(c, "page %" PRIu64 ": bounds %u, %zu outside the page", pgno, lower, *upper);
    *nkeys = (size_t)(lower - PAGEHDR) / 2;
    return 0;
}

static int on_leaf(checker *c, const key *k, const uint8_t *val, size_t len);

/* A leaf's value: inline, or on overflow pages (marked, counted). */
static int leaf_value(checker *c, const uint8_t *nd, const key *k, uint64_t pgno, size_t i, const uint8_t **val,
                      size_t *len)
{
    size_t off = (size_t)(nd - (c->map + pgno * c->ps)), dsize = rd16(nd) | (size_t)rd16(nd + 2) << 16;
    uint16_t nflags = rd16(nd + 4);
    if (c->is_main) {
        if (nflags != F_SUBDATA || dsize != DB_BYTES)
            return fail(c, "page %" PRIu64 ": node %zu is not a database record (flags 0x%x, %zu bytes)", pgno, i,
                        nflags, dsize);
    } else if (nflags != 0 && nflags != F_BIGDATA) {
        return fail(c, "page %" PRIu64 ": node %zu has flags 0x%x", pgno, i, nflags);
    }
    size_t inline_len = nflags == F_BIGDATA ? 8 : dsize;
    if (off + NODEHDR + k->n + inline_len > c->ps)
        return fail(c, "page %" PRIu64 ": node %zu's value of %zu bytes runs past the page", pgno, i, dsize);
    if (nflags != F_BIGDATA) {
        *val = nd + NODEHDR + k->n;
        *len = dsize;
        return 0;
    }
    uint64_t op = le64_get(nd + NODEHDR + k->n), npages = (PAGEHDR - 1 + (uint64_t)dsize) / c->ps + 1;
    const uint8_t *q = NULL;
    int rc = tree_page(c, op, &q);
    if (rc) return rc;
    if (npages > c->last_pg - op + 1)
        return fail(c, "page %" PRIu64 ": node %zu's value of %zu bytes runs past the last page", pgno, i, dsize);
    if (le64_get(q) != op || rd16(q + 8) != 0 || rd16(q + 10) != P_OVERFLOW || le32_get(q + 12) != npages)
        return fail(c, "overflow page %" PRIu64 " (of page %" PRIu64 " node %zu): header does not match a value of %zu"
                    " bytes", op, pgno, i, dsize);
    if ((rc = mark(c, op, npages, "overflow"))) return rc;
    c->counted.overflow += npages;
    *val = q + PAGEHDR;
    *len = dsize;
    return 0;
}

/* The subtree at pgno, at depth `level`, whose keys lie in [lo, hi). */
static int walk(checker *c, uint64_t pgno, int level, key lo, key hi)
{
    const uint8_t *p = NULL;
    size_t nkeys = 0, upper = 0;
    int rc = tree_page(c, pgno, &p);
    if (!rc) rc = mark(c, pgno, 1, c->tree);
    if (!rc) rc = check_header(c, p, pgno, level, c->depth, &nkeys, &upper);
    if (rc) return rc;
    int leaf = level == c->depth - 1;
    if (leaf) c->counted.leaf++;
    else c->counted.branch++;
    key prev = lo;
    for (size_t i = 0; i < nkeys; i++) {
        const uint8_t *nd;
        key k;
        if ((rc = node_at(c, p, pgno, i, upper, &nd, &k))) return rc;
        if (leaf || i > 0) {
            if (c->integer_keys && k.n != 8)
                return fail(c, "page %" PRIu64 ": node %zu: a key of %zu bytes", pgno, i, k.n);
            int order = cmp_key(c, &k, &prev);
            if ((i == 0 || (!leaf && i == 1)) ? order < 0 : order <= 0)
                return fail(c, "page %" PRIu64 ": node %zu: keys out of order", pgno, i);
            if (cmp_key(c, &k, &hi) >= 0)
                return fail(c, "page %" PRIu64 ": node %zu: a key beyond the range its parent sends here", pgno, i);
            prev = k;
        } /* a branch page's first key is not read: LMDB routes below the second key to the first child */
        if (leaf) {
            const uint8_t *val;
            size_t len;
            if ((rc = leaf_value(c, nd, &k, pgno, i, &val, &len))) return rc;
            c->counted.entries++;
            if ((rc = on_leaf(c, &k, val, len))) return rc;
            continue;
        }
        key to = hi;
        if (i + 1 < nkeys) {
            const uint8_t *nd2;
            if ((rc = node_at(c, p, pgno, i + 1, upper, &nd2, &to))) return rc;
        }
        uint64_t child = rd16(nd) | (uint64_t)rd16(nd + 2) << 16 | (uint64_t)rd16(nd + 4) << 32;
        if ((rc = walk(c, child, level + 1, i ? k : lo, to))) return rc;
    }
    return 0;
}

/* Walks a whole tree with its record d; checks the record's counts. */
static int walk_tree(checker *c, const dbrec *d)
{
    if (d->root == P_INVALID) {
        if (!db_empty(d)) return fail(c, "an empty database with nonzero counts");
        return 0;
    }
    if (d->depth < 1 || d->depth > MAX_DEPTH) return fail(c, "depth %u", d->depth);
    memset(&c->counted, 0, sizeof c->counted);
    c->depth = d->depth;
    int rc = walk(c, d->root, 0, (key){NULL, 0, -1}, (key){NULL, 0, 1});
    if (rc) return rc;
    const dbrec *n = &c->counted;
    if (n->branch != d->branch || n->leaf != d->leaf || n->overflow != d->overflow || n->entries != d->entries)
        return fail(c,
                    "its record says %" PRIu64 " branch, %" PRIu64 " leaf, %" PRIu64 " overflow pages and %" PRIu64
                    " entries; the tree has %" PRIu64 ", %" PRIu64 ", %" PRIu64 " and %" PRIu64,
                    d->branch, d->leaf, d->overflow, d->entries, n->branch, n->leaf, n->overflow, n->entries);
    c->used += n->branch + n->leaf + n->overflow;
    return 0;
}

/* A free-list record: u64 count, then that many page numbers, descending. */
static int free_record(checker *c, const key *k, const uint8_t *val, size_t len)
{
    uint64_t txn = le64_get(k->p);
    if (txn > c->txnid) return fail(c, "a record of transaction %" PRIu64 ", after the last", txn);
    if (len < 8 || len % 8 || le64_get(val) != len / 8 - 1) return fail(c, "a record of %zu bytes", len);
    uint64_t prev = P_INVALID;
    for (size_t i = 1; i < len / 8; i++) {
        uint64_t pg = le64_get(val + 8 * i);
        if (pg < 2 || pg > c->last_pg || pg >= prev)
            return fail(c, "free page %" PRIu64 ": outside the pages in use, or out of order", pg);
        int rc = mark(c, pg, 1, "free");
        if (rc) return rc;
        prev = pg;
        c->free_pages++;
    }
    return 0;
}

static int walk_named(checker *c, size_t which, const uint8_t *rec);

static int on_leaf(checker *c, const key *k, const uint8_t *val, size_t len)
{
    if (c->is_free) return free_record(c, k, val, len);
    if (c->is_main) {
        for (size_t i = 0; i < c->spec->n_dbs; i++) {
            const char *name = c->spec->dbs[i].name;
            if (k->n == strlen(name) && memcmp(k->p, name, k->n) == 0) return walk_named(c, i, val);
        }
        if (!c->unknown[0]) /* refused after the walk: the caller's databases all missing is another error */
            snprintf(c->unknown, sizeof c->unknown, "%.*s", (int)(k->n < 40 ? k->n : 40), (const char *)k->p);
        return 0;
    }
    if (c->key_len && k->n != c->key_len) return fail(c, "a key of %zu bytes, not %zu", k->n, c->key_len);
    if (c->is_stamp_db && k->n == sizeof LMDB_STAMP_KEY - 1 && !memcmp(k->p, LMDB_STAMP_KEY, k->n)) {
        c->stamp = val;
        c->stamp_len = len;
    }
    return 0;
}

/* Named database `which`, from its record in the main database. */
static int walk_named(checker *c, size_t which, const uint8_t *rec)
{
    checker saved = *c;
    dbrec d;
    read_db(rec, &d);
    c->tree = c->spec->dbs[which].name;
    if (c->found[which]++) return fail(c, "listed twice");
    if (d.pad || d.flags) return fail(c, "flags 0x%x (pad %u): lsim's databases have none", d.flags, d.pad);
    c->is_main = c->is_free = c->integer_keys = 0;
    c->key_len = c->spec->dbs[which].key_len;
    c->is_stamp_db = c->spec->stamp_db && !strcmp(c->tree, c->spec->stamp_db);
    int rc = walk_tree(c, &d);
    if (rc) return rc;
    /* back to the main database's walk */
    c->tree = saved.tree;
    c->is_main = saved.is_main;
    c->key_len = saved.key_len;
    c->is_stamp_db = saved.is_stamp_db;
    c->depth = saved.depth;
    c->counted = saved.counted;
    return 0;
}

/* The stamp's transaction id and map size, or LSIM_E_CORRUPT. */
static int stamp_read(const uint8_t *v, size_t len, uint64_t stamp[2])
{
    if (len != LMDB_STAMP_BYTES) return LSIM_E_CORRUPT;
    uint32_t crc = crc32c(crc32c(0, LMDB_STAMP_KEY, sizeof LMDB_STAMP_KEY - 1), v, LMDB_STAMP_BYTES - 4);
    if (crc != le32_get(v + LMDB_STAMP_BYTES - 4)) return LSIM_E_CORRUPT;
    stamp[0] = le64_get(v);
    stamp[1] = le64_get(v + 8);
    return 0;
}

/* A meta page against the stamp its snapshot holds. */
static int stamp_matches(const checker *c, int slot, const meta *m, const uint64_t stamp[2])
{
    if (stamp[0] != m->txnid || stamp[1] != m->mapsize)
        return fail(c,
                    "meta page %d says transaction %" PRIu64 " and map size %" PRIu64 ", its snapshot was written by "
                    "transaction %" PRIu64 " with map size %" PRIu64,
                    slot, m->txnid, m->mapsize, stamp[0], stamp[1]);
    return 0;
}

/* The stamp of the older snapshot (meta m): found by descending from its
 * main database to the stamp database and key, checking each page on the
 * way (its pages are intact in a sound file: LMDB reuses a page only two
 * commits after it was freed). */
static int older_stamp(checker *c, const meta *m, uint64_t stamp[2])
{
    const char *target[2] = {c->spec->stamp_db, LMDB_STAMP_KEY};
    dbrec d = m->main;
    c->integer_keys = 0;
    for (int step = 0; step < 2; step++) {
        key want = {(const uint8_t *)target[step], strlen(target[step]), 0};
        if (d.root == P_INVALID || d.depth < 1 || d.depth > MAX_DEPTH) return fail(c, "no %s", target[step]);
        uint64_t pgno = d.root;
        const uint8_t *val = NULL;
        size_t len = 0;
        for (int level = 0; level < d.depth; level++) {
            const uint8_t *p = NULL, *nd = NULL;
            size_t nkeys = 0, upper = 0, pick = 0;
            key k;
            int rc = tree_page(c, pgno, &p);
            if (!rc) rc = check_header(c, p, pgno, level, d.depth, &nkeys, &upper);
            if (rc) return rc;
            int leaf = level == d.depth - 1, hit = 0;
            for (size_t i = leaf ? 0 : 1; i < nkeys; i++) {
                if ((rc = node_at(c, p, pgno, i, upper, &nd, &k))) return rc;
                int r = cmp_key(c, &k, &want);
                if (leaf ? r == 0 : r <= 0) pick = i, hit = 1;
                if (r >= 0) break;
            }
            if (leaf && !hit) return fail(c, "no %s", target[step]);
            if ((rc = node_at(c, p, pgno, pick, upper, &nd, &k))) return rc;
            if (!leaf) {
                pgno = rd16(nd) | (uint64_t)rd16(nd + 2) << 16 | (uint64_t)rd16(nd + 4) << 32;
                continue;
            }
            size_t dsize = rd16(nd) | (size_t)rd16(nd + 2) << 16, off = (size_t)(nd - p);
            if (rd16(nd + 4) != (step == 0 ? F_SUBDATA : 0) || off + NODEHDR + k.n + dsize > c->ps ||
                (step == 0 && dsize != DB_BYTES))
                return fail(c, "%s: a malformed record", target[step]);
            val = nd + NODEHDR + k.n;
            len = dsize;
        }
        if (step == 0) read_db(val, &d);
        else if (stamp_read(val, len, stamp)) return fail(c, "its stamp fails its checksum");
    }
    return 0;
}

/* Meta page `slot`: what LMDB reads of it, and what a sound file has. */
static int check_meta(checker *c, int slot, meta *m)
{
    const uint8_t *p = c->map + (size_t)slot * c->ps;
    read_meta(p + PAGEHDR, m);
    if (le64_get(p) != (uint64_t)slot || rd16(p + 8) || rd16(p + 10) != P_META || le32_get(p + 12))
        return fail(c, "meta page %d: its page header is damaged", slot);
    if (m->magic != META_MAGIC) return fail(c, "meta page %d: not an LMDB meta page (magic 0x%08x)", slot, m->magic);
    if (m->address) return fail(c, "meta page %d: a fixed map address", slot);
    if (m->free.pad != c->ps || m->free.flags != DB_INTEGERKEY || m->main.pad || m->main.flags)
        return fail(c, "meta page %d: its database records are damaged (page size %u)", slot, m->free.pad);
    if (m->txnid == 0) {
        if (!db_empty(&m->free) || !db_empty(&m->main) || m->last_pg != 1)
            return fail(c, "meta page %d: transaction 0 (before the first commit) with data", slot);
    } else if ((m->txnid & 1) != (uint64_t)slot) {
        return fail(c, "meta page %d: transaction %" PRIu64 " belongs in meta page %d", slot, m->txnid,
                    (int)(m->txnid & 1));
    }
    if (m->last_pg < 1 || m->mapsize % c->ps || m->mapsize / c->ps <= m->last_pg || m->mapsize > MAPSIZE_MAX)
        return fail(c, "meta page %d: last page %" PRIu64 " and map size %" PRIu64 " do not fit", slot, m->last_pg,
                    m->mapsize);
    return 0;
}

static int check_file(checker *c, lmdb_check_result *res)
{
    if (c->size < PAGEHDR + META_BYTES)
        return fail(c, "the file is %zu bytes, shorter than a meta page (truncated)", c->size);
    c->ps = le32_get(c->map + PAGEHDR + 24); /* the free list's pad in meta page 0 */
    if (c->ps < 512 || c->ps > 65536 || (c->ps & (c->ps - 1)))
        return fail(c, "meta page 0: page size %zu", c->ps);
    if (c->size < 2 * c->ps)
        return fail(c, "the file is %zu bytes, shorter than its two meta pages (truncated)", c->size);
    uint32_t v0 = le32_get(c->map + PAGEHDR + 4), v1 = le32_get(c->map + c->ps + PAGEHDR + 4);
    if (v0 == v1 && v0 != META_VERSION && le32_get(c->map + PAGEHDR) == META_MAGIC)
        return err_set(c->err, c->errlen, LSIM_E_VERSION, "%s: LMDB data version %u; this lsim reads version %u",
                       c->path, v0, META_VERSION);
    if (v0 != META_VERSION || v1 != META_VERSION)
        return fail(c, "meta page %d: LMDB data version %u", v0 != META_VERSION ? 0 : 1, v0 != META_VERSION ? v0 : v1);
    meta m[2];
    int rc;
    for (int s = 0; s < 2; s++)
        if ((rc = check_meta(c, s, &m[s]))) return rc;
    int cur = m[1].txnid > m[0].txnid; /* LMDB's choice */
    const meta *mc = &m[cur], *mo = &m[!cur];
    if (mc->txnid == 0)
        return err_set(c->err, c->errlen, LSIM_E_INCOMPLETE, "%s: an empty LMDB environment (nothing committed)",
                       c->path);
    if (mo->txnid + 1 != mc->txnid)
        return fail(c, "meta pages of transactions %" PRIu64 " and %" PRIu64 ": not two consecutive commits",
                    mo->txnid, mc->txnid);
    if ((mc->last_pg + 1) > c->size / c->ps)
        return fail(c, "the file holds %zu pages, its last page is %" PRIu64 " (truncated)", c->size / c->ps,
                    mc->last_pg);
    if (mo->last_pg > mc->last_pg)
        return fail(c, "meta page %d: last page %" PRIu64 " after the newer commit's %" PRIu64, !cur, mo->last_pg,
                    mc->last_pg);
    c->last_pg = mc->last_pg;
    c->txnid = mc->txnid;
    c->seen = calloc((size_t)(c->last_pg / 8 + 1), 1);
    int found[16] = {0};
    if (!c->seen || c->spec->n_dbs > 16) return err_set(c->err, c->errlen, LSIM_E_NOMEM, "%s: out of memory", c->path);
    c->found = found;

    c->tree = "(free list)";
    c->is_free = c->integer_keys = 1;
    if ((rc = walk_tree(c, &mc->free))) return rc;
    c->tree = "(main)";
    c->is_free = c->integer_keys = 0;
    c->is_main = 1;
    if ((rc = walk_tree(c, &mc->main))) return rc;
    c->tree = NULL;
    size_t n_found = 0;
    for (size_t i = 0; i < c->spec->n_dbs; i++) n_found += found[i] != 0;
    if (!n_found)
        return err_set(c->err, c->errlen, LSIM_E_INCOMPLETE, "%s: not an lsim index (none of its databases)", c->path);
    if (c->unknown[0]) return fail(c, "an unknown database '%s'", c->unknown);
    for (size_t i = 0; i < c->spec->n_dbs; i++)
        if (!found[i] && !c->spec->dbs[i].optional) return fail(c, "no database %s", c->spec->dbs[i].name);

    /* the stamps: each meta page's snapshot was written by its own transaction */
    res->txnid = mc->txnid;
    res->mapsize = mc->mapsize;
    res->mapsize_max = mc->mapsize > mo->mapsize ? mc->mapsize : mo->mapsize;
    res->pages = c->used + 2;
    res->free_pages = c->free_pages;
    res->stamped = c->stamp != NULL;
    if (!c->stamp) return 0; /* written without stamps (an older lsim): the caller decides */
    uint64_t stamp[2];
    if (stamp_read(c->stamp, c->stamp_len, stamp)) return fail(c, "the newest commit's stamp fails its checksum");
    /* mdb_copy -c renumbers its copy as transaction 1, the stamp keeps the original's */
    if (mo->txnid == 0 && mc->txnid == 1) return 0;
    if ((rc = stamp_matches(c, cur, mc, stamp))) return rc;
    c->tree = "(the previous commit's main)";
    if ((rc = older_stamp(c, mo, stamp))) return rc;
    c->tree = NULL;
    return stamp_matches(c, !cur, mo, stamp);
}

int lmdb_check(const char *dir, const lmdb_check_spec *spec, lmdb_check_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path)
        return err_set(err, errlen, LSIM_E_INVAL, "%.200s...: path too long", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return err_set(err, errlen, LSIM_E_NOTFOUND, "%s: no index here (no data.mdb)", dir);
        return err_set(err, errlen, LSIM_E_IO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, errlen, LSIM_E_IO, "%s: %s", path, strerror(e));
    }
    checker c = {.size = (size_t)st.st_size, .path = path, .err = err, .errlen = errlen, .spec = spec};
    if (c.size == 0) {
        close(fd);
        return fail(&c, "the file is empty (truncated)");
    }
    void *m = mmap(NULL, c.size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) return err_set(err, errlen, LSIM_E_IO, "%s: mmap: %s", path, strerror(e));
    c.map = m;
    int rc = check_file(&c, res);
    munmap(m, c.size);
    free(c.seen);
    return rc;
}

int lmdb_stamp_put(MDB_txn *txn, MDB_dbi dbi, char *err, size_t errlen)
{
    uint8_t v[LMDB_STAMP_BYTES];
    uint64_t t = (uint64_t)mdb_txn_id(txn);
    MDB_envinfo info;
    int rc = mdb_env_info(mdb_txn_env(txn), &info);
    uint64_t mapsize = rc ? 0 : (uint64_t)info.me_mapsize;
    for (int i = 0; i < 8; i++) v[i] = (uint8_t)(t >> (8 * i)), v[8 + i] = (uint8_t)(mapsize >> (8 * i));
    uint32_t crc = crc32c(crc32c(0, LMDB_STAMP_KEY, sizeof LMDB_STAMP_KEY - 1), v, LMDB_STAMP_BYTES - 4);
    for (int i = 0; i < 4; i++) v[16 + i] = (uint8_t)(crc >> (8 * i));
    MDB_val k = {sizeof LMDB_STAMP_KEY - 1, (void *)LMDB_STAMP_KEY}, d = {sizeof v, v};
    if (!rc) rc = mdb_put(txn, dbi, &k, &d, 0);
    if (rc) return err_set(err, errlen, LSIM_E_STORAGE, "writing the commit stamp: %s", mdb_strerror(rc));
    return 0;
}
