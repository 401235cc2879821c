/*
 * svg_plot.c: see svg_plot.h. Layout: a 760 x 480 canvas, the plot area
 * inset by margins for the title, the tick labels and the legend.
 */
#include "tools/svg_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define W 760.0
#define H 480.0
#define ML 80.0  /* left margin: y tick labels and the y label */
#define MR 170.0 /* right margin: the legend */
#define MT 50.0  /* top: the title */
#define MB 60.0  /* bottom: x tick labels and the x label */

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NPAL (sizeof palette / sizeof palette[0])

/* Text escaped for XML. */
static void put_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static FILE *open_svg(const char *path, const char *title, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"28\" font-size=\"16\" text-anchor=\"middle\">", (ML + W - MR) / 2);
    put_text(f, title);
    fputs("</text>\n", f);
    return f;
}

static int close_svg(FILE *f, const char *path, char *err, size_t errlen)
{
    fputs("</svg>\n", f);
    if (ferror(f) | (fclose(f) != 0)) {
        snprintf(err, errlen, "%s: write failed", path);
        return -1;
    }
    return 0;
}

/* Axis labels, rotated for y. */
static void axis_labels(FILE *f, const char *xlabel, const char *ylabel)
{
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", (ML + W - MR) / 2, H - 15);
    put_text(f, xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(20,%.0f) rotate(-90)\" text-anchor=\"middle\">", (MT + H - MB) / 2);
    put_text(f, ylabel);
    fputs("</text>\n", f);
}

/* "Nice" tick step for a span: 1, 2 or 5 times a power of ten, about 6 ticks. */
static double nice_step(double span)
{
    double raw = span / 6, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

typedef struct axis {
    double lo, hi; /* in plotted units (log10 if log) */
    int log;
} axis;

static double tr(const axis *a, double v)
{
    return a->log ? log10(v) : v;
}

/* Ticks along one axis; horizontal: x axis. Grid lines across the plot. */
static void ticks(FILE *f, const axis *a, int horizontal)
{
    double x0 = ML, x1 = W - MR, y0 = H - MB, y1 = MT;
    if (a->log) {
        for (double e = floor(a->lo); e <= ceil(a->hi); e++)
            for (int m = 1; m < 10; m++) {
                double v = e + log10(m);
                if (v < a->lo - 1e-9 || v > a->hi + 1e-9) continue;
                double t = (v - a->lo) / (a->hi - a->lo);
                double px = horizontal ? x0 + t * (x1 - x0) : y0 - t * (y0 - y1);
                const char *stroke = m == 1 ? "#bbb" : "#eee";
                if (horizontal) fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\"/>\n",
                                        px, y0, px, y1, stroke);
                else fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x0, px, x1,
                             px, stroke);
                if (m != 1 && m != 2 && m != 5) continue;
                double val = pow(10, v);
                if (horizontal) fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%g</text>\n", px,
                                        y0 + 16, val);
                else fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", x0 - 6, px + 4, val);
            }
        return;
    }
    double step = nice_step(a->hi - a->lo);
    for (double v = ceil(a->lo / step) * step; v <= a->hi + step * 1e-9; v += step) {
        double t = (v - a->lo) / (a->hi - a->lo);
        double px = horizontal ? x0 + t * (x1 - x0) : y0 - t * (y0 - y1);
        double shown = fabs(v) < step * 1e-9 ? 0 : v;
        if (horizontal) {
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ddd\"/>\n", px, y0, px, y1);
            fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%g</text>\n", px, y0 + 16, shown);
        } else {
            fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0, px, x1, px);
            fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", x0 - 6, px + 4, shown);
        }
    }
}

static void frame(FILE *f)
{
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n", ML, MT,
            W - MR - ML, H - MB - MT);
}

static void legend(FILE *f, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double y = MT + 10 + 20.0 * (double)i;
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"10\" fill=\"%s\"/>\n", W - MR + 12, y,
                palette[i % NPAL]);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">", W - MR + 32, y + 10);
        put_text(f, names[i]);
        fputs("</text>\n", f);
    }
}

int svg_xy_chart(const char *path, const char *title, const char *xlabel, const char *ylabel, int xlog, int ylog,
                 const svg_series *s, size_t ns, int style, char *err, size_t errlen)
{
    axis ax = {INFINITY, -INFINITY, xlog}, ay = {INFINITY, -INFINITY, ylog};
    for (size_t k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y) || (xlog && x <= 0) || (ylog && y <= 0)) continue;
            x = tr(&ax, x);
            y = tr(&ay, y);
            ax.lo = fmin(ax.lo, x), ax.hi = fmax(ax.hi, x);
            ay.lo = fmin(ay.lo, y), ay.hi = fmax(ay.hi, y);
        }
    if (!(ax.lo <= ax.hi)) {
        snprintf(err, errlen, "%s: nothing to plot", path);
        return -1;
    }
    axis *both[2] = {&ax, &ay};
    for (int k = 0; k < 2; k++) { /* pad, and give a single value a span */
        axis *a = both[k];
        double span = a->hi - a->lo;
        if (span <= 0) span = a->log ? 1 : fabs(a->lo) > 0 ? fabs(a->lo) : 1;
        if (!a->log && a->lo >= 0 && a->lo - 0.05 * span < 0) a->lo = 0; /* keep a zero baseline */
        else a->lo -= 0.05 * span;
        a->hi += 0.05 * span;
    }
    FILE *f = open_svg(path, title, err, errlen);
    if (!f) return -1;
    ticks(f, &ax, 1);
    ticks(f, &ay, 0);
    frame(f);
    axis_labels(f, xlabel, ylabel);
    for (size_t k = 0; k < ns; k++) {
        const char *col = palette[k % NPAL];
        if (style == SVG_LINES) fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (size_t i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y) || (xlog && x <= 0) || (ylog && y <= 0)) continue;
            double px = ML + (tr(&ax, x) - ax.lo) / (ax.hi - ax.lo) * (W - MR - ML);
            double py = H - MB - (tr(&ay, y) - ay.lo) / (ay.hi - ay.lo) * (H - MB - MT);
            if (style == SVG_LINES) fprintf(f, "%.1f,%.1f ", px, py);
            else fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\" fill-opacity=\"0.5\"/>\n", px, py, col);
        }
        if (style == SVG_LINES) fputs("\"/>\n", f);
    }
    const char *names[64];
    size_t nn = ns < 64 ? ns : 64;
    for (size_t k = 0; k < nn; k++) names[k] = s[k].name;
    legend(f, names, nn);
    return close_svg(f, path, err, errlen);
}

int svg_bar_chart(const char *path, const char *title, const char *ylabel, const char *const *groups, size_t ng,
                  const char *const *bars, size_t nb, const double *values, double ymin, double ymax, char *err,
                  size_t errlen)
{
    if (!ng || !nb || !(ymax > ymin)) {
        snprintf(err, errlen, "%s: nothing to plot", path);
        return -1;
    }
    FILE *f = open_svg(path, title, err, errlen);
    if (!f) return -1;
    axis ay = {ymin, ymax, 0};
    ticks(f, &ay, 0);
    frame(f);
    axis_labels(f, "", ylabel);
    double gw = (W - MR - ML) / (double)ng, bw = gw * 0.8 / (double)nb;
    for (size_t g = 0; g < ng; g++) {
        double gx = ML + gw * (double)g + gw * 0.1;
        for (size_t b = 0; b < nb; b++) {
            double v = values[g * nb + b];
            if (!isfinite(v)) continue;
            double t = (fmin(fmax(v, ymin), ymax) - ymin) / (ymax - ymin);
            double top = H - MB - t * (H - MB - MT), x = gx + bw * (double)b;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x, top, bw * 0.9,
                    H - MB - top, palette[b % NPAL]);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%.4f</text>\n",
                    x + bw * 0.45, top - 4, v);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">", ML + gw * ((double)g + 0.5), H - MB + 16);
        put_text(f, groups[g]);
        fputs("</text>\n", f);
    }
    legend(f, bars, nb);
    return close_svg(f, path, err, errlen);
}
