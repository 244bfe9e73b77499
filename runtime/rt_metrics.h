/* Classification metrics accumulated over batches of logits: top-1 and
 * top-5 accuracy, mean cross-entropy (double, log-sum-exp), per-class
 * accuracy and the confusion matrix. */
#ifndef ATTNC_RT_METRICS_H
#define ATTNC_RT_METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
  int classes;
  int64_t count, top1, top5;
  double loss_sum;           /* sum over samples of cross-entropy computed here from the logits (double) */
  int64_t *confusion;        /* classes*classes, [true*classes + predicted] */
  char **names;              /* the classes' names for the table, or NULL */
} rt_metrics;

/* Creates empty metrics for 'classes' (>= 1) classes; NULL if out of memory
 * or classes < 1. The caller destroys it. */
rt_metrics *rt_metrics_create(int classes);
/* Frees 'm' (NULL is fine). */
void rt_metrics_destroy(rt_metrics *m);
/* Gives the classes of 'm' the names 'names' ('classes' strings, copied;
 * NULL: numbers only) for rt_metrics_print. Returns 0, or -1 if out of memory. */
int rt_metrics_name_classes(rt_metrics *m, char *const *names);
/* Forgets every sample added so far. */
void rt_metrics_reset(rt_metrics *m);
/* Adds n samples: logits float32 [n, classes] row-major, labels int64 [n].
 * The prediction is the argmax (ties: lowest index, as torch.argmax); top-5
 * counts a label among the 5 largest logits (every sample when classes <= 5).
 * Samples whose label is outside [0, classes) are ignored. */
void rt_metrics_add(rt_metrics *m, const float *logits, const int64_t *labels, int64_t n);
/* Top-1 accuracy in [0,1] (0 when empty). */
double rt_metrics_top1(const rt_metrics *m);
/* Top-5 accuracy in [0,1] (0 when empty). */
double rt_metrics_top5(const rt_metrics *m);
/* Mean cross-entropy (0 when empty). */
double rt_metrics_loss(const rt_metrics *m);
/* Writes the per-class accuracy table (with the classes' names, if given)
 * and (if 'confusion') the confusion matrix (rows: true class, columns:
 * predicted) to 'f' as text. */
void rt_metrics_print(const rt_metrics *m, FILE *f, int confusion);

#endif
