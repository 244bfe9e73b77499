/* The optimizer update as IR: SGD with momentum, weight decay and Nesterov,
 * appended to a graph that already computes "grad.<param>" outputs, so the
 * whole training step is one function. */
#include <stdio.h>
#include <string.h>

#include "passes.h"

/* Appends binary 'op' and returns its id, or -1 after an error. */
static int bin(ir_graph *g, ir_opcode op, int x, int y, ir_diag *d) {
  ir_node *n = ir_graph_append(g, op, (int[]){x, y}, 2, (ir_loc){0});
  return ir_infer_node(g, n, d) ? -1 : n->id;
}

static int scalar(ir_graph *g, double v, ir_dtype dt) {
  return ir_graph_source(g, IR_OP_const, NULL, v, ir_type_make(dt, 0, NULL), (ir_loc){0})->id;
}

/* Appends the update of param 'p' with gradient 'gr'; returns -1 on error. */
static int update_param(ir_graph *g, const ir_node *p, int gr, int lr, const pass_sgd_options *o, ir_diag *d) {
  const char *name = ir_node_name(p);
  char buf[600];
  ir_dtype dt = p->type.dtype;
  int pid = p->id;
  int gp = gr;
  if (o->weight_decay != 0) gp = bin(g, IR_OP_add, gr, bin(g, IR_OP_mul, pid, scalar(g, o->weight_decay, dt), d), d);
  int step = gp;
  if (o->momentum != 0) {
    snprintf(buf, sizeof buf, "optim.%s.momentum", name);
    int v = ir_graph_source(g, IR_OP_buffer, buf, 0, p->type, (ir_loc){0})->id;
    int nv = bin(g, IR_OP_add, bin(g, IR_OP_mul, v, scalar(g, o->momentum, dt), d), gp, d);
    if (nv < 0) return -1;
    ir_graph_add_output(g, buf, nv);
    step = o->nesterov ? bin(g, IR_OP_add, gp, bin(g, IR_OP_mul, nv, scalar(g, o->momentum, dt), d), d) : nv;
  }
  int np = bin(g, IR_OP_sub, pid, bin(g, IR_OP_mul, step, lr, d), d);
  if (np < 0) return -1;
  ir_graph_add_output(g, name, np);
  return 0;
}

/* Appends the SGD update of every param that has a "grad.<name>" output. */
attnc_status pass_sgd(ir_graph *g, const pass_sgd_options *o, ir_diag *d) {
  int lr = -1, nout = g->noutputs;
  for (int i = 0; i < nout; i++) {
    const char *oname = g->outputs[i].name;
    if (strncmp(oname, "grad.", 5)) continue;
    ir_node *p = ir_graph_find_source(g, IR_OP_param, oname + 5);
    if (!p) continue;
    if (lr < 0) {
      if (ir_graph_find_source(g, IR_OP_input, "lr")) {
        ir_diag_error(d, NULL, 0, "sgd: the graph already has an input named 'lr'");
        return ATTNC_EINVAL;
      }
      lr = ir_graph_source(g, IR_OP_input, "lr", 0, ir_type_make(p->type.dtype, 0, NULL), (ir_loc){0})->id;
    }
    if (update_param(g, p, g->outputs[i].node, lr, o, d)) return ATTNC_EVERIFY;
  }
  if (lr < 0) {
    ir_diag_error(d, NULL, 0, "sgd: graph '%s' has no gradient outputs; run autodiff first", g->name);
    return ATTNC_EINVAL;
  }
  return ATTNC_OK;
}
