/*
 * evaluate.h: `lsim eval` as library calls: the test samples of a
 * checkpoint, scored in inference mode (private).
 *
 * The test set is the index's samples with t >= test_from, drawn as the
 * checkpoint's metadata says its training samples were (negatives per
 * positive, uniform or popularity sampling, lengths, per-user cap), from a
 * seed of their own: every model evaluated with the same seed on the same
 * index sees the same test samples (the draws do not depend on the model),
 * which is what makes their AUCs comparable.
 */
#ifndef LSIM_EVALUATE_H
#define LSIM_EVALUATE_H

#include "esu/model.h"
#include "lsim.h"
#include "train/metrics.h"
#include "train/samples.h"
#include "train/truth.h"

/* Reads the checkpoint's model spec into *spec, fills sc from its lsim.*
 * sampling keys (those absent, as in a checkpoint written by PyTorch, keep
 * sc's values), and sets split = TEST and the long-term list the model
 * needs. One open of the file. */
int eval_samples_from_checkpoint(sample_config *sc, const char *path, model_spec *spec, char *err, size_t errlen);

/* Scores every sample of sc with m (built for batches of sc->batch).
 * *rows (caller frees) gets one row per sample: the logit, the dense user,
 * the label; *n their count. With truth (train/truth.h), *truth_rows gets
 * the same samples scored by their Bayes-optimal probability
 * p / (p + N n(i)) (score; logit its log-odds). m may be NULL (truth only;
 * *rows is then NULL). */
int eval_score(lsim_index *ix, model *m, const sample_config *sc, truth_ctx *truth, metric_row **rows,
               metric_row **truth_rows, size_t *n, char *err, size_t errlen);

/* The candidates of logged requests (loaders/request_log.h) as samples (the
 * request's user and time, the candidate as lsim_score maps it), scored as
 * eval_score scores drawn ones: *rows gets one row per candidate in the
 * file's order, its user the request's user number (request_view.user_no),
 * its score the float probability lsim_score would return (so that ties
 * are the same as the engine's), its logit the model's. */
struct request_set;
int eval_requests(lsim_index *ix, model *m, const sample_config *sc, const struct request_set *rs, metric_row **rows,
                  size_t *n, char *err, size_t errlen);

#endif
