/*
 * test_optim.c: train/optim.c against torch.optim (tests/golden/gen_optim.py:
 * Adam with inverse-time learning-rate decay, Adagrad with its lr_decay),
 * six steps on three tensors, every parameter after every step within 1e-6
 * relative (the same float32 operations in the same order; what differs is
 * libm's sqrtf against PyTorch's vectorized one, both correctly rounded, and
 * pow of the step's scalars). Then a resumed run: the state saved after step
 * 3 to a checkpoint, loaded into a fresh optimizer, steps 4-6 give exactly
 * the continuous run's parameters. And the state loader's errors.
 */
#include "lsim.h"
#include "loaders/safetensors.h"
#include "models/params.h"
#include "storage/error_detail.h"
#include "tests/model_fixture.h"
#include "tests/test_util.h"
#include "train/optim.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { NP = 3, STEPS = 6 };

static void make_sets(param_set *p, param_set *g)
{
    param_spec specs[NP] = {{"p0", 2, {3, 5}}, {"p1", 1, {7}}, {"p2", 3, {2, 2, 3}}};
    cr_assert_eq(param_set_init(p, specs, NP), 0);
    cr_assert_eq(param_set_init(g, specs, NP), 0);
}

static void load_into(param_set *ps, const st_file *f, const char *fmt_case, const char *what)
{
    for (size_t k = 0; k < NP; k++) {
        char name[64];
        snprintf(name, sizeof name, "p%zu.%s", k, what);
        const st_tensor *t = mf_need(f, fmt_case, name);
        cr_assert_eq(t->nbytes, ps->numel[k] * sizeof(float), "%s%s: size", fmt_case, name);
        memcpy(ps->ptr[k], t->data, t->nbytes);
    }
}

static int compare_all(const param_set *ps, const st_file *f, const char *prefix, const char *what, double tol)
{
    int bad = 0;
    for (size_t k = 0; k < NP; k++) {
        char name[64], label[96];
        snprintf(name, sizeof name, "p%zu.%s", k, what);
        snprintf(label, sizeof label, "%s%s", prefix, name);
        bad += mf_compare(label, ps->ptr[k], mf_need(f, prefix, name), tol);
    }
    return bad;
}

static void steps(optim *o, param_set *p, param_set *g, const st_file *f, const char *prefix, int from, int to,
                  int check)
{
    for (int t = from; t <= to; t++) {
        char what[16];
        snprintf(what, sizeof what, "g%d", t);
        load_into(g, f, prefix, what);
        optim_step(o, p, g);
        snprintf(what, sizeof what, "after%d", t);
        if (check) cr_expect_eq(compare_all(p, f, prefix, what, 1e-6), 0, "%s step %d differs from PyTorch", prefix, t);
    }
}

static void config_for(optim_config *c, optim_kind kind)
{
    optim_config_default(c, kind);
    c->lr = kind == OPTIM_ADAM ? 0.01 : 0.05;
    c->decay = 0.1;
}

static void one_case(optim_kind kind)
{
    const char *prefix = kind == OPTIM_ADAM ? "adam." : "adagrad.";
    st_file *f = mf_open("optim.safetensors");
    param_set p, g;
    make_sets(&p, &g);
    load_into(&p, f, prefix, "init");
    optim o;
    optim_config c;
    config_for(&c, kind);
    cr_assert_eq(optim_init(&o, &c, &p), 0);
    steps(&o, &p, &g, f, prefix, 1, STEPS, 1);
    if (kind == OPTIM_ADAM) {
        cr_expect_eq(compare_all(&o.m, f, prefix, "exp_avg", 1e-6), 0);
        cr_expect_eq(compare_all(&o.v, f, prefix, "exp_avg_sq", 1e-6), 0);
    } else {
        cr_expect_eq(compare_all(&o.v, f, prefix, "sum", 1e-6), 0);
    }
    cr_expect_eq(o.step, (uint64_t)STEPS);

    /* resume: run 1..3, save, load into a fresh optimizer, run 4..6 */
    param_set p2, g2;
    make_sets(&p2, &g2);
    load_into(&p2, f, prefix, "init");
    optim a, b;
    cr_assert_eq(optim_init(&a, &c, &p2), 0);
    steps(&a, &p2, &g2, f, prefix, 1, 3, 0);
    char *dir = tu_tmpdir("optim"), path[512], err[LSIM_ERRLEN];
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    st_writer *w;
    cr_assert_eq(st_writer_new(&w), 0);
    cr_assert_eq(optim_state_save(&a, w), 0);
    cr_assert_eq(st_writer_write(w, path, err, sizeof err), 0, "%s", err);
    st_writer_free(w);
    cr_assert_eq(optim_init(&b, &c, &p2), 0);
    st_file *sf;
    cr_assert_eq(st_open(&sf, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(optim_state_load(&b, sf, path, err, sizeof err), 0, "%s", err);
    cr_expect_eq(b.step, 3u);
    steps(&b, &p2, &g2, f, prefix, 4, STEPS, 0);
    for (size_t k = 0; k < NP; k++)
        cr_expect_eq(memcmp(p.ptr[k], p2.ptr[k], p.numel[k] * sizeof(float)), 0, "%s resumed run: p%zu differs", prefix,
                     k);

    /* the state of the other kind is refused, naming the file and the key */
    optim other;
    optim_config oc;
    config_for(&oc, kind == OPTIM_ADAM ? OPTIM_ADAGRAD : OPTIM_ADAM);
    cr_assert_eq(optim_init(&other, &oc, &p2), 0);
    cr_expect_eq(optim_state_load(&other, sf, path, err, sizeof err), LSIM_E_FORMAT);
    cr_expect(strstr(err, path) && strstr(err, "lsim.optim"), "message: %s", err);
    optim_free(&other);
    st_close(sf);
    tu_rmrf(dir);
    optim_free(&a);
    optim_free(&b);
    optim_free(&o);
    param_set_free(&p);
    param_set_free(&g);
    param_set_free(&p2);
    param_set_free(&g2);
    st_close(f);
}

Test(optim, adam_matches_pytorch)
{
    one_case(OPTIM_ADAM);
}

Test(optim, adagrad_matches_pytorch)
{
    one_case(OPTIM_ADAGRAD);
}

Test(optim, learning_rate_decays_by_inverse_time)
{
    param_set p, g;
    make_sets(&p, &g);
    optim o;
    optim_config c;
    optim_config_default(&c, OPTIM_ADAM);
    c.lr = 0.5;
    c.decay = 0.25;
    cr_assert_eq(optim_init(&o, &c, &p), 0);
    for (int t = 0; t < 5; t++) {
        cr_expect_float_eq(optim_lr(&o), 0.5f / (1.0f + 0.25f * (float)t), 1e-7);
        optim_step(&o, &p, &g);
    }
    optim_free(&o);
    param_set_free(&p);
    param_set_free(&g);
}

/* Lazy (row) updates: Adagrad's equal the dense step exactly when the other
 * rows' gradients are zero; Adam's move the listed rows by the formula (the
 * test's own float arithmetic, in PyTorch's order, with the global step) and
 * leave every other row as it is, even rows whose momentum is not zero. */
Test(optim, sparse_rows_move_only_the_rows_used)
{
    param_spec specs[2] = {{"emb", 2, {10, 3}}, {"w", 1, {4}}};
    uint64_t st = 9;
    for (int kind = 0; kind < 2; kind++) {
        param_set p, q, g;
        cr_assert_eq(param_set_init(&p, specs, 2), 0);
        cr_assert_eq(param_set_init(&q, specs, 2), 0);
        cr_assert_eq(param_set_init(&g, specs, 2), 0);
        for (size_t i = 0; i < p.total; i++) p.block[i] = q.block[i] = (float)(tu_rand(&st) % 2000) / 1000.0f - 1.0f;
        optim_config c;
        optim_config_default(&c, kind ? OPTIM_ADAGRAD : OPTIM_ADAM);
        c.lr = 0.05;
        optim a, b;
        cr_assert_eq(optim_init(&a, &c, &p), 0);
        cr_assert_eq(optim_init(&b, &c, &q), 0);
        float m[30] = {0}, v[30] = {0}, ref[30];
        memcpy(ref, q.ptr[0], sizeof ref);
        static const uint32_t sets[3][3] = {{1, 4, 7}, {4, 9, 0}, {2, 3, 5}};
        for (int step = 1; step <= 3; step++) {
            const uint32_t *rows = sets[step - 1];
            param_set_zero(&g);
            for (int k = 0; k < 3; k++)
                for (int d = 0; d < 3; d++) g.ptr[0][rows[k] * 3 + d] = (float)(tu_rand(&st) % 2000) / 1000.0f - 1.0f;
            for (int d = 0; d < 4; d++) g.ptr[1][d] = (float)(tu_rand(&st) % 2000) / 1000.0f - 1.0f;
            sparse_rows sr = {0, rows, 3};
            optim_step(&a, &p, &g);           /* dense */
            optim_step_sparse(&b, &q, &g, &sr, 1); /* lazy */
            cr_expect_eq(memcmp(p.ptr[1], q.ptr[1], 4 * sizeof(float)), 0, "kind %d step %d: dense tensor differs",
                         kind,
                         step);
            if (kind) { /* Adagrad: the same, exactly */
                cr_expect_eq(memcmp(p.ptr[0], q.ptr[0], 30 * sizeof(float)), 0, "Adagrad step %d: lazy differs", step);
                continue;
            }
            double t = step;
            float step_size = (float)(0.05 / (1.0 - pow(0.9, t))), bc2 = (float)sqrt(1.0 - pow(0.999, t));
            for (int k = 0; k < 3; k++)
                for (int d = 0; d < 3; d++) {
                    int i = (int)rows[k] * 3 + d;
                    float gi = g.ptr[0][i];
                    m[i] = m[i] * 0.9f + (float)(1.0 - 0.9) * gi;
                    v[i] = v[i] * 0.999f + (float)(1.0 - 0.999) * gi * gi;
                    ref[i] = ref[i] + -step_size * (m[i] / (sqrtf(v[i]) / bc2 + 1e-8f));
                }
            cr_expect_eq(memcmp(ref, q.ptr[0], sizeof ref), 0, "lazy Adam step %d differs from the formula", step);
        }
        if (!kind) /* dense Adam moved row 1 at step 3 by its momentum; lazy did not */
            cr_expect(p.ptr[0][3] != q.ptr[0][3], "dense and lazy Adam agree where they should not");
        optim_free(&a);
        optim_free(&b);
        param_set_free(&p);
        param_set_free(&q);
        param_set_free(&g);
    }
}
