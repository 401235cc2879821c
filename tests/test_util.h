/*
 * test_util.h: helpers shared by the Criterion tests: scratch directories,
 * the shared sample data, running the lsim binary.
 */
#ifndef LSIM_TEST_UTIL_H
#define LSIM_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh empty directory under $TMPDIR (or /tmp); the returned string is
 * static per call site-less pool (copy it if you keep several). Removed by
 * tu_rmrf. */
char *tu_tmpdir(const char *tag);
void tu_rmrf(const char *path);

/* Path of a file under ../shared/data, or NULL (and a message on stderr
 * saying it is absent) when the folder is not there. Caller frees. */
char *tu_shared_data(const char *rel);

/* Writes `text` to path; returns 0 or -1. */
int tu_write_file(const char *path, const char *text, size_t len);

/* Copies the file at `from` to `to` (created or truncated); returns 0 or -1. */
int tu_copy_file(const char *from, const char *to);

/* Runs the lsim binary with argv (NULL-terminated, without argv[0]),
 * capturing stdout and stderr (caller frees, may pass NULL). Returns the
 * exit status, or -1 if it did not exit normally. */
int tu_run_lsim(const char *const *argv, char **out, char **err);

/* Path of the lsim binary ($LSIM_BIN). */
const char *tu_lsim_bin(void);

/* Compares got[0..n) with want[0..n) (the reference, e.g. PyTorch's):
 * element i passes when |got - want| <= tol * max(|want_i|, 2% of the
 * largest |want|, 1e-5). The floors keep values near zero, where float32
 * sums in another order differ most, measured against the tensor's scale
 * (not an absolute 1, which would hide every small gradient). The last one,
 * 1e-5 (an absolute 1e-9 at tol 1e-4), is for a tensor that is zero in
 * exact arithmetic, such as the bias before a softmax: both sides give
 * float32 noise of ~1e-10 there, or an exact 0, depending on the order of
 * their sums. Prints the
 * first mismatches and returns their count; with LSIM_TEST_VERBOSE set it
 * also prints the worst relative error of every comparison. */
int tu_compare_f32(const char *what, const float *got, const float *want, size_t n, double tol);

/* A small deterministic PRNG (splitmix64) for random test cases. */
uint64_t tu_rand(uint64_t *state);

/* Writes `lsim gen log` with p to log and builds the index idx from it;
 * 0, or the failing step's code with err set. */
struct gen_log_params;
int tu_gen_index(const struct gen_log_params *p, const char *log, const char *idx, char *err, size_t errlen);

/* n floats (at least one), zeroed, or all NaN (so that a value the code
 * under test forgets to write shows); out of memory fails the test. */
float *tu_floats(size_t n);
float *tu_nan_floats(size_t n);

#endif
