/* Reference kernels of the data-movement ops: concat, slice, reshape,
 * transpose, broadcast_to and pad. They copy values without arithmetic. */
#include <string.h>

#include "ir_interp_ops.h"

/* concat along 'axis': the operands' blocks follow each other in operand
 * order within every outer index. */
int ir_interp_op_concat(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  int axis = ir_interp_axis(ir_get_int(n, "axis"), out->type.rank);
  int64_t outer, len, inner;
  ir_interp_split(&out->type, axis, &outer, &len, &inner);
  int64_t at = 0; /* position along the axis where operand k starts */
  for (int k = 0; k < n->nin; k++) {
    int64_t lk = in[k]->type.dims[axis];
    for (int64_t o = 0; o < outer; o++)
      for (int64_t j = 0; j < lk * inner; j++)
        out->data[(o * len + at) * inner + j] = in[k]->data[o * lk * inner + j];
    at += lk;
  }
  return 0;
}

/* slice(axis, start, end, step): the indices start, start+step, ... < end. */
int ir_interp_op_slice(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  const ir_ival *x = in[0];
  int axis = ir_interp_axis(ir_get_int(n, "axis"), x->type.rank);
  int64_t start = ir_get_int(n, "start"), step = ir_get_int(n, "step");
  int64_t outer, len, inner, olen = out->type.dims[axis];
  ir_interp_split(&x->type, axis, &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < olen; j++)
      for (int64_t i = 0; i < inner; i++)
        out->data[(o * olen + j) * inner + i] = x->data[(o * len + start + j * step) * inner + i];
  return 0;
}

/* reshape: the same elements in the same row-major order. */
int ir_interp_op_reshape(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  (void)n;
  if (out->numel) memcpy(out->data, in[0]->data, (size_t)out->numel * sizeof(double));
  return 0;
}

/* transpose(perm): output axis i is input axis perm[i]. */
int ir_interp_op_transpose(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  const int64_t *perm = ir_get_ints(n, "perm", NULL);
  int64_t xs[IR_MAX_RANK], st[IR_MAX_RANK];
  ir_interp_strides(&in[0]->type, xs);
  for (int i = 0; i < out->type.rank; i++) st[i] = xs[perm[i]];
  for (int64_t i = 0; i < out->numel; i++)
    out->data[i] = in[0]->data[ir_interp_offset(i, out->type.rank, out->type.dims, st)];
  return 0;
}

/* broadcast_to(shape): numpy broadcast of x to 'shape'. */
int ir_interp_op_broadcast_to(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                              ir_ival *out) {
  (void)c;
  (void)n;
  int64_t st[IR_MAX_RANK];
  ir_interp_bcast_strides(&in[0]->type, &out->type, st);
  for (int64_t i = 0; i < out->numel; i++)
    out->data[i] = in[0]->data[ir_interp_offset(i, out->type.rank, out->type.dims, st)];
  return 0;
}

/* pad(pads, value): pads[2i] elements of 'value' before axis i and
 * pads[2i+1] after it. */
int ir_interp_op_pad(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  const ir_ival *x = in[0];
  const int64_t *pads = ir_get_ints(n, "pads", NULL);
  double value = ir_get_float(n, "value");
  for (int64_t i = 0; i < out->numel; i++) out->data[i] = value;
  int64_t ost[IR_MAX_RANK];
  ir_interp_strides(&out->type, ost);
  int64_t base = 0; /* offset in out of x's element 0 */
  for (int a = 0; a < x->type.rank; a++) base += pads[2 * a] * ost[a];
  for (int64_t i = 0; i < x->numel; i++)
    out->data[base + ir_interp_offset(i, x->type.rank, x->type.dims, ost)] = x->data[i];
  return 0;
}
