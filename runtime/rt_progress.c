/* Training progress: a bar redrawn with '\r' on a terminal or plain lines
 * every ~10% of an epoch otherwise, with an ETA from the epoch's elapsed
 * time; and the per-epoch metrics log appended as CSV or JSONL. */
#include "rt_progress.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define REDRAW_S 0.1

struct rt_progress {
  FILE *f;
  int tty;
  int64_t epochs, batches;
  int64_t epoch;        /* epoch being shown, 0 between epochs */
  int64_t first_batch;  /* first batch reported in this epoch (> 1 when resumed) */
  double t0, last_draw; /* epoch start and last redraw (monotonic seconds) */
  int64_t decile;       /* plain mode: last tenth of the epoch printed */
  int drawn, pending;   /* something shown this epoch; last update not printed yet */
  int64_t batch;        /* last update's values */
  double loss, acc, ips;
};

/* Monotonic time in seconds. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

rt_progress *rt_progress_create(FILE *f, int64_t epochs, int64_t batches) {
  rt_progress *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->f = f;
  p->tty = isatty(fileno(f));
  p->epochs = epochs;
  p->batches = batches > 0 ? batches : 1;
  p->t0 = now_s();
  return p;
}

void rt_progress_set_tty(rt_progress *p, int tty) { p->tty = tty != 0; }

void rt_progress_destroy(rt_progress *p) { free(p); }

/* Formats 's' seconds as M:SS or H:MM:SS into buf ("?" if unknown). */
static void format_eta(double s, char *buf, size_t size) {
  if (!isfinite(s) || s < 0 || s > 1e7) {
    snprintf(buf, size, "?");
    return;
  }
  long t = lround(s);
  if (t >= 3600)
    snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

/* Writes the current state: a redrawn bar or one plain line. */
static void draw(rt_progress *p, double now) {
  int64_t done = p->batch - p->first_batch + 1;
  double eta = done > 0 ? (now - p->t0) / (double)done * (double)(p->batches - p->batch) : NAN;
  char etatext[32];
  format_eta(eta, etatext, sizeof etatext);
  if (p->tty) {
    char bar[BAR_WIDTH + 1];
    int64_t fill = p->batch * BAR_WIDTH / p->batches;
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[BAR_WIDTH] = '\0';
    fprintf(p->f, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld loss %.4f acc %.2f%% %.0f img/s eta %s",
            (long long)p->epoch, (long long)p->epochs, bar, (long long)p->batch, (long long)p->batches, p->loss,
            100.0 * p->acc, p->ips, etatext);
  } else {
    fprintf(p->f, "epoch %lld/%lld batch %lld/%lld loss %.4f acc %.2f%% %.0f img/s eta %s\n", (long long)p->epoch,
            (long long)p->epochs, (long long)p->batch, (long long)p->batches, p->loss, 100.0 * p->acc, p->ips,
            etatext);
  }
  fflush(p->f);
  p->drawn = 1;
  p->pending = 0;
  p->last_draw = now;
}

void rt_progress_update(rt_progress *p, int64_t epoch, int64_t batch, double loss, double acc, double images_per_s) {
  double now = now_s();
  if (batch < 1) batch = 1;
  if (batch > p->batches) batch = p->batches;
  if (epoch != p->epoch) {
    if (p->epoch != 0) rt_progress_end_epoch(p);
    p->epoch = epoch;
    p->first_batch = batch;
    p->decile = (batch - 1) * 10 / p->batches;
    p->drawn = 0;
  }
  p->batch = batch;
  p->loss = loss;
  p->acc = acc;
  p->ips = images_per_s;
  p->pending = 1;
  if (p->tty) {
    if (!p->drawn || batch == p->batches || now - p->last_draw >= REDRAW_S) draw(p, now);
  } else {
    int64_t decile = batch * 10 / p->batches;
    if (decile > p->decile) {
      p->decile = decile;
      draw(p, now);
    }
  }
}

void rt_progress_end_epoch(rt_progress *p) {
  if (p->epoch != 0) {
    if (p->pending) draw(p, now_s());
    if (p->tty && p->drawn) {
      fputc('\n', p->f);
      fflush(p->f);
    }
  }
  p->epoch = 0;
  p->drawn = p->pending = 0;
  p->t0 = now_s();
}

/* Formats 'v' for the log: integers exactly, others with %.17g; NaN and
 * infinities as "null" in JSON, "nan"/"inf"/"-inf" in CSV. */
static void format_number(double v, int json, char *buf, size_t size) {
  if (!isfinite(v))
    snprintf(buf, size, "%s", json ? "null" : isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
  else if (v == trunc(v) && fabs(v) < 9007199254740992.0)
    snprintf(buf, size, "%.0f", v == 0 ? 0.0 : v);
  else
    snprintf(buf, size, "%.17g", v);
}

/* Returns 1 if 'key' can be a CSV column and a JSON key without quoting. */
static int key_ok(const char *key) {
  if (!key || !*key) return 0;
  for (const char *s = key; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == ',' || *s == '"' || *s == '\\' || *s == 0x7f) return 0;
  return 1;
}

/* Appends text 's' to the growing string *buf (length *len, capacity *cap). */
static int append(char **buf, size_t *len, size_t *cap, const char *s) {
  size_t n = strlen(s);
  if (*len + n + 1 > *cap) {
    size_t c = (*cap ? *cap * 2 : 256) + n;
    char *nb = realloc(*buf, c);
    if (!nb) return -1;
    *buf = nb;
    *cap = c;
  }
  memcpy(*buf + *len, s, n + 1);
  *len += n;
  return 0;
}

/* Builds the CSV header line (json = 0) or the record line into *out. */
static int build_line(int json, int header, int n, const char *const *keys, const double *values, char **out) {
  char *buf = NULL;
  size_t len = 0, cap = 0;
  char num[64];
  int bad = json && append(&buf, &len, &cap, "{");
  for (int i = 0; i < n && !bad; i++) {
    if (i > 0) bad |= append(&buf, &len, &cap, ",");
    if (json) bad |= append(&buf, &len, &cap, "\"") || append(&buf, &len, &cap, keys[i]) ||
                     append(&buf, &len, &cap, "\":");
    if (json || !header) {
      format_number(values[i], json, num, sizeof num);
      bad |= append(&buf, &len, &cap, num);
    } else {
      bad |= append(&buf, &len, &cap, keys[i]);
    }
  }
  if (json && !bad) bad = append(&buf, &len, &cap, "}");
  if (!bad) bad = append(&buf, &len, &cap, "\n");
  if (bad) {
    free(buf);
    return -1;
  }
  *out = buf;
  return 0;
}

/* For a CSV log: sets *fresh if 'path' is missing or empty, else checks that
 * its first line equals 'header'. */
static attnc_status check_csv_header(const char *path, const char *header, int *fresh, ir_diag *d) {
  *fresh = 1;
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return ATTNC_OK;
    ir_diag_error(d, NULL, 0, "%s: cannot read the metrics log: %s", path, strerror(errno));
    return ATTNC_EIO;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t got = getline(&line, &cap, f);
  fclose(f);
  attnc_status st = ATTNC_OK;
  if (got > 0) {
    *fresh = 0;
    size_t n = (size_t)got;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    size_t hn = strlen(header) - 1; /* without its newline */
    if (n != hn || strncmp(line, header, hn) != 0) {
      ir_diag_error(d, NULL, 0, "%s: existing CSV header '%s' does not match the columns '%.*s'", path, line,
                    (int)hn, header);
      st = ATTNC_EINVAL;
    }
  }
  free(line);
  return st;
}

attnc_status rt_log_append(const char *path, int n, const char *const *keys, const double *values, ir_diag *d) {
  if (n < 1) {
    ir_diag_error(d, NULL, 0, "%s: a metrics record needs at least one field", path);
    return ATTNC_EINVAL;
  }
  for (int i = 0; i < n; i++)
    if (!key_ok(keys[i])) {
      ir_diag_error(d, NULL, 0, "%s: metrics key %d ('%s') is empty or has a comma, quote or control character",
                    path, i, keys[i] ? keys[i] : "");
      return ATTNC_EINVAL;
    }
  size_t plen = strlen(path);
  int csv = plen >= 4 && strcasecmp(path + plen - 4, ".csv") == 0;
  char *header = NULL, *row = NULL;
  if ((csv && build_line(0, 1, n, keys, values, &header)) || build_line(!csv, 0, n, keys, values, &row)) {
    free(header);
    ir_diag_error(d, NULL, 0, "%s: out of memory", path);
    return ATTNC_ENOMEM;
  }
  int fresh = 0;
  attnc_status st = csv ? check_csv_header(path, header, &fresh, d) : ATTNC_OK;
  if (st == ATTNC_OK) {
    FILE *f = fopen(path, "a");
    if (!f) {
      ir_diag_error(d, NULL, 0, "%s: cannot open the metrics log for appending: %s", path, strerror(errno));
      st = ATTNC_EIO;
    } else {
      int bad = (fresh && fputs(header, f) < 0) || fputs(row, f) < 0;
      bad |= fclose(f) != 0;
      if (bad) {
        ir_diag_error(d, NULL, 0, "%s: cannot write the metrics log: %s", path, strerror(errno));
        st = ATTNC_EIO;
      }
    }
  }
  free(header);
  free(row);
  return st;
}
