/*
 * test_util.c: see test_util.h.
 */
#include "tests/test_util.h"

#include "index/index_write.h"
#include "loaders/gen_log.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char *path = malloc(strlen(base) + strlen(tag) + 32);
    if (!path) return NULL;
    sprintf(path, "%s/lsim-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void tu_rmrf(const char *path)
{
    if (path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_shared_data(const char *rel)
{
    const char *base = getenv("LSIM_SHARED_DATA");
    if (!base) base = "../shared/data";
    char *p = malloc(strlen(base) + strlen(rel) + 2);
    if (!p) return NULL;
    sprintf(p, "%s/%s", base, rel);
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "note: shared data %s is absent; skipping the test that needs it\n", p);
        free(p);
        return NULL;
    }
    return p;
}

int tu_write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(text, 1, len, f);
    int rc = fclose(f);
    return (w == len && rc == 0) ? 0 : -1;
}

int tu_copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int rc = a && b ? 0 : -1;
    char buf[1 << 16];
    size_t n;
    while (!rc && (n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n) rc = -1;
    if (a && ferror(a)) rc = -1;
    if (a) fclose(a);
    if (b && fclose(b)) rc = -1;
    return rc;
}

const char *tu_lsim_bin(void)
{
    const char *b = getenv("LSIM_BIN");
    return b ? b : "./lsim";
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    buf[len] = 0;
    return buf;
}

int tu_run_lsim(const char *const *argv, char **out, char **err)
{
    char outp[] = "/tmp/lsim-out-XXXXXX", errp[] = "/tmp/lsim-err-XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    if (ofd < 0 || efd < 0) return -1;
    unlink(outp);
    unlink(errp);
    size_t n = 0;
    while (argv[n]) n++;
    const char **full = calloc(n + 2, sizeof *full);
    full[0] = tu_lsim_bin();
    for (size_t i = 0; i < n; i++) full[i + 1] = argv[i];
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        execv(full[0], (char *const *)full);
        _exit(127);
    }
    free(full);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    lseek(ofd, 0, SEEK_SET);
    lseek(efd, 0, SEEK_SET);
    if (out) *out = slurp_fd(ofd);
    if (err) *err = slurp_fd(efd);
    close(ofd);
    close(efd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int tu_compare_f32(const char *what, const float *got, const float *want, size_t n, double tol)
{
    int bad = 0;
    double worst = 0, maxabs = 0;
    for (size_t i = 0; i < n; i++) maxabs = fmax(maxabs, fabs((double)want[i]));
    for (size_t i = 0; i < n; i++) {
        double scale = fmax(fmax(fabs((double)want[i]), 0.02 * maxabs), 1e-5);
        double d = fabs((double)got[i] - (double)want[i]);
        if (d / scale > worst || d != d) worst = d / scale;
        if (!(d <= tol * scale)) {
            if (bad < 5) fprintf(stderr, "  %s[%zu]: got %.8g want %.8g\n", what, i, got[i], want[i]);
            bad++;
        }
    }
    if (bad)
        fprintf(stderr, "%s: %d of %zu values beyond %.0e (worst relative error %.3g)\n", what, bad, n, tol, worst);
    if (getenv("LSIM_TEST_VERBOSE")) fprintf(stderr, "%-32s worst relative error %.3g\n", what, worst);
    return bad;
}

float *tu_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    cr_assert(p, "out of memory");
    return p;
}

float *tu_nan_floats(size_t n)
{
    float *p = tu_floats(n);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

int tu_gen_index(const struct gen_log_params *p, const char *log, const char *idx, char *err, size_t errlen)
{
    FILE *f = fopen(log, "w");
    if (!f) return snprintf(err, errlen, "cannot write %s", log), -1;
    gen_log_summary sum;
    int rc = gen_log_write(f, p, &sum, err, errlen);
    if (fclose(f) && !rc) rc = -1, snprintf(err, errlen, "writing %s failed", log);
    if (rc) return rc;
    ubt_write_opts o;
    ubt_write_result res;
    const char *inputs[1] = {log};
    ubt_write_opts_default(&o);
    o.inputs = inputs;
    o.n_inputs = 1;
    return ubt_build(idx, &o, &res, err, errlen);
}
