/* Fusion test helpers: see util_fuse.h. The checks restate the contract of
 * passes.h / FUSION.md directly (quadratic scans, no shared code with the
 * pass) so that a wrong grouping fails them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util_fuse.h"

/* Batch of the graph per the contract. */
int64_t tfu_batch(const ir_graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_input && n->type.dtype != IR_I64 && n->type.rank >= 1 && ir_node_name(n) &&
        strcmp(ir_node_name(n), "x") == 0)
      return n->type.dims[0];
  }
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_input && n->type.dtype != IR_I64 && n->type.rank == 4) return n->type.dims[0];
  }
  return -1;
}

static int elementwise(const ir_node *n) {
  return (ir_op_info_get(n->op)->flags & (IR_OPF_UNARY | IR_OPF_BINARY | IR_OPF_ELEMENTWISE)) != 0;
}

/* 1 if 'id' is in members[0..m). */
static int in_list(const int *list, int m, int id) {
  for (int i = 0; i < m; i++)
    if (list[i] == id) return 1;
  return 0;
}

/* 1 if node 'id' is named by a graph output. */
static int named(const ir_graph *g, int id) {
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i].node == id) return 1;
  return 0;
}

/* Outside inputs + outputs of the member run list[0..m) (a loop cluster). */
static int run_args(const ir_graph *g, const int *list, int m) {
  int args = 0, *seen = calloc((size_t)g->nnodes, sizeof *seen);
  assert_non_null(seen);
  for (int i = 0; i < m; i++) {
    const ir_node *n = g->nodes[list[i]];
    for (int k = 0; k < n->nin; k++)
      if (!in_list(list, m, n->in[k]) && !seen[n->in[k]]) seen[n->in[k]] = 1, args++;
    int out = named(g, list[i]);
    for (int v = list[i] + 1; v < g->nnodes && !out; v++)
      for (int k = 0; k < g->nodes[v]->nin; k++) out |= g->nodes[v]->in[k] == list[i] && !in_list(list, m, v);
    args += out;
  }
  free(seen);
  return args;
}

/* Checks the SAMPLE rules on member 'id' of group 'gr'. */
static void check_sample_member(const ir_graph *g, const pass_fuse_group *gr, int id, int64_t batch) {
  const ir_node *n = g->nodes[id];
  if (batch < 1 || n->type.rank < 1 || n->type.dims[0] != batch)
    fail_msg("sample member %%%d has no batch axis %lld", id, (long long)batch);
  for (int k = 0; k < n->nin; k++) {
    int b = pass_fuse_batched(g, n, k, batch);
    if (b < 0) fail_msg("sample member %%%d (%s) is not batch-local", id, ir_op_info_get(n->op)->name);
    if (in_list(gr->members, gr->nmembers, n->in[k]) && b != 1)
      fail_msg("sample member %%%d reads member %%%d whole", id, n->in[k]);
  }
  if (n->op == IR_OP_conv2d || n->op == IR_OP_conv1d || n->op == IR_OP_conv2d_grad_input ||
      n->op == IR_OP_conv1d_grad_input)
    assert_true(ir_type_numel(&g->nodes[n->in[1]]->type) <= 512);
}

/* 1 if 'n' is a float sum / mean / max / min over axes other than the
 * first (a max / min also not over the last) of a value of type 't' among
 * before[0..nb). */
static int running_reduction(const ir_graph *g, const ir_node *n, const ir_type *t, const int *before, int nb) {
  if (n->op != IR_OP_reduce_sum && n->op != IR_OP_reduce_mean && n->op != IR_OP_reduce_max &&
      n->op != IR_OP_reduce_min)
    return 0;
  if (!in_list(before, nb, n->in[0]) || !ir_type_equal(&g->nodes[n->in[0]]->type, t) || t->dtype == IR_I64)
    return 0;
  int na;
  const int64_t *axes = ir_get_ints(n, "axes", &na);
  int sum = n->op == IR_OP_reduce_sum || n->op == IR_OP_reduce_mean;
  for (int i = 0; i < na; i++) {
    int64_t x = axes[i] < 0 ? axes[i] + t->rank : axes[i];
    if (x <= 0 || x >= t->rank || (x == t->rank - 1 && !sum)) return 0; /* only sums run along the rows */
  }
  return na > 0;
}

/* Checks the steps of group 'gr'. */
static void check_steps(const ir_graph *g, const pass_fuse_group *gr) {
  assert_true(gr->nsteps >= 1 && gr->nsteps <= gr->nmembers);
  assert_int_equal(gr->step_start[0], 0);
  if (gr->kind == PASS_FUSE_LOOP) assert_int_equal(gr->nsteps, 1);
  for (int s = 0; s < gr->nsteps; s++) {
    int a = gr->step_start[s], b = s + 1 < gr->nsteps ? gr->step_start[s + 1] : gr->nmembers;
    if (b <= a) fail_msg("steps of a group are not increasing");
    if (b - a == 1) continue;
    const ir_type *t = &g->nodes[gr->members[a]]->type;
    assert_true(elementwise(g->nodes[gr->members[a]]));
    for (int i = a; i < b; i++) {
      const ir_node *n = g->nodes[gr->members[i]];
      if (elementwise(n) && ir_type_equal(&n->type, t)) {
        for (int k = 0; k < n->nin; k++) /* a running reduction is not ready inside its step */
          for (int j = a; j < i; j++)
            if (n->in[k] == gr->members[j] && !elementwise(g->nodes[gr->members[j]]))
              fail_msg("%%%d reads the running reduction %%%d of its own step", n->id, n->in[k]);
        continue;
      }
      if (running_reduction(g, n, t, gr->members + a, i - a)) continue;
      fail_msg("step of %d members holds %%%d (%s), not a loop cluster", b - a, gr->members[i],
               ir_op_info_get(n->op)->name);
    }
    if (run_args(g, gr->members + a, b - a) > 16) fail_msg("loop cluster at %%%d has > 16 arguments", gr->members[a]);
  }
}

/* Checks ins, outs and the legality of group 'gr'. */
static void check_edges(const ir_graph *g, const pass_fuse_group *gr) {
  const int *m = gr->members;
  int nm = gr->nmembers, last = pass_fuse_last(gr), nins = 0, nouts = 0;
  for (int i = 0; i < gr->nins; i++) {
    assert_false(in_list(m, nm, gr->ins[i]));
    assert_true(gr->ins[i] < last);
    if (i) assert_true(gr->ins[i - 1] < gr->ins[i]);
  }
  for (int i = 0; i < gr->nouts; i++) {
    assert_true(in_list(m, nm, gr->outs[i]));
    if (i) assert_true(gr->outs[i - 1] < gr->outs[i]);
  }
  int *counted = calloc((size_t)g->nnodes, sizeof *counted);
  assert_non_null(counted);
  for (int i = 0; i < nm; i++) {
    const ir_node *n = g->nodes[m[i]];
    for (int k = 0; k < n->nin; k++)
      if (!in_list(m, nm, n->in[k]) && !counted[n->in[k]]) {
        counted[n->in[k]] = 1;
        nins++;
        if (!in_list(gr->ins, gr->nins, n->in[k])) fail_msg("operand %%%d of %%%d missing from ins", n->in[k], m[i]);
      }
    int out = named(g, m[i]);
    for (int v = m[i] + 1; v < g->nnodes; v++)
      for (int k = 0; k < g->nodes[v]->nin; k++)
        if (g->nodes[v]->in[k] == m[i] && !in_list(m, nm, v)) {
          out = 1;
          if (v < last) fail_msg("%%%d uses member %%%d before the group's last member %%%d", v, m[i], last);
        }
    nouts += out;
    if (out != in_list(gr->outs, gr->nouts, m[i])) fail_msg("member %%%d: outs wrong (used outside: %d)", m[i], out);
  }
  free(counted);
  assert_int_equal(nins, gr->nins);
  assert_int_equal(nouts, gr->nouts);
}

/* Checks every invariant of the fusion contract. */
void tfu_check(const ir_graph *g, const pass_fusion *f) {
  assert_int_equal(f->nnodes, g->nnodes);
  int64_t batch = tfu_batch(g);
  int *count = calloc((size_t)g->nnodes + 1, sizeof *count);
  assert_non_null(count);
  for (int gi = 0; gi < f->ngroups; gi++) {
    const pass_fuse_group *gr = &f->groups[gi];
    assert_true(gr->nmembers >= 2 && gr->nmembers <= 96);
    assert_non_null(gr->label);
    if (gi) assert_true(pass_fuse_last(&f->groups[gi - 1]) < pass_fuse_last(gr));
    const ir_type *t0 = &g->nodes[gr->members[0]]->type;
    for (int i = 0; i < gr->nmembers; i++) {
      int id = gr->members[i];
      const ir_node *n = g->nodes[id];
      if (gr->kind == PASS_FUSE_LOOP && i) assert_true(gr->members[i - 1] < id);
      for (int j = i; j < gr->nmembers; j++) /* execution order: in-group operands first */
        for (int k = 0; k < n->nin; k++)
          if (n->in[k] == gr->members[j]) fail_msg("member %%%d runs before its operand %%%d", id, n->in[k]);
      assert_false(ir_op_info_get(n->op)->flags & IR_OPF_SOURCE);
      if (f->group_of[id] != gi) fail_msg("group_of[%d] = %d, member of %d", id, f->group_of[id], gi);
      count[id]++;
      if (gr->kind == PASS_FUSE_LOOP) {
        if (!elementwise(n) || !ir_type_equal(&n->type, t0)) fail_msg("loop member %%%d not elementwise of one type", id);
      } else {
        assert_int_equal(gr->kind, PASS_FUSE_SAMPLE);
        check_sample_member(g, gr, id, batch);
      }
    }
    check_steps(g, gr);
    check_edges(g, gr);
  }
  for (int i = 0; i < g->nnodes; i++) {
    assert_true(count[i] <= 1);
    if (!count[i] && f->group_of[i] != -1) fail_msg("group_of[%d] = %d but no group holds it", i, f->group_of[i]);
  }
  free(count);
}

/* pass_fuse + tfu_check. */
void tfu_fuse(const ir_graph *g, pass_fusion *f) {
  ir_diag *d = ir_diag_create();
  attnc_status st = pass_fuse(g, f, d);
  if (st != ATTNC_OK) fail_msg("pass_fuse failed (%d): %s", (int)st, ir_diag_text(d));
  ir_diag_destroy(d);
  tfu_check(g, f);
}

/* Number of groups labelled 'label'. */
int tfu_count_label(const pass_fusion *f, const char *label) {
  int c = 0;
  for (int i = 0; i < f->ngroups; i++) c += strcmp(f->groups[i].label, label) == 0;
  return c;
}

/* 1 if scope 's' is "layers.<block>.att" or below it. */
static int in_block_att(const char *s, int block) {
  char prefix[32];
  int len = snprintf(prefix, sizeof prefix, "layers.%d.att", block);
  return s && strncmp(s, prefix, (size_t)len) == 0 && (s[len] == 0 || s[len] == '.');
}

/* The one group labelled 'label' with a member in block 'block's attention. */
int tfu_block_group(const ir_graph *g, const pass_fusion *f, int block, const char *label) {
  int found = -1;
  for (int i = 0; i < f->ngroups; i++) {
    const pass_fuse_group *gr = &f->groups[i];
    if (strcmp(gr->label, label) != 0) continue;
    int hit = 0;
    for (int j = 0; j < gr->nmembers && !hit; j++) hit = in_block_att(g->nodes[gr->members[j]]->loc.scope, block);
    if (!hit) continue;
    if (found >= 0) fail_msg("block %d has two \"%s\" groups (%d and %d)", block, label, found, i);
    found = i;
  }
  if (found < 0) fail_msg("block %d has no \"%s\" group", block, label);
  return found;
}

/* 1 if a member of 'gr' has op 'op'. */
int tfu_group_has_op(const ir_graph *g, const pass_fuse_group *gr, ir_opcode op) {
  for (int i = 0; i < gr->nmembers; i++)
    if (g->nodes[gr->members[i]]->op == op) return 1;
  return 0;
}

/* Kernel launches with the groups of 'f' (NULL: without fusion). */
int tfu_kernels(const ir_graph *g, const pass_fusion *f) {
  int k = f ? f->ngroups : 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (ir_op_info_get(n->op)->flags & IR_OPF_SOURCE || n->op == IR_OP_reshape) continue;
    k += !f || f->group_of[i] < 0;
  }
  return k;
}
