/*
 * index_verify.h: whole-index checks behind `lsim index verify` (private).
 *
 * Reads every block and record of one snapshot and checks the invariants of
 * ubt_layout.h: checksums, structure, time order, tie ranks, one chain per
 * (user, category), ids inside the vocabularies, chain sizes, and that the
 * per-user summaries and the global counts agree with the blocks; and the
 * User Interest Center's records, when the index has one (index/uic.h).
 */
#ifndef LSIM_INDEX_VERIFY_H
#define LSIM_INDEX_VERIFY_H

#include "lsim.h"

#include <stdint.h>

typedef struct index_verify_report {
    uint64_t users, blocks, events, chains, problems;
    uint64_t uic_records; /* User Interest Center states (index/uic.h) */
} index_verify_report;

/* Calls on_problem for each problem found (at most max_problems, then stops
 * reporting but keeps counting). Returns 0 when the index is sound,
 * LSIM_E_CORRUPT when problems were found, another code if it could not read. */
int index_verify(lsim_index *ix, index_verify_report *rep, void (*on_problem)(void *, const char *),
                 void *ctx, uint64_t max_problems);

#endif
