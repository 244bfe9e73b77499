/* Classification metrics over batches of logits: top-1/top-5 counts, the
 * cross-entropy sum (double, log-sum-exp) and the confusion matrix. */
#include "rt_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

rt_metrics *rt_metrics_create(int classes) {
  if (classes < 1) return NULL;
  rt_metrics *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->classes = classes;
  m->confusion = calloc((size_t)classes * (size_t)classes, sizeof *m->confusion);
  if (!m->confusion) {
    free(m);
    return NULL;
  }
  return m;
}

void rt_metrics_destroy(rt_metrics *m) {
  if (!m) return;
  rt_metrics_name_classes(m, NULL);
  free(m->confusion);
  free(m);
}

/* Copies the classes' names into 'm' (NULL: drops them). */
int rt_metrics_name_classes(rt_metrics *m, char *const *names) {
  for (int k = 0; m->names && k < m->classes; k++) free(m->names[k]);
  free(m->names);
  m->names = NULL;
  if (!names) return 0;
  m->names = calloc((size_t)m->classes, sizeof *m->names);
  int ok = m->names != NULL;
  for (int k = 0; ok && k < m->classes; k++) ok = (m->names[k] = strdup(names[k] ? names[k] : "")) != NULL;
  if (!ok) rt_metrics_name_classes(m, NULL);
  return ok ? 0 : -1;
}

void rt_metrics_reset(rt_metrics *m) {
  m->count = m->top1 = m->top5 = 0;
  m->loss_sum = 0;
  memset(m->confusion, 0, (size_t)m->classes * (size_t)m->classes * sizeof *m->confusion);
}

/* Rank of class 'label' in row x[0..c): how many classes come before it
 * when sorted by decreasing logit, ties broken by lower index first. */
static int label_rank(const float *x, int c, int label) {
  int rank = 0;
  for (int j = 0; j < c; j++)
    if (x[j] > x[label] || (x[j] == x[label] && j < label)) rank++;
  return rank;
}

/* Cross-entropy -log softmax(x)[label] in double. */
static double cross_entropy(const float *x, int c, int label) {
  double mx = x[0];
  for (int j = 1; j < c; j++)
    if (x[j] > mx) mx = x[j];
  double sum = 0;
  for (int j = 0; j < c; j++) sum += exp((double)x[j] - mx);
  return mx + log(sum) - (double)x[label];
}

void rt_metrics_add(rt_metrics *m, const float *logits, const int64_t *labels, int64_t n) {
  int c = m->classes;
  for (int64_t i = 0; i < n; i++) {
    const float *x = logits + i * c;
    int64_t label = labels[i];
    if (label < 0 || label >= c) continue;
    int pred = 0;
    for (int j = 1; j < c; j++)
      if (x[j] > x[pred]) pred = j;
    m->count++;
    if (pred == label) m->top1++;
    if (label_rank(x, c, (int)label) < 5) m->top5++;
    m->loss_sum += cross_entropy(x, c, (int)label);
    m->confusion[label * c + pred]++;
  }
}

double rt_metrics_top1(const rt_metrics *m) { return m->count ? (double)m->top1 / (double)m->count : 0.0; }

double rt_metrics_top5(const rt_metrics *m) { return m->count ? (double)m->top5 / (double)m->count : 0.0; }

double rt_metrics_loss(const rt_metrics *m) { return m->count ? m->loss_sum / (double)m->count : 0.0; }

/* Decimal width of the largest count in the confusion matrix (at least 1). */
static int count_width(const rt_metrics *m) {
  int64_t mx = 0;
  for (int64_t i = 0; i < (int64_t)m->classes * m->classes; i++)
    if (m->confusion[i] > mx) mx = m->confusion[i];
  int w = 1;
  for (; mx >= 10; mx /= 10) w++;
  return w;
}

void rt_metrics_print(const rt_metrics *m, FILE *f, int confusion) {
  int c = m->classes;
  fprintf(f, "class  correct/total  accuracy\n");
  for (int k = 0; k < c; k++) {
    int64_t total = 0;
    for (int j = 0; j < c; j++) total += m->confusion[k * c + j];
    int64_t right = m->confusion[k * c + k];
    if (total)
      fprintf(f, "%5d  %7lld/%-5lld  %7.2f%%", k, (long long)right, (long long)total,
              100.0 * (double)right / (double)total);
    else
      fprintf(f, "%5d  %7lld/%-5lld  %8s", k, 0LL, 0LL, "-");
    fprintf(f, m->names ? "  %s\n" : "\n", m->names ? m->names[k] : "");
  }
  if (!confusion) return;
  int w = count_width(m);
  if (w < 3) w = 3;
  fprintf(f, "confusion matrix (rows: true class, columns: predicted)\n%5s", "");
  for (int j = 0; j < c; j++) fprintf(f, " %*d", w, j);
  fputc('\n', f);
  for (int k = 0; k < c; k++) {
    fprintf(f, "%5d", k);
    for (int j = 0; j < c; j++) fprintf(f, " %*lld", w, (long long)m->confusion[k * c + j]);
    fputc('\n', f);
  }
}
