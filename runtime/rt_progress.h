/* Training progress on the console (a bar redrawn in place on a terminal,
 * plain lines otherwise) and the per-epoch metrics log (CSV or JSONL). */
#ifndef ATTNC_RT_PROGRESS_H
#define ATTNC_RT_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include "ir_diag.h"

typedef struct rt_progress rt_progress;

/* A progress display on 'f' (not owned): a one-line bar redrawn in place
 * when f is a terminal (isatty), plain lines (one every ~10% of an epoch and
 * at its end) otherwise. 'epochs' and 'batches' (per epoch) are the totals
 * shown. NULL if out of memory; the caller destroys it. */
rt_progress *rt_progress_create(FILE *f, int64_t epochs, int64_t batches);
/* Forces the terminal bar (tty = 1) or plain lines (tty = 0) whatever 'f'
 * is; for tests and for callers that know better than isatty. */
void rt_progress_set_tty(rt_progress *p, int tty);
/* Frees 'p' (NULL is fine); does not close its FILE. */
void rt_progress_destroy(rt_progress *p);
/* Reports batch 'batch' (1-based) of epoch 'epoch' (1-based) done: running
 * loss, accuracy (in [0,1], shown as %), images/s. The ETA comes from the
 * time elapsed since the epoch's first update. */
void rt_progress_update(rt_progress *p, int64_t epoch, int64_t batch, double loss, double acc, double images_per_s);
/* Ends the epoch's line (on a terminal: a newline after the bar; otherwise
 * a final plain line if the last update was not printed). */
void rt_progress_end_epoch(rt_progress *p);
/* Appends one record to the metrics log 'path' (".csv": header written when
 * the file is new or empty, and an existing header must list the same keys
 * in the same order; else JSONL, one JSON object per line), fields in the
 * given order (values as numbers: integers exactly, others with %.17g;
 * NaN/inf as null in JSONL). Returns ATTNC_OK, ATTNC_EINVAL (header
 * mismatch, bad key) or ATTNC_EIO with a message naming the path. */
attnc_status rt_log_append(const char *path, int n, const char *const *keys, const double *values, ir_diag *d);

#endif
