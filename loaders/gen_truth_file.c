/*
 * gen_truth_file.c: see gen_truth_file.h.
 */
#include "loaders/gen_truth_file.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRUTH_FORMAT "lsim-gen-truth-3"

int gen_truth_file_write(const char *path, const gen_log_params *p, char *err, size_t errlen)
{
    gen_log_params q = *p;
    gen_log_derive(&q);
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, errlen, LSIM_E_IO, "%s: %s", path, strerror(errno));
    fprintf(f, "# lsim gen log truth: the generator's parameters. `lsim eval --truth` replays the generator\n"
               "# from them to give each test sample its true probability (docs/GENERATOR.md).\n");
    fprintf(f, "format=%s\nseed=%llu\nusers=%u\nitems=%u\ncategories=%u\nmin_len=%u\nmax_len=%u\nalpha=%.17g\n"
               "days=%u\nend_ts=%lld\n",
            TRUTH_FORMAT, (unsigned long long)q.seed, q.users, q.items, q.categories, q.min_len, q.max_len,
            q.len_alpha, q.days, (long long)q.end_ts);
    fprintf(f, "theme_size=%u\ntheme_conc=%.17g\ncat_conc=%.17g\nitem_conc=%.17g\nsess_stay=%.17g\nsess_mean=%.17g\n"
               "carry=%.17g\ncarry_days=%.17g\n",
            q.theme_size, q.theme_conc, q.cat_conc, q.item_conc, q.sess_stay, q.sess_mean, q.carry, q.carry_days);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return err_set(err, errlen, LSIM_E_IO, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

enum {
    K_FORMAT, K_SEED, K_USERS, K_ITEMS, K_CATS, K_MIN, K_MAX, K_ALPHA, K_DAYS, K_END,
    K_THEME_SIZE, K_THEME_CONC, K_CAT_CONC, K_ITEM_CONC, K_STAY, K_SESS_MEAN, K_CARRY, K_CARRY_DAYS, K_N
};
static const char *const keys[K_N] = {"format",     "seed",       "users",    "items",     "categories", "min_len",
                                      "max_len",    "alpha",      "days",     "end_ts",    "theme_size", "theme_conc",
                                      "cat_conc",   "item_conc",  "sess_stay", "sess_mean", "carry",      "carry_days"};

int gen_truth_file_read(const char *path, gen_log_params *p, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) return err_set(err, errlen, LSIM_E_IO, "%s: %s", path, strerror(errno));
    gen_log_params_default(p);
    int seen[K_N] = {0}, rc = 0;
    char line[256];
    unsigned long long ln = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        ln++;
        size_t len = strlen(line);
        if (len && line[len - 1] != '\n' && !feof(f)) {
            rc = err_set(err, errlen, LSIM_E_FORMAT, "%s:%llu: line too long", path, ln);
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len || line[0] == '#') continue;
        char *eq = strchr(line, '=');
        if (!eq) {
            rc = err_set(err, errlen, LSIM_E_FORMAT, "%s:%llu: want key=value, found '%.60s'", path, ln, line);
            break;
        }
        *eq = 0;
        const char *val = eq + 1;
        int k = 0;
        while (k < K_N && strcmp(line, keys[k])) k++;
        if (k == K_N) {
            rc = err_set(err, errlen, LSIM_E_FORMAT, "%s:%llu: unknown key '%.40s'", path, ln, line);
            break;
        }
        if (seen[k]++) {
            rc = err_set(err, errlen, LSIM_E_FORMAT, "%s:%llu: %s given twice", path, ln, keys[k]);
            break;
        }
        if (k == K_FORMAT) {
            if (strcmp(val, TRUTH_FORMAT))
                rc = err_set(err, errlen, LSIM_E_FORMAT, "%s:%llu: format '%.40s', want %s", path, ln, val,
                             TRUTH_FORMAT);
            continue;
        }
        char *end;
        errno = 0;
        if (k == K_ALPHA || (k >= K_THEME_CONC && k <= K_CARRY_DAYS)) {
            double d = strtod(val, &end);
            if (!*val || *end || errno)
                rc = err_set(err, errlen, LSIM_E_FORMAT, "%s:%llu: %s: not a number: '%.40s'", path, ln, keys[k], val);
            switch (k) {
            case K_ALPHA: p->len_alpha = d; break;
            case K_THEME_CONC: p->theme_conc = d; break;
            case K_CAT_CONC: p->cat_conc = d; break;
            case K_ITEM_CONC: p->item_conc = d; break;
            case K_STAY: p->sess_stay = d; break;
            case K_SESS_MEAN: p->sess_mean = d; break;
            case K_CARRY: p->carry = d; break;
            default: p->carry_days = d; break;
            }
            continue;
        }
        long long x = strtoll(val, &end, 10);
        long long hi = k == K_SEED || k == K_END ? INT64_MAX : (long long)UINT32_MAX;
        if (!*val || *end || errno || x < 0 || x > hi) {
            rc = err_set(err, errlen, LSIM_E_FORMAT, "%s:%llu: %s: want an integer in [0, %lld], found '%.40s'", path,
                         ln, keys[k], hi, val);
            continue;
        }
        switch (k) {
        case K_SEED: p->seed = (uint64_t)x; break;
        case K_USERS: p->users = (uint32_t)x; break;
        case K_ITEMS: p->items = (uint32_t)x; break;
        case K_CATS: p->categories = (uint32_t)x; break;
        case K_MIN: p->min_len = (uint32_t)x; break;
        case K_MAX: p->max_len = (uint32_t)x; break;
        case K_DAYS: p->days = (uint32_t)x; break;
        case K_THEME_SIZE: p->theme_size = (uint32_t)x; break;
        default: p->end_ts = x; break;
        }
    }
    if (!rc && ferror(f)) rc = err_set(err, errlen, LSIM_E_IO, "%s: read failed", path);
    fclose(f);
    for (int k = 0; k < K_N && !rc; k++)
        if (!seen[k]) rc = err_set(err, errlen, LSIM_E_FORMAT, "%s: no %s= line (not a truth file?)", path, keys[k]);
    if (!rc) {
        char e2[LSIM_ERRLEN];
        if (gen_log_check(p, e2, sizeof e2)) return err_set(err, errlen, LSIM_E_FORMAT, "%s: %s", path, e2);
    }
    return rc;
}
