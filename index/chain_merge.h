/*
 * chain_merge.h: adding a batch's events of a user the index already holds
 * (private). Used by appends, and by builds whose log is larger than one
 * batch.
 *
 * New events get tie ranks after the stored events of the same second (an
 * appended line is later than every stored line). Each category the user
 * already has an own chain for is merged into that chain, rewriting only the
 * blocks from the first one the new events fall into (a plain tail append
 * refills the last block and adds new ones). The other categories are
 * merged into the user's mixed chain, which is rewritten whole (it is small
 * by construction) with the chain policy applied again, so a category that
 * outgrows it moves to an own chain of its own.
 */
#ifndef LSIM_CHAIN_MERGE_H
#define LSIM_CHAIN_MERGE_H

#include "index/chain_encode.h"

#include <lmdb.h>

typedef struct chain_block {
    uint32_t seq;
    block_header h;
} chain_block;

typedef struct chain_merger {
    MDB_txn *txn;
    MDB_dbi db_ubt, db_users;
    MDB_cursor *cur;
    uint64_t *blocks;    /* the index's block count, kept current */
    chain_encoder *enc;  /* scratch and codec; its sink is set to direct puts */
    uint32_t own_min, mixed_max;
    ev_buf old, merged, to_mixed, add;
    cat_group *groups;
    size_t groups_cap;
    int64_t *old_ts;
    size_t old_ts_cap;
    chain_block *list;
    size_t list_cap;
    char *err;
    size_t errlen;
} chain_merger;

int chain_merger_init(chain_merger *mg, MDB_txn *txn, MDB_dbi db_ubt, MDB_dbi db_users, chain_encoder *enc,
                      uint64_t *blocks, uint32_t own_min, uint32_t mixed_max, char *err, size_t errlen);
void chain_merger_free(chain_merger *mg);

/* Merges run[0..m) (the batch's events of `user`, ts order, log order among
 * ties) into the user's stored chains and summary. */
int chain_merge_user(chain_merger *mg, uint32_t user, const batch_event *run, size_t m);

#endif
