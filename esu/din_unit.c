/*
 * din_unit.c: see din_unit.h.
 */
#include "esu/din_unit.h"

#include "esu/din_pairs.h"
#include "lsim.h"
#include "models/nn.h"
#include "models/nn_small.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const suffix[6] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"};

int din_unit_register(param_list *p, const char *prefix, size_t e, size_t h1, size_t h2)
{
    size_t shapes[6][2] = {{h1, 4 * e}, {h1, 0}, {h2, h1}, {h2, 0}, {1, h2}, {1, 0}};
    for (int i = 0; i < 6; i++) {
        char name[PARAM_NAME_MAX];
        snprintf(name, sizeof name, "%s.%s", prefix, suffix[i]);
        int rc = param_list_add(p, name, shapes[i][1] ? 2 : 1, shapes[i]);
        if (rc) return rc;
    }
    return 0;
}

void din_unit_bind(din_unit *u, const char *prefix, size_t e, size_t h1, size_t h2, int softmax, const param_set *p,
                   const param_set *g)
{
    u->e = e;
    u->h1 = h1;
    u->h2 = h2;
    u->softmax = softmax;
    u->split = 0;
    const float **pv[6] = {&u->w1, &u->b1, &u->w2, &u->b2, &u->w3, &u->b3};
    float **gv[6] = {&u->gw1, &u->gb1, &u->gw2, &u->gb2, &u->gw3, &u->gb3};
    for (int i = 0; i < 6; i++) {
        char name[PARAM_NAME_MAX];
        snprintf(name, sizeof name, "%s.%s", prefix, suffix[i]);
        *pv[i] = param_find(p, name);
        *gv[i] = g ? param_find(g, name) : NULL;
    }
}

void din_unit_carve(din_unit *u, arena *a, size_t max_b, size_t max_rows, size_t max_shared)
{
    size_t R = max_rows;
    u->wj = ARENA_FLOATS(a, u->h1 * u->e);
    u->wa = ARENA_FLOATS(a, u->h1 * u->e);
    u->wd = ARENA_FLOATS(a, u->h1 * u->e);
    u->w2e = ARENA_FLOATS(a, u->h1 * 2 * u->e);
    u->gw2e = ARENA_TRAIN_FLOATS(a, u->h1 * 2 * u->e);
    u->g2 = ARENA_TRAIN_FLOATS(a, u->h1 * u->e);
    u->p = ARENA_FLOATS(a, max_shared * u->h1);
    u->q = ARENA_FLOATS(a, max_b * u->h1);
    u->wdi = ARENA_FLOATS(a, u->h1 * u->e);
    u->wdc = ARENA_FLOATS(a, u->h1 * u->e);
    u->qg = ARENA_FLOATS(a, max_b * DIN_UNIT_GROUPS * u->h1);
    u->zc = ARENA_FLOATS(a, max_b * DIN_UNIT_GROUPS * u->e);
    u->grp = ARENA_U32(a, max_shared);
    u->wzt = ARENA_FLOATS(a, u->e * u->h1);
    u->w2t = ARENA_FLOATS(a, u->h1 * u->h2);
    u->rep = ARENA_U32(a, DIN_UNIT_GROUPS);
    u->x = ARENA_FLOATS(a, R * 2 * u->e);
    u->a1 = ARENA_FLOATS(a, R * u->h1);
    u->a2 = ARENA_FLOATS(a, R * u->h2);
    u->sc = ARENA_FLOATS(a, R);
    u->w = ARENA_FLOATS(a, R);
    u->dx = ARENA_TRAIN_FLOATS(a, R * 2 * u->e);
    u->da1 = ARENA_TRAIN_FLOATS(a, R * u->h1);
    u->da2 = ARENA_TRAIN_FLOATS(a, R * u->h2);
    u->dp1 = ARENA_TRAIN_FLOATS(a, R * u->h1);
    u->dp2 = ARENA_TRAIN_FLOATS(a, R * u->h2);
    u->dsc = ARENA_TRAIN_FLOATS(a, R);
    u->dw = ARENA_TRAIN_FLOATS(a, R);
}

static void unit_tail(din_unit *u, float *v, const float *es, const uint32_t *off, size_t b, size_t R);

/* wj, wa, wd and w2e from fc1's weight */
static void fold_fc1(din_unit *u)
{
    size_t E = u->e;
    for (size_t o = 0; o < u->h1; o++) {
        const float *w = u->w1 + o * 4 * E;
        for (size_t d = 0; d < E; d++) {
            u->wj[o * E + d] = u->w2e[o * 2 * E + d] = w[d] + w[2 * E + d];
            u->wa[o * E + d] = w[E + d] - w[2 * E + d];
            u->wd[o * E + d] = u->w2e[o * 2 * E + E + d] = w[3 * E + d];
        }
    }
}

void din_unit_forward(din_unit *u, float *v, const float *ea, const float *es, const uint32_t *off, size_t b)
{
    size_t E = u->e, H1 = u->h1, R = off[b];
    u->ea = ea;
    u->es = es;
    u->off = off;
    u->b = b;
    u->r = R;
    fold_fc1(u);
    nn_linear_forward(u->q, ea, u->wa, u->b1, b, E, H1); /* once per sample */
    for (size_t i = 0; i < b; i++) {
        const float *a = ea + i * E, *qi = u->q + i * H1;
        for (size_t r = off[i]; r < off[i + 1]; r++) {
            const float *ej = es + r * E;
            float *x = u->x + r * 2 * E; /* [e_j, e_j * e_a] */
            for (size_t d = 0; d < E; d++) {
                x[d] = ej[d];
                x[E + d] = ej[d] * a[d];
            }
            memcpy(u->a1 + r * H1, qi, H1 * sizeof(float));
        }
    }
    nn_linear_forward_acc(u->a1, u->x, u->w2e, R, 2 * E, H1);
    unit_tail(u, v, es, off, b, R);
}

void din_unit_backward(din_unit *u, float *dea, float *des, const float *dv)
{
    size_t E = u->e, R = u->r, b = u->b;
    const uint32_t *off = u->off;
    /* v = sum_j w_j e_j */
    for (size_t i = 0; i < b; i++) {
        const float *dvi = dv + i * E;
        for (size_t r = off[i]; r < off[i + 1]; r++) {
            const float *ej = u->es + r * E;
            float *dej = des + r * E, s = 0;
            for (size_t d = 0; d < E; d++) {
                s += dvi[d] * ej[d];
                dej[d] += u->w[r] * dvi[d];
            }
            u->dw[r] = s;
        }
    }
    for (size_t i = 0; i < b; i++) {
        size_t lo = off[i], hi = off[i + 1];
        if (!u->softmax) {
            memcpy(u->dsc + lo, u->dw + lo, (hi - lo) * sizeof(float));
        } else if (hi > lo) {
            uint32_t n = (uint32_t)(hi - lo);
            memset(u->dsc + lo, 0, n * sizeof(float));
            nn_softmax_masked_backward(u->dsc + lo, u->dw + lo, u->w + lo, &n, 1, n);
        }
    }
    memset(u->da2, 0, R * u->h2 * sizeof(float));
    nn_linear_backward(u->da2, u->gw3, u->gb3, u->dsc, u->a2, u->w3, R, u->h2, 1);
    memset(u->dp2, 0, R * u->h2 * sizeof(float));
    nn_sigmoid_backward(u->dp2, u->da2, u->a2, R * u->h2);
    memset(u->da1, 0, R * u->h1 * sizeof(float));
    nn_linear_backward(u->da1, u->gw2, u->gb2, u->dp2, u->a1, u->w2, R, u->h1, u->h2);
    memset(u->dp1, 0, R * u->h1 * sizeof(float));
    nn_sigmoid_backward(u->dp1, u->da1, u->a1, R * u->h1);
    /* fc1, folded: dpre (R, h1) in dp1 */
    size_t H1 = u->h1;
    memset(u->dx, 0, R * 2 * E * sizeof(float));
    memset(u->gw2e, 0, H1 * 2 * E * sizeof(float));
    nn_linear_backward(u->dx, u->gw1 ? u->gw2e : NULL, u->gb1, u->dp1, u->x, u->w2e, R, 2 * E, H1);
    float *srow = u->q; /* (B, h1): each sample's sum of dpre (q is not needed after the forward) */
    for (size_t i = 0; i < b; i++) {
        float *si = srow + i * H1;
        memset(si, 0, H1 * sizeof(float));
        for (size_t r = off[i]; r < off[i + 1]; r++) {
            const float *dp = u->dp1 + r * H1;
            for (size_t o = 0; o < H1; o++) si[o] += dp[o];
        }
    }
    nn_linear_backward(dea, NULL, NULL, srow, u->ea, u->wa, b, E, H1); /* d e_a += sum dpre (W2 - W3) */
    if (u->gw1) {
        memset(u->g2, 0, H1 * E * sizeof(float));
        nn_linear_backward(NULL, u->g2, NULL, srow, u->ea, u->wa, b, E, H1); /* G2 = sum dpre e_a^T */
        for (size_t o = 0; o < H1; o++) {
            float *g = u->gw1 + o * 4 * E;
            const float *g14 = u->gw2e + o * 2 * E, *g2 = u->g2 + o * E;
            for (size_t d = 0; d < E; d++) {
                g[d] += g14[d];
                g[E + d] += g2[d];
                g[2 * E + d] += g14[d] - g2[d];
                g[3 * E + d] += g14[E + d];
            }
        }
    }
    /* x = [e_j, e_j * e_a] */
    for (size_t i = 0; i < b; i++) {
        const float *a = u->ea + i * E;
        float *da = dea + i * E;
        for (size_t r = off[i]; r < off[i + 1]; r++) {
            const float *dx = u->dx + r * 2 * E, *ej = u->es + r * E;
            float *dej = des + r * E;
            for (size_t d = 0; d < E; d++) {
                dej[d] += dx[d] + dx[E + d] * a[d];
                da[d] += dx[E + d] * ej[d];
            }
        }
    }
}

/* From fc1's pre-activations in u->a1 (R rows, sample i's rows
 * off[i] .. off[i+1]) to v. */
static void unit_tail(din_unit *u, float *v, const float *es, const uint32_t *off, size_t b, size_t R)
{
    size_t E = u->e;
    nn_sigmoid_forward(u->a1, u->a1, R * u->h1);
    nn_linear_forward(u->a2, u->a1, u->w2, u->b2, R, u->h1, u->h2);
    nn_sigmoid_forward(u->a2, u->a2, R * u->h2);
    nn_linear_forward(u->sc, u->a2, u->w3, u->b3, R, u->h2, 1);
    for (size_t i = 0; i < b; i++) {
        size_t lo = off[i], hi = off[i + 1];
        if (!u->softmax) {
            memcpy(u->w + lo, u->sc + lo, (hi - lo) * sizeof(float));
        } else if (hi > lo) {
            uint32_t n = (uint32_t)(hi - lo);
            nn_softmax_masked_forward(u->w + lo, u->sc + lo, &n, 1, n);
        }
        float *vi = v + i * E;
        memset(vi, 0, E * sizeof(float));
        for (size_t r = lo; r < hi; r++) {
            const float *ej = es + r * E;
            for (size_t d = 0; d < E; d++) vi[d] += u->w[r] * ej[d];
        }
    }
}

/* Rows of (candidate, behavior) pairs per tile of the shared path: its fc1
 * and fc2 activations (rows x (E + h1 + h2) floats, 156 KB at the default
 * widths) stay in a core's L2 cache from one layer to the next. */
#define SHARED_TILE_ROWS 256

/* The history rows' groups by their category block (columns split .. E):
 * grp[j], a representative row of each in rep; returns how many, or 0 when
 * there are more than DIN_UNIT_GROUPS (or no split). */
static size_t category_groups(din_unit *u, const float *es, size_t s)
{
    size_t E = u->e, c0 = u->split, g = 0;
    if (!c0 || c0 >= E) return 0;
    for (size_t j = 0; j < s; j++) {
        size_t k = 0;
        while (k < g && memcmp(es + (size_t)u->rep[k] * E + c0, es + j * E + c0, (E - c0) * sizeof(float))) k++;
        if (k == g) {
            if (g == DIN_UNIT_GROUPS) return 0;
            u->rep[g++] = (uint32_t)j;
        }
        u->grp[j] = (uint32_t)k;
    }
    return g;
}

/* The pairs' scores into u->sc (B, S) through GEMM tiles: fc1's pair term (z, zw columns, weight wz)
 * onto p_j + the row of qrow, sigmoid, fc2, sigmoid, fc3. */
static void pairs_tiles(din_unit *u, const float *ea, const float *es, const float *qrow, const float *wz, size_t zw,
                        size_t G, size_t s, size_t b)
{
    size_t E = u->e, H1 = u->h1, H2 = u->h2;
    size_t per_tile = s ? (SHARED_TILE_ROWS + s - 1) / s : b;
    for (size_t i0 = 0; i0 < b; i0 += per_tile) {
        size_t nb = b - i0 < per_tile ? b - i0 : per_tile, R = nb * s;
        float *z = u->x, *a1 = u->a1, *a2 = u->a2, *sc = u->sc + i0 * s; /* z (R, zw): e_j * e_a (item columns) */
        for (size_t i = 0; i < nb; i++) {
            const float *eai = ea + (i0 + i) * E;
            for (size_t j = 0; j < s; j++) {
                float *pre = a1 + (i * s + j) * H1, *zr = z + (i * s + j) * zw;
                const float *pj = u->p + j * H1, *ej = es + j * E;
                const float *qi = G ? qrow + ((i0 + i) * G + u->grp[j]) * H1 : qrow + (i0 + i) * H1;
                for (size_t o = 0; o < H1; o++) pre[o] = pj[o] + qi[o];
                for (size_t d = 0; d < zw; d++) zr[d] = ej[d] * eai[d];
            }
        }
        nn_linear_forward_acc(a1, z, wz, R, zw, H1);
        nn_sigmoid_forward(a1, a1, R * H1);
        nn_linear_forward(a2, a1, u->w2, u->b2, R, H1, H2);
        nn_sigmoid_forward(a2, a2, R * H2);
        nn_small_nt(sc, 1, a2, H2, u->w3, H2, R, 1, H2); /* fc3: one output, no GEMM call */
        for (size_t r = 0; r < R; r++) sc[r] += u->b3[0];
    }
}

void din_unit_forward_shared(din_unit *u, float *v, const float *ea, const float *es, size_t s, const uint32_t *map,
                             size_t n, size_t b)
{
    size_t E = u->e, H1 = u->h1, H2 = u->h2;
    u->r = 0; /* no backward after this path */
    fold_fc1(u);
    nn_linear_forward(u->p, es, u->wj, NULL, s, E, H1); /* once per behavior */
    nn_linear_forward(u->q, ea, u->wa, u->b1, b, E, H1); /* once per candidate */
    /* the category term once per (group, candidate): qg = q + W4c (e_g,c * e_a,c); then per pair
     * only the item columns (zw of them) remain */
    size_t G = category_groups(u, es, s), zw = G ? u->split : E;
    const float *wz = G ? u->wdi : u->wd, *qrow = G ? u->qg : u->q;
    if (G) {
        size_t DI = u->split, DC = E - DI;
        for (size_t o = 0; o < H1; o++) {
            memcpy(u->wdi + o * DI, u->wd + o * E, DI * sizeof(float));
            memcpy(u->wdc + o * DC, u->wd + o * E + DI, DC * sizeof(float));
        }
        for (size_t i = 0; i < b; i++)
            for (size_t g = 0; g < G; g++) {
                const float *ec = es + (size_t)u->rep[g] * E + DI, *ac = ea + i * E + DI;
                float *z = u->zc + (i * G + g) * DC;
                for (size_t d = 0; d < DC; d++) z[d] = ec[d] * ac[d];
                memcpy(u->qg + (i * G + g) * H1, u->q + i * H1, H1 * sizeof(float));
            }
        nn_linear_forward_acc(u->qg, u->zc, u->wdc, b * G, DC, H1);
    }
    if (din_pairs_fits(H1, H2, zw)) { /* the pairs' MLP fused, in registers; the GEMM tiles are its reference */
        din_pairs_prepare(u->wzt, u->w2t, wz, zw, u->w2, zw, H1, H2);
        din_pairs_score(u->sc, u->p, qrow, G ? u->grp : NULL, G, es, ea, E, zw, u->wzt, u->w2t, u->b2, u->w3,
                        u->b3[0], b, s, u->x);
    } else {
        pairs_tiles(u, ea, es, qrow, wz, zw, G, s, b);
    }
    if (!map) n = s;
    for (size_t i = 0; i < b; i++) { /* w_j for every row of the history in order, then v = sum_j w_j e_j: */
        const float *sc = u->sc + i * s; /* the general path's operations, on the same scores */
        float *w = u->w + i * n, *vi = v + i * E;
        for (size_t j = 0; j < n; j++) w[j] = sc[map ? map[j] : j];
        if (u->softmax && n) {
            uint32_t len = (uint32_t)n;
            nn_softmax_masked_forward(w, w, &len, 1, n);
        }
        memset(vi, 0, E * sizeof(float));
        for (size_t j = 0; j < n; j++) {
            const float *ej = es + (size_t)(map ? map[j] : j) * E;
            for (size_t d = 0; d < E; d++) vi[d] += w[j] * ej[d];
        }
    }
}
