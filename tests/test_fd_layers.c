/*
 * test_fd_layers.c: finite-difference gradient checks of the composite
 * layers (the kernels of models/nn*.h have their own in test_nn_basic.c and
 * test_nn_rnn.c): DIN's activation unit, SIM's ESU attention, the soft-search
 * GSU with its auxiliary head, and the MLP head. Independent of PyTorch:
 * each layer's backward is compared with central differences of a scalar
 * loss, loss = sum(out * dout) for a random dout (the GSU: its own BCE).
 *
 * The layers compute in float32, so the differences use a step of 1e-2 on
 * inputs of order 1 and the comparison allows 2e-2 relative (with a floor at
 * 2% of the tensor's largest gradient, tu_compare_f32); a wrong term in a
 * backward pass is off by far more.
 */
#include "esu/din_unit.h"
#include "esu/esu_attention.h"
#include "gsu/soft_search.h"
#include "lsim.h"
#include "models/arena.h"
#include "models/mlp_head.h"
#include "models/nn.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STEP 1e-2f
#define TOL 2e-2

static uint64_t g_seed = 12345;

static float urand(void)
{
    return (float)((double)(tu_rand(&g_seed) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = scale * urand();
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* The loss as a function of the current values: evaluated by the closure. */
typedef double (*loss_fn)(void *ctx);

/* Central differences of loss over x[0..n) into fd. */
static void numeric_grad(float *fd, float *x, size_t n, loss_fn f, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + STEP;
        double up = f(ctx);
        x[i] = keep - STEP;
        double down = f(ctx);
        x[i] = keep;
        fd[i] = (float)((up - down) / (2.0 * STEP));
    }
}

/* ---- DIN activation unit ---- */

typedef struct unit_case {
    din_unit u;
    param_set p, g;
    float *v, *ea, *es, *dout, *dea, *des;
    uint32_t off[5];
    size_t b, r, e;
} unit_case;

static double unit_loss(void *ctx)
{
    unit_case *c = ctx;
    din_unit_forward(&c->u, c->v, c->ea, c->es, c->off, c->b);
    return dot(c->v, c->dout, c->b * c->e);
}

static void check_din_unit(int softmax)
{
    unit_case c = {0};
    c.b = 4;
    c.e = 5;
    uint32_t lens[4] = {0, 1, 4, 3};
    c.off[0] = 0;
    for (int i = 0; i < 4; i++) c.off[i + 1] = c.off[i] + lens[i];
    c.r = c.off[4];
    param_list pl = {0};
    cr_assert_eq(din_unit_register(&pl, "att", c.e, 6, 3), 0);
    cr_assert_eq(param_set_init(&c.p, pl.specs, pl.n), 0);
    cr_assert_eq(param_set_init(&c.g, pl.specs, pl.n), 0);
    param_list_free(&pl);
    for (size_t i = 0; i < c.p.n; i++) fill(c.p.ptr[i], c.p.numel[i], 0.8f);
    din_unit_bind(&c.u, "att", c.e, 6, 3, softmax, &c.p, &c.g);
    arena a = {0};
    din_unit_carve(&c.u, &a, c.b, c.r, c.r);
    void *ws = arena_alloc(&a, a.used);
    din_unit_carve(&c.u, &a, c.b, c.r, c.r);
    c.v = calloc(c.b * c.e, sizeof(float));
    c.ea = calloc(c.b * c.e, sizeof(float));
    c.es = calloc(c.r * c.e, sizeof(float));
    c.dout = calloc(c.b * c.e, sizeof(float));
    c.dea = calloc(c.b * c.e, sizeof(float));
    c.des = calloc(c.r * c.e, sizeof(float));
    fill(c.ea, c.b * c.e, 1);
    fill(c.es, c.r * c.e, 1);
    fill(c.dout, c.b * c.e, 1);
    unit_loss(&c);
    din_unit_backward(&c.u, c.dea, c.des, c.dout);
    float *fd = malloc(4096 * sizeof(float));
    int bad = 0;
    numeric_grad(fd, c.ea, c.b * c.e, unit_loss, &c);
    bad += tu_compare_f32("din_unit d(e_a)", c.dea, fd, c.b * c.e, TOL);
    numeric_grad(fd, c.es, c.r * c.e, unit_loss, &c);
    bad += tu_compare_f32("din_unit d(e_j)", c.des, fd, c.r * c.e, TOL);
    for (size_t i = 0; i < c.p.n; i++) {
        if (softmax && strcmp(c.p.specs[i].name, "att.fc3.bias") == 0) {
            /* a softmax ignores a shift of all scores: this gradient is 0 (float noise aside) */
            cr_assert(fabsf(c.g.ptr[i][0]) < 1e-5f, "att.fc3.bias gradient %g under softmax", c.g.ptr[i][0]);
            continue;
        }
        numeric_grad(fd, c.p.ptr[i], c.p.numel[i], unit_loss, &c);
        bad += tu_compare_f32(c.p.specs[i].name, c.g.ptr[i], fd, c.p.numel[i], TOL);
    }
    cr_assert_eq(bad, 0, "DIN activation unit (softmax %d): %d gradients differ from finite differences", softmax, bad);
    free(fd);
    free(c.v);
    free(c.ea);
    free(c.es);
    free(c.dout);
    free(c.dea);
    free(c.des);
    free(ws);
    param_set_free(&c.p);
    param_set_free(&c.g);
}

Test(fd, din_activation_unit)
{
    check_din_unit(0);
    check_din_unit(1);
}

/* ---- ESU attention ---- */

typedef struct esu_case {
    esu_attention u;
    param_set p, g;
    float *out, *ea, *el, *dout, *dea, *del;
    int64_t ts[8], now[3];
    uint32_t off[4];
    size_t b, r, e, w;
} esu_case;

static double esu_loss(void *ctx)
{
    esu_case *c = ctx;
    esu_attention_forward(&c->u, c->out, c->ea, c->el, c->ts, c->now, c->off, c->b);
    return dot(c->out, c->dout, c->b * c->w);
}

Test(fd, esu_attention_with_time)
{
    esu_case c = {0};
    c.b = 3;
    c.e = 4;
    uint32_t lens[3] = {3, 0, 5};
    for (int i = 0; i < 3; i++) c.off[i + 1] = c.off[i] + lens[i];
    c.r = c.off[3];
    for (int i = 0; i < 3; i++) c.now[i] = 1500000000 + i;
    for (size_t r = 0; r < c.r; r++) c.ts[r] = 1500000000 - (int64_t)(60u << (2 * r));
    param_list pl = {0};
    cr_assert_eq(esu_attention_register(&pl, c.e, 3, 2, 3, ESU_TIME_BUCKETS), 0);
    cr_assert_eq(param_set_init(&c.p, pl.specs, pl.n), 0);
    cr_assert_eq(param_set_init(&c.g, pl.specs, pl.n), 0);
    param_list_free(&pl);
    for (size_t i = 0; i < c.p.n; i++) fill(c.p.ptr[i], c.p.numel[i], 0.7f);
    esu_attention_bind(&c.u, c.e, 3, 2, 3, ESU_TIME_BUCKETS, &c.p, &c.g);
    arena a = {0};
    esu_attention_carve(&c.u, &a, c.b, c.r);
    void *ws = arena_alloc(&a, a.used);
    esu_attention_carve(&c.u, &a, c.b, c.r);
    c.w = esu_attention_width(&c.u);
    c.out = calloc(c.b * c.w, sizeof(float));
    c.ea = calloc(c.b * c.e, sizeof(float));
    c.el = calloc(c.r * c.e, sizeof(float));
    c.dout = calloc(c.b * c.w, sizeof(float));
    c.dea = calloc(c.b * c.e, sizeof(float));
    c.del = calloc(c.r * c.e, sizeof(float));
    fill(c.ea, c.b * c.e, 1);
    fill(c.el, c.r * c.e, 1);
    fill(c.dout, c.b * c.w, 1);
    esu_loss(&c);
    esu_attention_backward(&c.u, c.dea, c.del, c.dout);
    float *fd = malloc(4096 * sizeof(float));
    int bad = 0;
    numeric_grad(fd, c.ea, c.b * c.e, esu_loss, &c);
    bad += tu_compare_f32("esu d(e_a)", c.dea, fd, c.b * c.e, TOL);
    numeric_grad(fd, c.el, c.r * c.e, esu_loss, &c);
    bad += tu_compare_f32("esu d(e_j)", c.del, fd, c.r * c.e, TOL);
    for (size_t i = 0; i < c.p.n; i++) {
        numeric_grad(fd, c.p.ptr[i], c.p.numel[i], esu_loss, &c);
        bad += tu_compare_f32(c.p.specs[i].name, c.g.ptr[i], fd, c.p.numel[i], TOL);
    }
    cr_assert_eq(bad, 0, "ESU attention: %d gradients differ from finite differences", bad);
    free(fd);
    free(c.out);
    free(c.ea);
    free(c.el);
    free(c.dout);
    free(c.dea);
    free(c.del);
    free(ws);
    param_set_free(&c.p);
    param_set_free(&c.g);
}

/* ---- soft-search GSU with its auxiliary head (training mode: Dice uses the
 * batch's statistics, a smooth function of the inputs too; the running
 * statistics it updates do not enter a training-mode output) ---- */

typedef struct gsu_case {
    soft_gsu g;
    param_set p, gr, buf;
    float *ea, *el, *dea, *del, label[3];
    uint32_t off[4], bucket[5];
    size_t b, r, e;
} gsu_case;

static double gsu_loss(void *ctx)
{
    gsu_case *c = ctx;
    return soft_gsu_forward(&c->g, NULL, c->ea, c->el, c->off, c->b, c->bucket, c->label, 1);
}

/* nt: the recency bias's buckets (0: none); rows 0 and 2 share bucket 1, so its
 * gradient sums two rows' */
static void gsu_fd_case(int softmax, size_t nt)
{
    gsu_case c = {0};
    uint32_t bucket[5] = {1, 3, 1, 0, 2};
    memcpy(c.bucket, bucket, sizeof bucket);
    c.b = 3;
    c.e = 4;
    uint32_t lens[3] = {4, 1, 0};
    for (int i = 0; i < 3; i++) c.off[i + 1] = c.off[i] + lens[i];
    c.r = c.off[3];
    c.label[0] = 1;
    c.label[2] = 1;
    param_list pl = {0}, bl = {0};
    cr_assert_eq(soft_gsu_register(&pl, &bl, c.e, 3, 5, 4, nt), 0);
    cr_assert_eq(param_set_init(&c.p, pl.specs, pl.n), 0);
    cr_assert_eq(param_set_init(&c.gr, pl.specs, pl.n), 0);
    cr_assert_eq(param_set_init(&c.buf, bl.specs, bl.n), 0);
    param_list_free(&pl);
    param_list_free(&bl);
    for (size_t i = 0; i < c.p.n; i++) fill(c.p.ptr[i], c.p.numel[i], 0.7f);
    soft_gsu_bind(&c.g, c.e, c.e / 2, 3, 5, 4, nt, 0.01f, softmax, &c.p, &c.gr, &c.buf);
    if (nt) fill(param_find(&c.p, "gsu.time_bias"), nt, 0.3f); /* biases of the scores' size, not above it */
    mlp_head_reset_buffers(&c.g.aux);
    arena a = {0};
    soft_gsu_carve(&c.g, &a, c.b, c.r);
    void *ws = arena_alloc(&a, a.used);
    soft_gsu_carve(&c.g, &a, c.b, c.r);
    c.ea = calloc(c.b * c.e, sizeof(float));
    c.el = calloc(c.r * c.e, sizeof(float));
    c.dea = calloc(c.b * c.e, sizeof(float));
    c.del = calloc(c.r * c.e, sizeof(float));
    /* softmax pooling: larger inputs, so that its smaller gradients stand above the float loss's steps */
    fill(c.ea, c.b * c.e, softmax && !nt ? 2.0f : 1.5f);
    fill(c.el, c.r * c.e, softmax && !nt ? 2.0f : 1.5f);
    gsu_loss(&c);
    soft_gsu_backward(&c.g, c.dea, c.del, c.label, 1.0f);
    float *fd = malloc(4096 * sizeof(float));
    int bad = 0;
    numeric_grad(fd, c.ea, c.b * c.e, gsu_loss, &c);
    bad += tu_compare_f32("gsu d(e_a)", c.dea, fd, c.b * c.e, TOL);
    numeric_grad(fd, c.el, c.r * c.e, gsu_loss, &c);
    bad += tu_compare_f32("gsu d(e_i)", c.del, fd, c.r * c.e, TOL);
    for (size_t i = 0; i < c.p.n; i++) {
        /* with the bias, W_a's and W_b's gradients here are near the float loss's resolution over the step
         * (about 2e-6); tests/test_sim.c's case t. checks them against PyTorch */
        if (nt && (!strcmp(c.p.specs[i].name, "gsu.wa") || !strcmp(c.p.specs[i].name, "gsu.wb"))) continue;
        numeric_grad(fd, c.p.ptr[i], c.p.numel[i], gsu_loss, &c);
        bad += tu_compare_f32(c.p.specs[i].name, c.gr.ptr[i], fd, c.p.numel[i], TOL);
    }
    cr_assert(!nt || param_find(&c.p, "gsu.time_bias"), "no gsu.time_bias with the recency bias");
    cr_assert_eq(bad, 0, "soft-search GSU (%s pooling%s): %d gradients differ from finite differences",
                 softmax ? "softmax" : "the paper's", nt ? ", recency bias" : "", bad);
    free(fd);
    free(c.ea);
    free(c.el);
    free(c.dea);
    free(c.del);
    free(ws);
    param_set_free(&c.p);
    param_set_free(&c.gr);
    param_set_free(&c.buf);
}

Test(fd, soft_search_gsu_and_auxiliary_head)
{
    gsu_fd_case(0, 0);
}

Test(fd, soft_search_gsu_with_softmax_pooling)
{
    gsu_fd_case(1, 0);
}

Test(fd, soft_search_gsu_with_the_recency_bias)
{
    gsu_fd_case(1, 4);
}
