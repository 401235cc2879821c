/*
 * truth.c: see truth.h.
 */
#include "train/truth.h"

#include "index/index_internal.h"
#include "loaders/gen_log.h"
#include "loaders/gen_truth_file.h"
#include "storage/error_detail.h"

#include <stdlib.h>
#include <string.h>

struct truth_ctx {
    lsim_index *ix;
    gen_truth *gt;
    char path[512];
};

int truth_open(truth_ctx **out, lsim_index *ix, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    gen_log_params p;
    int rc = gen_truth_file_read(path, &p, err, errlen);
    if (rc) return rc;
    truth_ctx *t = calloc(1, sizeof *t);
    if (!t) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    t->ix = ix;
    snprintf(t->path, sizeof t->path, "%s", path);
    if ((rc = gen_truth_new(&t->gt, &p, err, errlen))) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void truth_free(truth_ctx *t)
{
    if (!t) return;
    gen_truth_free(t->gt);
    free(t);
}

/* A raw id as the generator writes it: decimal, no sign, below 2^32. */
static int gen_id(const char *s, uint32_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
}

int truth_prob(truth_ctx *t, uint32_t user, uint32_t item, int64_t ts, double *p, char *err, size_t errlen)
{
    uint32_t u = 0, it = 0;
    pthread_rwlock_rdlock(&t->ix->lock);
    const char *us = user < vocab_size(t->ix->voc[IX_USER]) ? vocab_str(t->ix->voc[IX_USER], user) : NULL;
    const char *is = item < vocab_size(t->ix->voc[IX_ITEM]) ? vocab_str(t->ix->voc[IX_ITEM], item) : NULL;
    int bad_u = gen_id(us, &u), bad_i = gen_id(is, &it);
    pthread_rwlock_unlock(&t->ix->lock);
    if (bad_u || bad_i)
        return err_set(err, errlen, LSIM_E_FORMAT, "--truth %s: the index's %s '%.40s' is not a generator id: was the "
                                                   "index built from the log this truth file describes?",
                       t->path, bad_u ? "user" : "item", bad_u ? (us ? us : "?") : (is ? is : "?"));
    int rc = gen_truth_prob(t->gt, u, ts, it, p);
    if (rc)
        return err_set(err, errlen, LSIM_E_FORMAT, "--truth %s: user %u has no event at or after %lld in the "
                                                   "generator: the index does not come from this log",
                       t->path, u, (long long)ts);
    return 0;
}
