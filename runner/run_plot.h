/* Internal: gnuplot for the run folder's image (run_plot.c) and a sweep's (sweep_plot.c). */
#ifndef EVOC_RUN_PLOT_H
#define EVOC_RUN_PLOT_H
#include "evoc/status.h"

/* Runs gnuplot on script (removed afterwards); when it drew tmp_png, renames it to png (the old image stays until
   the new one is complete). IO naming png when gnuplot fails. */
evo_status evo_run_gnuplot(const char *script, const char *tmp_png, const char *png);

#endif
