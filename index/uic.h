/*
 * uic.h: the User Interest Center, a per-user model state kept in the index
 * beside the behavior tree (private; docs/FORMATS.md, "User Interest Center").
 *
 * MIMN (esu/mimn.h) folds a user's whole behavior sequence into a state of
 * fixed size. Serving it by folding the sequence at every request costs time
 * in proportion to the sequence (54,000 events); the UIC keeps the state in
 * the index and brings it up to date when events arrive (`lsim index build
 * --uic CKPT`, `lsim index append --uic CKPT`), so that a request reads it.
 * This file knows nothing of the model: it stores, for a `uic_model` (a state
 * length, the state before any event, and a fold of events into it), the
 * state of every user at a few points of the user's sequence.
 *
 * Records, in the index's LMDB environment (schema 2 with an optional
 * database, ubt_meta.h):
 *   "meta" / "uic"  uic_info below, sealed: the model's identity, the state
 *                   length, the snapshot interval. Present iff the index has
 *                   a UIC.
 *   "uic"           user(u32 BE) | ts(u64 BE, two's complement with the sign
 *                   bit flipped) -> a snapshot, sealed with its key:
 *                     u64 LE count    events folded (the user's first `count`,
 *                                     in the index's order: time, then log order)
 *                     u64 LE due      the next snapshot position (below)
 *                     u8     head     1: the state after all the user's events
 *                     f32 LE x state_floats: the state after those events
 *                   ts is the time of the last event folded (ts[count - 1]).
 * Which snapshots a user has is a function of the user's event times alone
 * (so an append leaves exactly the records a build over the whole log
 * writes):
 *   - a snapshot at position p (after p events) for each p with p >= due and
 *     ts[p] > ts[p - 1] (no tie straddles it), where due starts at `every`
 *     and becomes (p / every + 1) * every after each: about one per `every`
 *     events;
 *   - the head: after all n events (key ts[n - 1]; never a position above,
 *     since those have an event after them).
 * All events at or before a snapshot's ts are folded into it, so the state
 * of the user just before time t is: the snapshot with the largest ts < t
 * (none: the initial state), then the fold of the events with
 * snapshot ts < ts < t: at most about `every` events, read from the tree,
 * whatever the user's length; none when t is after the user's last event.
 *
 * Updating after an append of events whose earliest (for this user) is at
 * time `from`: the snapshot R with the largest ts < from stays valid (every
 * event at or before its ts is older than every new one); the records after
 * it are deleted, and the events after R's ts are folded from R's state,
 * writing the snapshots the rule places, and the head. A head R is itself
 * deleted first (it is no longer the head). In order appends fold the new
 * events only; an event older than the user's newest refolds from the
 * snapshot before it. All in the append's one transaction: a killed append
 * leaves the old events with the old states, or the new with the new.
 *
 * Determinism: the fold must give bit-for-bit the same state folding a
 * sequence at once or in pieces (esu/mimn.h promises it), so that an
 * append's states equal a build's.
 */
#ifndef LSIM_UIC_H
#define LSIM_UIC_H

#include "index/index_internal.h"
#include "index/uic_info.h"

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

/* The model whose state the UIC keeps. */
typedef struct uic_model {
    uint64_t id;           /* its identity: the checkpoint's content hash (the engine checks it) */
    uint32_t state_floats; /* >= 1 */
    char name[UIC_NAME_MAX]; /* for messages: the checkpoint's file name */
    void (*init)(void *ud, float *state);
    /* Folds n events (dense ids, in order) into state; bit-for-bit the same in pieces or at once. */
    void (*fold)(void *ud, float *state, const uint32_t *item, const uint32_t *cat, size_t n);
    void *ud;
} uic_model;

/* The UIC's state for every user touched by a write, inside the write
 * transaction (index_write.c). */
typedef struct uic_writer {
    const uic_model *model;
    uint32_t every;
    MDB_txn *txn;
    MDB_dbi db;
    lsim_index_reader *rd;  /* a reader over txn (index_reader_over_txn) */
    ubt_event *ev;          /* the events to fold, grown */
    size_t ev_cap;
    uint32_t *item, *cat;   /* their ids, for the fold */
    size_t ids_cap;
    float *state;
    uint8_t *rec;           /* one encoded record */
    int in_order;           /* every update is of a user above all others in the database (a fresh one): records
                               go in with MDB_APPEND, which fills pages (else about one record per page) */
    uint64_t records, bytes; /* written */
    char *err;
    size_t errlen;
} uic_writer;

/* rd must outlive w. LSIM_E_NOMEM. */
int uic_writer_init(uic_writer *w, const uic_model *model, uint32_t every, MDB_txn *txn, MDB_dbi db,
                    lsim_index_reader *rd, char *err, size_t errlen);
void uic_writer_free(uic_writer *w);
/* Brings user `user`'s records up to date after events from time `from` on
 * were added (INT64_MIN: every record is rewritten from the first event). */
int uic_writer_update(uic_writer *w, uint32_t user, int64_t from);

/* The state of dense user `user` just before time `before`, within a begun
 * snapshot of rd: into state (model->state_floats), folding what the
 * snapshots do not hold with model. LSIM_E_NOTFOUND when the snapshot has no
 * UIC, or one of another model (by id: `lsim index uic` may have replaced it
 * since the index was opened). events/cap, ids/ids_cap: buffers the call
 * grows (realloc; the caller frees them). *folded: the events folded on top
 * of the snapshot read. LSIM_E_CORRUPT for a damaged record (naming the
 * user), the reader's message says it. */
int index_uic_state(lsim_index_reader *rd, const uic_model *model, uint32_t user, int64_t before, float *state,
                    ubt_event **events, size_t *cap, uint32_t **ids, size_t *ids_cap, size_t *folded);

#endif
