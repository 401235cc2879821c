/*
 * uic_write.c: bringing the User Interest Center's snapshots up to date
 * inside a write transaction (index/uic.h says which records a user has).
 */
#include "index/uic.h"

#include "lsim.h"
#include "storage/error_detail.h"
#include "storage/lmdb_env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int uic_writer_init(uic_writer *w, const uic_model *model, uint32_t every, MDB_txn *txn, MDB_dbi db,
                    lsim_index_reader *rd, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->model = model;
    w->every = every;
    w->txn = txn;
    w->db = db;
    w->rd = rd;
    w->err = err;
    w->errlen = errlen;
    w->state = malloc((size_t)model->state_floats * sizeof *w->state);
    w->rec = malloc(uic_record_bytes(model->state_floats));
    if (!w->state || !w->rec) {
        uic_writer_free(w);
        return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    }
    return 0;
}

void uic_writer_free(uic_writer *w)
{
    free(w->ev);
    free(w->item);
    free(w->cat);
    free(w->state);
    free(w->rec);
    memset(w, 0, sizeof *w);
}

static int put_record(uic_writer *w, uint32_t user, int64_t ts, uint64_t count, uint64_t due, int head)
{
    uint8_t key[UIC_KEY_LEN];
    uic_key(key, user, ts);
    size_t len = uic_record_encode(w->rec, key, count, due, head, w->state, w->model->state_floats);
    MDB_val k = {UIC_KEY_LEN, key}, d = {len, w->rec};
    int rc = mdb_put(w->txn, w->db, &k, &d, w->in_order ? MDB_APPEND : 0);
    if (rc) return lmdb_err(rc, w->err, w->errlen, "writing the User Interest Center");
    w->records++;
    w->bytes += len;
    return 0;
}

/* Deletes user's records with ts > after. */
static int delete_after(uic_writer *w, MDB_cursor *cur, uint32_t user, int64_t after)
{
    uint8_t key[UIC_KEY_LEN];
    if (after == INT64_MAX) return 0;
    uic_key(key, user, after == INT64_MIN ? INT64_MIN : after + 1);
    MDB_val k = {UIC_KEY_LEN, key}, d;
    int rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == UIC_KEY_LEN && ubt_get_u32be(k.mv_data) == user) {
        if ((rc = mdb_cursor_del(cur, 0))) break;
        rc = mdb_cursor_get(cur, &k, &d, MDB_GET_CURRENT);
    }
    if (rc && rc != MDB_NOTFOUND && rc != EINVAL) /* EINVAL: the cursor ran off the end after a delete */
        return lmdb_err(rc, w->err, w->errlen, "updating the User Interest Center");
    return 0;
}

static int grow_ids(uic_writer *w, size_t n)
{
    if (n <= w->ids_cap) return 0;
    uint32_t *a = realloc(w->item, n * sizeof *a);
    if (a) w->item = a;
    uint32_t *b = a ? realloc(w->cat, n * sizeof *b) : NULL;
    if (b) w->cat = b;
    if (!a || !b) return err_set(w->err, w->errlen, LSIM_E_NOMEM, "out of memory");
    w->ids_cap = n;
    return 0;
}

static void fold(uic_writer *w, size_t lo, size_t hi)
{
    if (hi > lo) w->model->fold(w->model->ud, w->state, w->item + lo, w->cat + lo, hi - lo);
}

int uic_writer_update(uic_writer *w, uint32_t user, int64_t from)
{
    const uint32_t n = w->model->state_floats;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(w->txn, w->db, &cur);
    if (rc) return lmdb_err(rc, w->err, w->errlen, "opening the User Interest Center");
    /* R: the user's snapshot with the largest ts < from */
    int have = 0, was_head = 0;
    int64_t start = INT64_MIN;
    uint64_t count = 0, due = w->every;
    if (from > INT64_MIN) {
        uint8_t key[UIC_KEY_LEN];
        uic_key(key, user, from);
        MDB_val k = {UIC_KEY_LEN, key}, d;
        rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
        rc = rc == 0 ? mdb_cursor_get(cur, &k, &d, MDB_PREV)
                     : rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &k, &d, MDB_LAST) : rc;
        if (rc == 0 && k.mv_size == UIC_KEY_LEN && ubt_get_u32be(k.mv_data) == user) {
            uic_record r;
            if (uic_record_decode(&r, k.mv_data, d.mv_data, d.mv_size, n)) {
                mdb_cursor_close(cur);
                return err_set(w->err, w->errlen, LSIM_E_CORRUPT,
                               "corrupt User Interest Center record (user %u): run `lsim index verify`", user);
            }
            have = 1;
            was_head = r.head;
            start = uic_key_ts(k.mv_data);
            count = r.count;
            due = r.due;
            uic_record_state(&r, w->state, n);
            if (was_head && (rc = mdb_cursor_del(cur, 0))) {
                mdb_cursor_close(cur);
                return lmdb_err(rc, w->err, w->errlen, "updating the User Interest Center");
            }
        } else if (rc && rc != MDB_NOTFOUND) {
            mdb_cursor_close(cur);
            return lmdb_err(rc, w->err, w->errlen, "reading the User Interest Center");
        }
    }
    if (!have) w->model->init(w->model->ud, w->state);
    rc = delete_after(w, cur, user, start);
    mdb_cursor_close(cur);
    if (rc) return rc;
    size_t m = 0;
    if ((rc = index_user_events_range(w->rd, user, start, INT64_MAX, &w->ev, &w->ev_cap, &m)))
        return err_set(w->err, w->errlen, rc, "%s", lsim_index_reader_errmsg(w->rd));
    if ((rc = grow_ids(w, w->ev_cap))) return rc;
    for (size_t i = 0; i < m; i++) {
        w->item[i] = w->ev[i].item;
        w->cat[i] = w->ev[i].cat;
    }
    if (!m) /* nothing after R (not a call the writers make): R stays what it was */
        return have ? put_record(w, user, start, count, due, was_head) : 0;
    /* the snapshots the rule places after R, then the head */
    int64_t prev = start;
    size_t seg = 0;
    for (size_t i = 0; i < m; i++) {
        uint64_t p = count + i;
        if (p >= due && w->ev[i].ts > prev && (i > 0 || was_head)) {
            fold(w, seg, i);
            seg = i;
            due = (p / w->every + 1) * w->every;
            if ((rc = put_record(w, user, prev, p, due, 0))) return rc;
        }
        prev = w->ev[i].ts;
    }
    fold(w, seg, m);
    return put_record(w, user, prev, count + m, due, 1);
}
