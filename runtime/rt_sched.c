/* Learning-rate schedules: parsing of the --schedule text and the rate at a
 * given epoch and iteration, with PyTorch's closed forms (StepLR,
 * MultiStepLR, CosineAnnealingLR) and a linear per-iteration warm-up. */
#include "rt_sched.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT 1024
#define MAX_FIELDS 4

/* Parses the whole of [s, end) as a finite number into *v; 0 on success. */
static int parse_number(const char *s, const char *end, double *v) {
  char buf[64];
  size_t len = (size_t)(end - s);
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  if (buf[0] == ' ' || buf[0] == '\t') return -1;
  char *stop;
  errno = 0;
  *v = strtod(buf, &stop);
  if (*stop != '\0' || errno == ERANGE || !isfinite(*v)) return -1;
  return 0;
}

/* Splits 'text' at ':' into at most MAX_FIELDS fields (pointers into 'buf');
 * returns the field count, or -1 if there are more. */
static int split_fields(const char *text, char *buf, size_t size, char **fields) {
  snprintf(buf, size, "%s", text);
  int n = 0;
  char *p = buf;
  for (;;) {
    if (n == MAX_FIELDS) return -1;
    fields[n++] = p;
    char *c = strchr(p, ':');
    if (!c) break;
    *c = '\0';
    p = c + 1;
  }
  return n;
}

/* Parses a comma-separated list of strictly increasing milestones >= 0. */
static attnc_status parse_milestones(const char *text, const char *list, rt_schedule *s, ir_diag *d) {
  s->nmilestones = 0;
  const char *p = list;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *end = comma ? comma : p + strlen(p);
    double v;
    if (parse_number(p, end, &v)) {
      ir_diag_error(d, NULL, 0, "schedule '%s': milestone '%.*s' is not a number", text, (int)(end - p), p);
      return ATTNC_EPARSE;
    }
    if (v < 0) {
      ir_diag_error(d, NULL, 0, "schedule '%s': milestone %g is negative", text, v);
      return ATTNC_EPARSE;
    }
    if (s->nmilestones > 0 && v <= s->milestones[s->nmilestones - 1]) {
      ir_diag_error(d, NULL, 0, "schedule '%s': milestones must increase (%g after %g)", text, v,
                    s->milestones[s->nmilestones - 1]);
      return ATTNC_EPARSE;
    }
    if (s->nmilestones == RT_SCHED_MAX_MILESTONES) {
      ir_diag_error(d, NULL, 0, "schedule '%s': more than %d milestones", text, RT_SCHED_MAX_MILESTONES);
      return ATTNC_EPARSE;
    }
    s->milestones[s->nmilestones++] = v;
    if (!comma) return ATTNC_OK;
    p = comma + 1;
  }
}

/* Parses the factor field F (> 0) of a step-type schedule. */
static attnc_status parse_factor(const char *text, const char *field, rt_schedule *s, ir_diag *d) {
  if (parse_number(field, field + strlen(field), &s->factor)) {
    ir_diag_error(d, NULL, 0, "schedule '%s': factor '%s' is not a number", text, field);
    return ATTNC_EPARSE;
  }
  if (s->factor <= 0) {
    ir_diag_error(d, NULL, 0, "schedule '%s': factor %g must be > 0", text, s->factor);
    return ATTNC_EPARSE;
  }
  return ATTNC_OK;
}

/* Parses "step:S:F", "step:M1,M2,...:F" or "multistep:M1,...:F" (fields f[0..n)). */
static attnc_status parse_step(const char *text, char **f, int n, rt_schedule *s, ir_diag *d) {
  int multi = strcmp(f[0], "multistep") == 0 || (n >= 2 && strchr(f[1], ',') != NULL);
  if (n != 3) {
    ir_diag_error(d, NULL, 0, "schedule '%s': expected %s", text,
                  strcmp(f[0], "multistep") == 0 ? "multistep:M1,M2,...:FACTOR"
                                                 : "step:STEP:FACTOR or step:M1,M2,...:FACTOR");
    return ATTNC_EPARSE;
  }
  attnc_status st;
  if (multi) {
    s->kind = RT_SCHED_MULTISTEP;
    st = parse_milestones(text, f[1], s, d);
  } else {
    s->kind = RT_SCHED_STEP;
    st = ATTNC_OK;
    if (parse_number(f[1], f[1] + strlen(f[1]), &s->step_size)) {
      ir_diag_error(d, NULL, 0, "schedule '%s': step size '%s' is not a number", text, f[1]);
      st = ATTNC_EPARSE;
    } else if (s->step_size <= 0) {
      ir_diag_error(d, NULL, 0, "schedule '%s': step size %g must be > 0", text, s->step_size);
      st = ATTNC_EPARSE;
    }
  }
  return st != ATTNC_OK ? st : parse_factor(text, f[2], s, d);
}

attnc_status rt_schedule_parse(const char *text, double lr, double warmup, rt_schedule *out, ir_diag *d) {
  memset(out, 0, sizeof *out);
  if (!text || !*text) {
    ir_diag_error(d, NULL, 0, "schedule: empty text (expected const, step:..., multistep:... or cosine)");
    return ATTNC_EPARSE;
  }
  if (strlen(text) >= MAX_TEXT) {
    ir_diag_error(d, NULL, 0, "schedule: text longer than %d characters", MAX_TEXT - 1);
    return ATTNC_EPARSE;
  }
  if (!isfinite(lr) || lr <= 0) {
    ir_diag_error(d, NULL, 0, "schedule '%s': learning rate %g must be > 0", text, lr);
    return ATTNC_EINVAL;
  }
  if (!isfinite(warmup) || warmup < 0) {
    ir_diag_error(d, NULL, 0, "schedule '%s': warm-up %g epochs must be >= 0", text, warmup);
    return ATTNC_EINVAL;
  }
  out->base_lr = lr;
  out->warmup_epochs = warmup;
  out->factor = 1.0;
  char buf[MAX_TEXT];
  char *f[MAX_FIELDS];
  int n = split_fields(text, buf, sizeof buf, f);
  if (n < 0) {
    ir_diag_error(d, NULL, 0, "schedule '%s': too many ':' fields", text);
    return ATTNC_EPARSE;
  }
  if (strcmp(f[0], "const") == 0) {
    if (n == 1) {
      out->kind = RT_SCHED_CONST;
      return ATTNC_OK;
    }
    ir_diag_error(d, NULL, 0, "schedule '%s': 'const' takes no arguments", text);
    return ATTNC_EPARSE;
  }
  if (strcmp(f[0], "step") == 0 || strcmp(f[0], "multistep") == 0) return parse_step(text, f, n, out, d);
  if (strcmp(f[0], "cosine") == 0) {
    out->kind = RT_SCHED_COSINE;
    if (n == 1) return ATTNC_OK;
    if (n == 2 && !parse_number(f[1], f[1] + strlen(f[1]), &out->eta_min) && out->eta_min >= 0) return ATTNC_OK;
    ir_diag_error(d, NULL, 0, "schedule '%s': expected cosine or cosine:ETA_MIN with ETA_MIN a number >= 0",
                  text);
    return ATTNC_EPARSE;
  }
  ir_diag_error(d, NULL, 0, "schedule '%s': unknown kind '%s' (expected const, step, multistep or cosine)", text,
                f[0]);
  return ATTNC_EPARSE;
}

/* The schedule's rate at 'epoch' without warm-up (PyTorch's closed forms). */
static double schedule_epoch_lr(const rt_schedule *s, int64_t epoch, int64_t epochs) {
  double e = (double)epoch;
  switch (s->kind) {
  case RT_SCHED_STEP:
    return s->base_lr * pow(s->factor, floor(e / s->step_size));
  case RT_SCHED_MULTISTEP: {
    int passed = 0;
    while (passed < s->nmilestones && s->milestones[passed] <= e) passed++;
    return s->base_lr * pow(s->factor, passed);
  }
  case RT_SCHED_COSINE:
    if (epochs <= 0) return s->base_lr;
    return s->eta_min + (s->base_lr - s->eta_min) * (1.0 + cos(M_PI * e / (double)epochs)) / 2.0;
  default:
    return s->base_lr;
  }
}

double rt_schedule_lr(const rt_schedule *s, int64_t epoch, int64_t iter, int64_t iters, int64_t epochs) {
  if (s->warmup_epochs > 0 && iters > 0) {
    double warm = ceil(s->warmup_epochs * (double)iters);
    double g = (double)epoch * (double)iters + (double)iter;
    if (g < warm) return s->base_lr * (g + 1.0) / warm;
  }
  return schedule_epoch_lr(s, epoch, epochs);
}
