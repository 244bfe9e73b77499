/* Diagnostics context: a growing list of formatted error messages. */
#include "ir_diag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIAG_MAX 1000 /* more than this is noise; count them, keep these */

struct ir_diag {
  int count, kept, cap;
  char **msgs;
  char *text;
};

/* Creates an empty diagnostic context. */
ir_diag *ir_diag_create(void) { return calloc(1, sizeof(ir_diag)); }

/* Frees 'd' and its messages. */
void ir_diag_destroy(ir_diag *d) {
  if (!d) return;
  ir_diag_clear(d);
  free(d->msgs);
  free(d);
}

/* Records an error with an optional file:line prefix. */
void ir_diag_verror(ir_diag *d, const char *file, int line, const char *fmt, va_list ap) {
  if (!d) return;
  d->count++;
  if (d->kept >= DIAG_MAX) return;
  char body[2048];
  vsnprintf(body, sizeof body, fmt, ap);
  char full[2300];
  if (file && line > 0)
    snprintf(full, sizeof full, "%s:%d: %s", file, line, body);
  else if (file)
    snprintf(full, sizeof full, "%s: %s", file, body);
  else
    snprintf(full, sizeof full, "%s", body);
  if (d->kept == d->cap) {
    int cap = d->cap ? d->cap * 2 : 8;
    char **m = realloc(d->msgs, (size_t)cap * sizeof *m);
    if (!m) return;
    d->msgs = m;
    d->cap = cap;
  }
  d->msgs[d->kept] = strdup(full);
  if (d->msgs[d->kept]) d->kept++;
}

/* Records an error with an optional file:line prefix. */
void ir_diag_error(ir_diag *d, const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_diag_verror(d, file, line, fmt, ap);
  va_end(ap);
}

/* Returns the number of errors recorded. */
int ir_diag_count(const ir_diag *d) { return d ? d->count : 0; }

/* Returns message i, or NULL. */
const char *ir_diag_message(const ir_diag *d, int i) {
  if (!d || i < 0 || i >= d->kept) return NULL;
  return d->msgs[i];
}

/* Returns all messages joined by newlines. */
const char *ir_diag_text(ir_diag *d) {
  if (!d) return "";
  size_t len = 1;
  for (int i = 0; i < d->kept; i++) len += strlen(d->msgs[i]) + 1;
  char more[64] = "";
  if (d->count > d->kept) snprintf(more, sizeof more, "(%d more errors)\n", d->count - d->kept);
  len += strlen(more);
  free(d->text);
  d->text = malloc(len);
  if (!d->text) return "";
  char *p = d->text;
  for (int i = 0; i < d->kept; i++) {
    size_t l = strlen(d->msgs[i]);
    memcpy(p, d->msgs[i], l);
    p[l] = '\n';
    p += l + 1;
  }
  strcpy(p, more);
  return d->text;
}

/* Forgets all errors. */
void ir_diag_clear(ir_diag *d) {
  if (!d) return;
  for (int i = 0; i < d->kept; i++) free(d->msgs[i]);
  d->kept = d->count = 0;
  free(d->text);
  d->text = NULL;
}
