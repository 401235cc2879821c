/*
 * gen_truth_file.h: the truth file of `lsim gen log --truth FILE` (private).
 *
 * The generator is deterministic, so what it knows about any sample of its
 * log (gen_truth_prob, loaders/gen_log.h) follows from its parameters; the
 * truth file records them, one `key=value` per line (docs/GENERATOR.md):
 *   format=lsim-gen-truth-3
 *   seed=1
 *   users=2000  items=40000  categories=90  min_len=100  max_len=54000
 *   alpha=1.1000000000000001  days=180  end_ts=1512345600
 *   theme_size=1  theme_conc=5  cat_conc=2  item_conc=20  sess_stay=1  sess_mean=6  carry=0.29999999999999999
 *   carry_days=1
 * (one per line; items and categories as derived, never 0). Format 1 (before
 * the reinforced-urn model) is refused: its logs came from another
 * process. Lines starting with '#' are comments. Reading checks every key, every value's range and
 * that none is missing or repeated; errors name the file, the line and the
 * key.
 */
#ifndef LSIM_GEN_TRUTH_FILE_H
#define LSIM_GEN_TRUTH_FILE_H

#include "loaders/gen_log.h"

#include <stddef.h>

int gen_truth_file_write(const char *path, const gen_log_params *p, char *err, size_t errlen);
int gen_truth_file_read(const char *path, gen_log_params *p, char *err, size_t errlen);

#endif
