/* Gradient checking by central differences in float64. */
#include "rt_gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir_interp.h"
#include "passes.h"

/* Returns a graph with only output 'loss' of 'g' (same nodes). */
static ir_graph *loss_only(const ir_graph *g, const char *loss) {
  ir_graph *c = ir_graph_clone(g);
  for (int i = 0; i < c->noutputs; i++) free(c->outputs[i].name);
  int id = -1;
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, loss)) id = g->outputs[i].node;
  c->noutputs = 0;
  if (id >= 0) ir_graph_add_output(c, loss, id);
  return c;
}

/* Evaluates the loss of 'g' on 'values' in float64; returns 0 or -1. */
static int eval_loss(const ir_graph *g, const char *loss, const ir_bundle *values, double *out, ir_diag *d) {
  ir_bundle *res = ir_bundle_create();
  int rc = -1;
  if (ir_interp_run(g, values, IR_INTERP_F64, res, d) == ATTNC_OK) {
    *out = ir_tensor_get(ir_bundle_get(res, loss), 0);
    rc = 0;
  }
  ir_bundle_destroy(res);
  return rc;
}

/* Returns a float64 copy of 'values' (so perturbations are exact). */
static ir_bundle *to_f64(const ir_bundle *values) {
  ir_bundle *b = ir_bundle_create();
  for (int i = 0; i < values->count; i++) {
    const ir_tensor *t = values->tensors[i];
    ir_bundle_put(b, values->names[i], t->type.dtype == IR_I64 ? ir_tensor_clone(t) : ir_tensor_convert(t, IR_F64));
  }
  return b;
}

/* Compares one source's analytic gradient with central differences. */
static int check_source(const ir_graph *lg, const char *loss, ir_bundle *vals, const char *name,
                        const ir_tensor *grad, const rt_gradcheck_opts *o, rt_gradcheck_entry *e, ir_diag *d) {
  ir_tensor *v = ir_bundle_get(vals, name);
  int64_t n = ir_type_numel(&v->type);
  int64_t want = o->max_elems > 0 && o->max_elems < n ? o->max_elems : n;
  double h = o->step > 0 ? o->step : 1e-7, diff2 = 0, fd2 = 0, an2 = 0;
  for (int64_t k = 0; k < want; k++) {
    int64_t i = want == n ? k : (k * n) / want + (n / want) / 2;
    double x = ir_tensor_get(v, i), lp, lm;
    ir_tensor_set(v, i, x + h);
    if (eval_loss(lg, loss, vals, &lp, d)) return -1;
    ir_tensor_set(v, i, x - h);
    if (eval_loss(lg, loss, vals, &lm, d)) return -1;
    ir_tensor_set(v, i, x);
    double fd = (lp - lm) / (2 * h), an = ir_tensor_get(grad, i);
    diff2 += (an - fd) * (an - fd);
    fd2 += fd * fd;
    an2 += an * an;
  }
  double denom = sqrt(fd2 > an2 ? fd2 : an2), floor = o->floor > 0 ? o->floor : 1e-4;
  if (denom < floor) denom = floor;
  e->name = strdup(name);
  e->checked = want;
  e->fd_norm = sqrt(fd2);
  e->rel_err = sqrt(diff2) / denom;
  return 0;
}

/* Checks every gradient of 'loss' of 'g'. */
attnc_status rt_gradcheck(const ir_graph *g, const char *loss, const ir_bundle *values, const rt_gradcheck_opts *o,
                          rt_gradcheck_report *r, ir_diag *d) {
  memset(r, 0, sizeof *r);
  ir_graph *lg = loss_only(g, loss), *gg = loss_only(g, loss);
  ir_bundle *vals = to_f64(values), *res = ir_bundle_create();
  attnc_status st = pass_autodiff(gg, loss, o->ad_flags, d);
  if (st == ATTNC_OK) st = ir_interp_run(gg, vals, IR_INTERP_F64, res, d);
  if (st == ATTNC_OK) {
    r->entries = calloc((size_t)gg->noutputs + 1, sizeof *r->entries);
    int ngrads = 0, seen = 0;
    for (int i = 0; i < gg->noutputs; i++) ngrads += !strncmp(gg->outputs[i].name, "grad.", 5);
    int want = o->max_tensors > 0 && o->max_tensors < ngrads ? o->max_tensors : ngrads, taken = 0;
    for (int i = 0; i < gg->noutputs && st == ATTNC_OK; i++) {
      const char *on = gg->outputs[i].name;
      if (strncmp(on, "grad.", 5)) continue;
      /* take tensor 'seen' if it is the next of 'want' spread evenly over 'ngrads' */
      if ((int64_t)taken * ngrads / want != seen++ || taken >= want) continue;
      taken++;
      rt_gradcheck_entry *e = &r->entries[r->count];
      if (check_source(lg, loss, vals, on + 5, ir_bundle_get(res, on), o, e, d)) {
        st = ATTNC_ERUNTIME;
        break;
      }
      if (e->rel_err > r->worst) r->worst = e->rel_err;
      r->count++;
    }
  }
  ir_bundle_destroy(res);
  ir_bundle_destroy(vals);
  ir_graph_destroy(lg);
  ir_graph_destroy(gg);
  return st;
}

/* Frees what 'r' holds. */
void rt_gradcheck_report_free(rt_gradcheck_report *r) {
  for (int i = 0; i < r->count; i++) free(r->entries[i].name);
  free(r->entries);
  memset(r, 0, sizeof *r);
}
