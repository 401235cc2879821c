/*
 * svg_plot.h: small, dependency-free charts written as SVG files (tools
 * only; `lsim replay --plot`). Every chart has a title, labelled axes with
 * units in the labels, tick values and a legend; a browser opens them.
 */
#ifndef LSIM_SVG_PLOT_H
#define LSIM_SVG_PLOT_H

#include <stddef.h>

typedef struct svg_series {
    const char *name;
    const double *x, *y;
    size_t n;
} svg_series;

enum { SVG_LINES = 0, SVG_POINTS = 1 };

/* x-y chart of ns series (lines or points); xlog / ylog: log10 axes
 * (values <= 0 are left out). 0, or -1 with err set (the file could not be
 * written, or no finite point). */
int svg_xy_chart(const char *path, const char *title, const char *xlabel, const char *ylabel, int xlog, int ylog,
                 const svg_series *s, size_t ns, int style, char *err, size_t errlen);

/* Grouped bars: ng groups (e.g. models) of nb bars (e.g. AUC, GAUC),
 * values[g * nb + b]; the y axis spans [ymin, ymax] (ymin may be above 0 to
 * show small differences: the title says so). Each bar is labelled with its
 * value. */
int svg_bar_chart(const char *path, const char *title, const char *ylabel, const char *const *groups, size_t ng,
                  const char *const *bars, size_t nb, const double *values, double ymin, double ymax, char *err,
                  size_t errlen);

#endif
