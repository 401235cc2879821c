/*
 * uic_mimn.h: MIMN's state fold as a User Interest Center model (index/uic.h)
 * (private): what `lsim index build|append|uic --uic CKPT` write with, and what
 * the engine reads the UIC with.
 *
 * The model's identity is the checkpoint's content hash (FNV-1a 64 of the
 * file's bytes): an index's UIC serves a checkpoint only if it was written
 * with the same bytes.
 */
#ifndef LSIM_UIC_MIMN_H
#define LSIM_UIC_MIMN_H

#include "esu/model.h"
#include "index/uic.h"

#include <stddef.h>
#include <stdint.h>

/* The hash of the file at path. LSIM_E_IO naming the file. */
int uic_checkpoint_id(const char *path, uint64_t *id, char *err, size_t errlen);

/* A UIC model over a loaded MIMN model (model_mimn(m) != NULL): one per
 * thread, since the fold writes its scratch. id and name as the checkpoint's.
 * scratch: mimn_fold_scratch_floats floats the caller owns (an engine
 * context's), or NULL to allocate them. u must not move (model.ud is u). */
typedef struct uic_mimn {
    uic_model model;
    const mimn *mm;
    float *scratch;
    int own_scratch;
} uic_mimn;

int uic_mimn_init(uic_mimn *u, const model *m, uint64_t id, const char *name, float *scratch);
void uic_mimn_free(uic_mimn *u);

/* Loads the MIMN checkpoint at path and makes its UIC model: LSIM_E_INVAL
 * (naming the file) when it is another kind of model. Free both with
 * uic_mimn_close. */
int uic_mimn_open(uic_mimn *u, model **m, const char *path, char *err, size_t errlen);
void uic_mimn_close(uic_mimn *u, model *m);

#endif
