/*
 * uic_read.c: a user's state just before a time, from the User Interest
 * Center's snapshots (index/uic.h).
 */
#include "index/uic.h"

#include "lsim.h"
#include "storage/error_detail.h"
#include "storage/lmdb_env.h"

#include <stdlib.h>
#include <string.h>

int index_uic_state(lsim_index_reader *rd, const uic_model *model, uint32_t user, int64_t before, float *state,
                    ubt_event **events, size_t *cap, uint32_t **ids, size_t *ids_cap, size_t *folded)
{
    lsim_index *ix = rd->ix;
    const uint32_t n = model->state_floats;
    *folded = 0;
    int rc;
    /* the UIC of this snapshot must be this model's: another may have replaced it since the open */
    MDB_val mk = {sizeof UIC_META_KEY - 1, UIC_META_KEY}, md;
    rc = mdb_get(rd->txn, ix->db_meta, &mk, &md);
    if (rc == MDB_NOTFOUND || !ix->has_uic) return LSIM_E_NOTFOUND;
    if (rc) return lmdb_err(rc, RD_MSG(rd), "reading the User Interest Center");
    size_t plen;
    uic_info info;
    if (ubt_unseal(mk.mv_data, mk.mv_size, md.mv_data, md.mv_size, &plen) ||
        uic_info_decode(&info, md.mv_data, plen))
        return err_set(RD_MSG(rd), LSIM_E_CORRUPT, "corrupt: the User Interest Center's record is damaged");
    if (info.model_id != model->id || info.state_floats != n) return LSIM_E_NOTFOUND;
    if (!rd->uic_cur) rc = mdb_cursor_open(rd->txn, ix->db_uic, &rd->uic_cur);
    else rc = mdb_cursor_renew(rd->txn, rd->uic_cur);
    if (rc) return lmdb_err(rc, RD_MSG(rd), "opening the User Interest Center");
    uint8_t key[UIC_KEY_LEN];
    uic_key(key, user, before);
    MDB_val k = {UIC_KEY_LEN, key}, d;
    rc = mdb_cursor_get(rd->uic_cur, &k, &d, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(rd->uic_cur, &k, &d, MDB_PREV)
                 : rc == MDB_NOTFOUND ? mdb_cursor_get(rd->uic_cur, &k, &d, MDB_LAST) : rc;
    int64_t start = INT64_MIN;
    if (rc == 0 && k.mv_size == UIC_KEY_LEN && ubt_get_u32be(k.mv_data) == user) {
        uic_record r;
        if (uic_record_decode(&r, k.mv_data, d.mv_data, d.mv_size, n))
            return err_set(RD_MSG(rd), LSIM_E_CORRUPT,
                           "corrupt User Interest Center record (user %u): run `lsim index verify`", user);
        uic_record_state(&r, state, n);
        if (r.head) return 0; /* every event of the user is in it */
        start = uic_key_ts(k.mv_data);
    } else if (rc && rc != MDB_NOTFOUND) {
        return lmdb_err(rc, RD_MSG(rd), "reading the User Interest Center");
    } else {
        model->init(model->ud, state);
    }
    size_t m = 0;
    if ((rc = index_user_events_range(rd, user, start, before, events, cap, &m))) return rc;
    if (2 * m > *ids_cap) {
        uint32_t *p = realloc(*ids, 2 * m * sizeof *p);
        if (!p) return err_set(RD_MSG(rd), LSIM_E_NOMEM, "out of memory");
        *ids = p;
        *ids_cap = 2 * m;
    }
    for (size_t i = 0; i < m; i++) {
        (*ids)[i] = (*events)[i].item;
        (*ids)[m + i] = (*events)[i].cat;
    }
    if (m) model->fold(model->ud, state, *ids, *ids + m, m);
    *folded = m;
    return 0;
}
