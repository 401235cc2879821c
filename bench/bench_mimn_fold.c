/*
 * bench_mimn_fold.c: the cost of MIMN's state fold (esu/mimn.h) per behavior, at
 * the default widths (E = 36, H = 36, m = 4, k = 1): the work the engine does per
 * request and the trainer per sample for every behavior of the history, and that
 * the User Interest Center does once per appended event.
 *
 *   bench_mimn_fold [--events N] [--reps R] [--reference]
 *
 * Folds N random behaviors (item and category ids over a 100,000-item catalog),
 * R times; prints the median ns per behavior, on the kernels chosen at run time
 * (or the plain C reference ones with --reference). One thread.
 */
#include "bench/bench_timing.h"
#include "esu/mimn.h"
#include "models/nn.h"

#include <string.h>

int main(int argc, char **argv)
{
    size_t n = 200000, reps = 7;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc) n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reference")) nn_force_reference(1);
        else {
            fprintf(stderr, "usage: bench_mimn_fold [--events N] [--reps R] [--reference]\n");
            return 2;
        }
    }
    if (!n || !reps || reps > 1000) return 2;
    mimn_config cfg;
    mimn_config_default(&cfg, 100000, 5000);
    mimn *m;
    if (mimn_new(&m, &cfg, 1)) {
        fprintf(stderr, "bench_mimn_fold: cannot build the model\n");
        return 1;
    }
    mimn_init(m, 1);
    uint32_t *item = malloc(n * sizeof *item), *cat = malloc(n * sizeof *cat);
    size_t sf = mimn_state_floats(&cfg);
    float *state = malloc(sf * sizeof *state), *scr = malloc(mimn_fold_scratch_floats(&cfg) * sizeof *scr);
    double *t = malloc(reps * sizeof *t);
    if (!item || !cat || !state || !scr || !t) return 1;
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++) item[i] = (uint32_t)(splitmix(&s) % 100000), cat[i] = item[i] % 5000;
    for (size_t r = 0; r < reps; r++) {
        mimn_state_init(m, state);
        double t0 = now_s();
        mimn_state_fold(m, state, item, cat, n, scr);
        t[r] = now_s() - t0;
    }
    double med = median(t, reps);
    printf("{\"events\": %zu, \"reps\": %zu, \"ns_per_event\": %.1f, \"state_floats\": %zu, \"state_bytes\": %zu, "
           "\"fold_scratch_floats\": %zu, \"reference\": %d, \"check\": %.6g}\n",
           n, reps, med / (double)n * 1e9, sf, sf * sizeof(float), mimn_fold_scratch_floats(&cfg),
           nn_reference_forced(), (double)state[0]);
    free(item);
    free(cat);
    free(state);
    free(scr);
    free(t);
    mimn_free(m);
    return 0;
}
