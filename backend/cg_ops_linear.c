/* Kernels of matmul and of the 1-D convolution (forward, input and weight
 * gradients), the small conv over channels of the ECA/HAM attention modules.
 *
 * matmul packs a panel of NR columns of b (any transposition, zero-padded
 * past N) into scratch as [K][NR], then runs a register-blocked micro-kernel
 * over MR rows of a at a time: per k, NR/lanes vector loads of the panel,
 * MR broadcasts of a and MR*NR/lanes fused multiply-adds into accumulators
 * that stay in registers. A work item is (batch, panel, chunk of rows).
 *
 * conv1d works on rows along L: every (tap, channel) pair adds w * x over
 * the output range where the tap is in bounds (computed at compile time), a
 * plain loop LLVM vectorizes; the weight gradient sums x * dy with explicit
 * vector accumulators. Summation orders follow the interpreter's. */
#include <string.h>
#include "cg_internal.h"

/* Lanes of a host vector of dtype 'dt'. */
static int lanes(ir_dtype dt) { return cg_host_vector_bytes() / (int)ir_dtype_size(dt); }

/* ---- matmul ---- */

/* Geometry and blocking of a matmul node. */
typedef struct {
  int64_t batch, m, n, k;
  int64_t astride, bstride, cstride; /* per batch, elements */
  int ta, tb;
  int w, nv, nr, mr;                 /* lanes, vectors per panel row, panel width, rows per block */
  int64_t mc, mchunks, npanels;      /* rows per chunk (multiple of mr), chunks, panels */
  ir_dtype dt;
} mm_shape;

static void mm_shape_of(const ir_graph *g, const ir_node *n, mm_shape *s) {
  const ir_type *a = &g->nodes[n->in[0]]->type, *b = &g->nodes[n->in[1]]->type, *y = &n->type;
  memset(s, 0, sizeof *s);
  s->ta = (int)ir_get_int(n, "trans_a");
  s->tb = (int)ir_get_int(n, "trans_b");
  s->dt = y->dtype;
  s->m = y->dims[y->rank - 2];
  s->n = y->dims[y->rank - 1];
  s->k = a->dims[a->rank - 1 - s->ta];
  s->batch = (s->m > 0 && s->n > 0) ? ir_type_numel(y) / (s->m * s->n) : 0;
  s->astride = s->m * s->k;
  s->bstride = b->rank == 2 ? 0 : s->k * s->n;
  s->cstride = s->m * s->n;
  if (b->rank == 2 && !s->ta) { /* shared b: the batch is just more rows of a */
    s->m *= s->batch;
    s->batch = 1;
  }
  s->w = lanes(s->dt);
  s->nv = s->n > s->w ? 2 : 1;
  s->nr = s->nv * s->w;
  int regs = cg_host_vector_bytes() == 64 ? 32 : 16;
  s->mr = (regs - s->nv - 2) / s->nv;
  if (s->mr > 12) s->mr = 12;
  if (s->mr > s->m) s->mr = (int)(s->m > 0 ? s->m : 1);
  s->mc = s->mr * ((64 + s->mr - 1) / s->mr);
  s->mchunks = (s->m + s->mc - 1) / s->mc;
  s->npanels = (s->n + s->nr - 1) / s->nr;
  if (s->batch * s->npanels >= 16) { /* enough items: pack each panel once */
    s->mc = (s->m + s->mr - 1) / s->mr * s->mr;
    s->mchunks = 1;
  }
}

static void plan_matmul(const ir_graph *g, const ir_node *n, cg_plan *p) {
  mm_shape s;
  mm_shape_of(g, n, &s);
  p->par = s.batch * s.npanels * s.mchunks;
  p->scratch_bytes = s.k * s.nr * (int64_t)ir_dtype_size(s.dt);
  p->flops = 2.0 * (double)s.batch * (double)s.m * (double)s.n * (double)s.k;
}

/* Packs columns [j0, j0 + ncols) of b (batch offset bb) into the panel
 * pk[k][nr], zeros in the columns past ncols. */
static void mm_pack(cg_emit *e, const mm_shape *s, LLVMValueRef pk, LLVMValueRef bb, LLVMValueRef j0, int ncols) {
  LLVMValueRef b = e->arg[2];
  cg_loop lk, lj;
  if (s->tb) { /* b stored [N, K]: read rows of b, write columns of the panel */
    LLVMValueRef jj = cg_loop_begin(e, &lj, cg_i64(e, 0), cg_i64(e, ncols), 1);
    LLVMValueRef src = cg_add(e, bb, cg_mul(e, cg_add(e, j0, jj), cg_i64(e, s->k)));
    LLVMValueRef k = cg_loop_begin(e, &lk, cg_i64(e, 0), cg_i64(e, s->k), 1);
    cg_store(e, pk, cg_add(e, cg_mul(e, k, cg_i64(e, s->nr)), jj), cg_load(e, b, cg_add(e, src, k)));
    cg_loop_end(e, &lk);
    cg_loop_end(e, &lj);
  } else { /* b stored [K, N]: copy row pieces */
    LLVMValueRef k = cg_loop_begin(e, &lk, cg_i64(e, 0), cg_i64(e, s->k), 1);
    LLVMValueRef src = cg_add(e, bb, cg_add(e, cg_mul(e, k, cg_i64(e, s->n)), j0));
    LLVMValueRef dst = cg_mul(e, k, cg_i64(e, s->nr));
    LLVMValueRef jj = cg_loop_begin(e, &lj, cg_i64(e, 0), cg_i64(e, ncols), 1);
    cg_store(e, pk, cg_add(e, dst, jj), cg_load(e, b, cg_add(e, src, jj)));
    cg_loop_end(e, &lj);
    cg_loop_end(e, &lk);
  }
  if (ncols < s->nr) {
    LLVMValueRef k = cg_loop_begin(e, &lk, cg_i64(e, 0), cg_i64(e, s->k), 1);
    for (int jj = ncols; jj < s->nr; jj++)
      cg_store(e, pk, cg_affine(e, k, s->nr, jj), cg_const(e, s->dt, 0));
    cg_loop_end(e, &lk);
  }
}

/* Emits the micro-kernel: rows [i0, i0 + mr) of a times the panel, stored
 * into columns [j0, j0 + ncols) of c. */
static void mm_block(cg_emit *e, const mm_shape *s, LLVMValueRef pk, LLVMValueRef ab, LLVMValueRef cb,
                     LLVMValueRef i0, LLVMValueRef j0, int mr, int ncols) {
  enum { MAXR = 16, MAXV = 2 };
  LLVMTypeRef vt = cg_vec_type(e, s->dt, s->w);
  LLVMValueRef acc[MAXR][MAXV];
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < s->nv; v++) acc[r][v] = cg_var_new(e, vt, LLVMConstNull(vt));
  /* a(i0 + r, k) lives at arow + r*rstep + k*kstep */
  LLVMValueRef arow = cg_add(e, ab, cg_mul(e, i0, cg_i64(e, s->ta ? 1 : s->k)));
  int64_t rstep = s->ta ? 1 : s->k, kstep = s->ta ? s->m : 1;
  cg_loop lk;
  LLVMValueRef k = cg_loop_begin(e, &lk, cg_i64(e, 0), cg_i64(e, s->k), 1);
  LLVMValueRef bv[MAXV];
  for (int v = 0; v < s->nv; v++) bv[v] = cg_vload(e, pk, cg_affine(e, k, s->nr, (int64_t)v * s->w), s->w);
  LLVMValueRef ak = cg_add(e, arow, cg_mul(e, k, cg_i64(e, kstep)));
  for (int r = 0; r < mr; r++) {
    LLVMValueRef a = cg_splat(e, cg_load(e, e->arg[1], cg_add(e, ak, cg_i64(e, r * rstep))), s->w);
    for (int v = 0; v < s->nv; v++) cg_var_set(e, acc[r][v], cg_fma(e, a, bv[v], cg_var_get(e, acc[r][v])));
  }
  cg_loop_end(e, &lk);
  for (int r = 0; r < mr; r++) {
    LLVMValueRef crow = cg_add(e, cb, cg_add(e, cg_mul(e, cg_add(e, i0, cg_i64(e, r)), cg_i64(e, s->n)), j0));
    for (int v = 0; v < s->nv; v++) {
      int count = ncols - v * s->w;
      if (count <= 0) continue;
      LLVMValueRef at = cg_add(e, crow, cg_i64(e, (int64_t)v * s->w));
      if (count >= s->w)
        cg_vstore(e, e->arg[0], at, cg_var_get(e, acc[r][v]));
      else
        cg_vstore_first(e, e->arg[0], at, cg_var_get(e, acc[r][v]), count);
    }
  }
}

/* Emits one work item (batch bi, panel, row chunk mc) for a panel of ncols columns. */
static void mm_item(cg_emit *e, const mm_shape *s, LLVMValueRef bi, LLVMValueRef panel, LLVMValueRef mc,
                    int ncols) {
  LLVMValueRef pk = cg_scratch(e, 0, s->dt);
  LLVMValueRef j0 = cg_mul(e, panel, cg_i64(e, s->nr));
  LLVMValueRef ab = cg_mul(e, bi, cg_i64(e, s->astride)), bb = cg_mul(e, bi, cg_i64(e, s->bstride)),
               cb = cg_mul(e, bi, cg_i64(e, s->cstride));
  mm_pack(e, s, pk, bb, j0, ncols);
  int64_t mfull = s->m - s->m % s->mr;
  LLVMValueRef m0 = cg_mul(e, mc, cg_i64(e, s->mc));
  LLVMValueRef mend = cg_min(e, cg_add(e, m0, cg_i64(e, s->mc)), cg_i64(e, mfull));
  cg_loop li;
  LLVMValueRef i0 = cg_loop_begin(e, &li, m0, mend, s->mr);
  mm_block(e, s, pk, ab, cb, i0, j0, s->mr, ncols);
  cg_loop_end(e, &li);
  if (s->m % s->mr) {
    cg_if t;
    cg_if_begin(e, &t, LLVMBuildICmp(e->b, LLVMIntEQ, mc, cg_i64(e, s->mchunks - 1), ""));
    mm_block(e, s, pk, ab, cb, cg_i64(e, mfull), j0, (int)(s->m % s->mr), ncols);
    cg_if_end(e, &t);
  }
}

static attnc_status emit_matmul(cg_emit *e, const cg_plan *p) {
  (void)p;
  mm_shape s;
  mm_shape_of(e->g, e->n, &s);
  if (s.batch == 0) return ATTNC_OK;
  cg_loop l;
  LLVMValueRef it = cg_loop_begin(e, &l, e->begin, e->end, 1);
  LLVMValueRef mc = LLVMBuildSRem(e->b, it, cg_i64(e, s.mchunks), "");
  LLVMValueRef rest = LLVMBuildSDiv(e->b, it, cg_i64(e, s.mchunks), "");
  LLVMValueRef panel = LLVMBuildSRem(e->b, rest, cg_i64(e, s.npanels), "");
  LLVMValueRef bi = LLVMBuildSDiv(e->b, rest, cg_i64(e, s.npanels), "");
  int tail = (int)(s.n - (s.npanels - 1) * s.nr);
  if (tail == s.nr) {
    mm_item(e, &s, bi, panel, mc, s.nr);
  } else {
    cg_if t;
    cg_if_begin(e, &t, LLVMBuildICmp(e->b, LLVMIntEQ, panel, cg_i64(e, s.npanels - 1), ""));
    mm_item(e, &s, bi, panel, mc, tail);
    cg_if_else(e, &t);
    mm_item(e, &s, bi, panel, mc, s.nr);
    cg_if_end(e, &t);
  }
  cg_loop_end(e, &l);
  return ATTNC_OK;
}

/* ---- conv1d ---- */

/* Geometry of a conv1d node or gradient: x[n,c,l] w[o,cg,kw] y[n,o,ol]. */
typedef struct {
  int64_t n, c, l, o, kw, ol, s, p, d, groups, cg, og;
  ir_dtype dt;
} c1_shape;

static void c1_shape_of(const ir_graph *g, const ir_node *nd, c1_shape *s) {
  const ir_type *x, *w, *y;
  const ir_type *in0 = &g->nodes[nd->in[0]]->type, *in1 = &g->nodes[nd->in[1]]->type;
  if (nd->op == IR_OP_conv1d) x = in0, w = in1, y = &nd->type;
  else if (nd->op == IR_OP_conv1d_grad_input) x = &nd->type, w = in1, y = in0;
  else x = in0, w = &nd->type, y = in1;
  s->n = x->dims[0];
  s->c = x->dims[1];
  s->l = x->dims[2];
  s->o = w->dims[0];
  s->kw = w->dims[2];
  s->ol = y->dims[2];
  s->s = ir_get_ints(nd, "stride", NULL)[0];
  s->p = ir_get_ints(nd, "pad", NULL)[0];
  s->d = ir_get_ints(nd, "dilation", NULL)[0];
  s->groups = ir_get_int(nd, "groups");
  s->cg = s->c / s->groups;
  s->og = s->o / s->groups;
  s->dt = x->dtype;
}

/* The outputs [*first, *last) whose input column for tap kx is in bounds;
 * *ix0 is the input column of *first. */
static void c1_range(const c1_shape *s, int64_t kx, int64_t *first, int64_t *last, int64_t *ix0) {
  int64_t f = 0, t = s->ol;
  while (f < t && f * s->s - s->p + kx * s->d < 0) f++;
  while (t > f && (t - 1) * s->s - s->p + kx * s->d >= s->l) t--;
  *first = f;
  *last = t;
  *ix0 = f * s->s - s->p + kx * s->d;
}

static void plan_conv1d(const ir_graph *g, const ir_node *n, cg_plan *p) {
  c1_shape s;
  c1_shape_of(g, n, &s);
  p->par = n->op == IR_OP_conv1d ? s.n * s.o : n->op == IR_OP_conv1d_grad_input ? s.n * s.c : s.o * s.cg;
  p->scratch_bytes = 0;
  p->flops = 2.0 * (double)(s.n * s.o * s.ol * s.cg * s.kw);
}

/* Zeroes out[base, base + len). */
static void c1_zero(cg_emit *e, LLVMValueRef out, LLVMValueRef base, int64_t len, ir_dtype dt) {
  cg_loop l;
  LLVMValueRef i = cg_loop_begin(e, &l, cg_i64(e, 0), cg_i64(e, len), 1);
  cg_store(e, out, cg_add(e, base, i), cg_const(e, dt, 0));
  cg_loop_end(e, &l);
}

/* Forward: item (n, o) computes y[n, o, :]. */
static attnc_status emit_conv1d(cg_emit *e, const cg_plan *p) {
  (void)p;
  c1_shape s;
  c1_shape_of(e->g, e->n, &s);
  LLVMValueRef y = e->arg[0], x = e->arg[1], w = e->arg[2];
  cg_loop l;
  LLVMValueRef it = cg_loop_begin(e, &l, e->begin, e->end, 1);
  LLVMValueRef o = LLVMBuildSRem(e->b, it, cg_i64(e, s.o), ""), n = LLVMBuildSDiv(e->b, it, cg_i64(e, s.o), "");
  LLVMValueRef yrow = cg_mul(e, it, cg_i64(e, s.ol));
  c1_zero(e, y, yrow, s.ol, s.dt);
  LLVMValueRef gc0 = cg_mul(e, LLVMBuildSDiv(e->b, o, cg_i64(e, s.og), ""), cg_i64(e, s.cg));
  cg_loop lc;
  LLVMValueRef ci = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, s.cg), 1);
  LLVMValueRef xrow = cg_mul(e, cg_add(e, cg_mul(e, n, cg_i64(e, s.c)), cg_add(e, gc0, ci)), cg_i64(e, s.l));
  LLVMValueRef wrow = cg_mul(e, cg_add(e, cg_mul(e, o, cg_i64(e, s.cg)), ci), cg_i64(e, s.kw));
  for (int64_t kx = 0; kx < s.kw; kx++) {
    int64_t first, last, ix0;
    c1_range(&s, kx, &first, &last, &ix0);
    if (first >= last) continue;
    LLVMValueRef wv = cg_load(e, w, cg_add(e, wrow, cg_i64(e, kx)));
    cg_loop lx;
    LLVMValueRef ox = cg_loop_begin(e, &lx, cg_i64(e, first), cg_i64(e, last), 1);
    LLVMValueRef ix = cg_affine(e, ox, s.s, ix0 - first * s.s);
    LLVMValueRef at = cg_add(e, yrow, ox);
    cg_store(e, y, at, cg_fma(e, wv, cg_load(e, x, cg_add(e, xrow, ix)), cg_load(e, y, at)));
    cg_loop_end(e, &lx);
  }
  cg_loop_end(e, &lc);
  cg_loop_end(e, &l);
  return ATTNC_OK;
}

/* Input gradient (dy, w): item (n, c) computes dx[n, c, :]. */
static attnc_status emit_conv1d_grad_input(cg_emit *e, const cg_plan *p) {
  (void)p;
  c1_shape s;
  c1_shape_of(e->g, e->n, &s);
  LLVMValueRef dx = e->arg[0], dy = e->arg[1], w = e->arg[2];
  cg_loop l;
  LLVMValueRef it = cg_loop_begin(e, &l, e->begin, e->end, 1);
  LLVMValueRef c = LLVMBuildSRem(e->b, it, cg_i64(e, s.c), ""), n = LLVMBuildSDiv(e->b, it, cg_i64(e, s.c), "");
  LLVMValueRef grp = LLVMBuildSDiv(e->b, c, cg_i64(e, s.cg), ""), ci = LLVMBuildSRem(e->b, c, cg_i64(e, s.cg), "");
  LLVMValueRef xrow = cg_mul(e, it, cg_i64(e, s.l));
  c1_zero(e, dx, xrow, s.l, s.dt);
  cg_loop lo;
  LLVMValueRef oo = cg_loop_begin(e, &lo, cg_i64(e, 0), cg_i64(e, s.og), 1);
  LLVMValueRef o = cg_add(e, cg_mul(e, grp, cg_i64(e, s.og)), oo);
  LLVMValueRef yrow = cg_mul(e, cg_add(e, cg_mul(e, n, cg_i64(e, s.o)), o), cg_i64(e, s.ol));
  LLVMValueRef wrow = cg_mul(e, cg_add(e, cg_mul(e, o, cg_i64(e, s.cg)), ci), cg_i64(e, s.kw));
  for (int64_t kx = 0; kx < s.kw; kx++) {
    int64_t first, last, ix0;
    c1_range(&s, kx, &first, &last, &ix0);
    if (first >= last) continue;
    LLVMValueRef wv = cg_load(e, w, cg_add(e, wrow, cg_i64(e, kx)));
    cg_loop lx;
    LLVMValueRef ox = cg_loop_begin(e, &lx, cg_i64(e, first), cg_i64(e, last), 1);
    LLVMValueRef at = cg_add(e, xrow, cg_affine(e, ox, s.s, ix0 - first * s.s));
    cg_store(e, dx, at, cg_fma(e, wv, cg_load(e, dy, cg_add(e, yrow, ox)), cg_load(e, dx, at)));
    cg_loop_end(e, &lx);
  }
  cg_loop_end(e, &lo);
  cg_loop_end(e, &l);
  return ATTNC_OK;
}

/* sum over ox in [first, last) of x[xbase + ox*s] * dy[ybase + ox]
 * (xbase already includes the tap's offset), as a scalar of the dtype. */
static LLVMValueRef c1_dot(cg_emit *e, const c1_shape *s, LLVMValueRef xb, LLVMValueRef yb, int64_t first,
                           int64_t last) {
  LLVMValueRef x = e->arg[1], dy = e->arg[2];
  int64_t len = last - first;
  if (s->s != 1) {
    LLVMValueRef acc = cg_var_new(e, cg_type(e, s->dt), cg_const(e, s->dt, 0));
    cg_loop l;
    LLVMValueRef ox = cg_loop_begin(e, &l, cg_i64(e, first), cg_i64(e, last), 1);
    LLVMValueRef xv = cg_load(e, x, cg_add(e, xb, cg_mul(e, ox, cg_i64(e, s->s))));
    cg_var_set(e, acc, cg_fma(e, xv, cg_load(e, dy, cg_add(e, yb, ox)), cg_var_get(e, acc)));
    cg_loop_end(e, &l);
    return cg_var_get(e, acc);
  }
  int w = lanes(s->dt);
  LLVMTypeRef vt = cg_vec_type(e, s->dt, w);
  LLVMValueRef acc = cg_var_new(e, vt, LLVMConstNull(vt));
  LLVMValueRef x0 = cg_add(e, xb, cg_i64(e, first)), y0 = cg_add(e, yb, cg_i64(e, first));
  int64_t nfull = len / w;
  if (nfull > 0) {
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(e, &l, cg_i64(e, 0), cg_i64(e, nfull * w), w);
    LLVMValueRef xv = cg_vload(e, x, cg_add(e, x0, i), w), yv = cg_vload(e, dy, cg_add(e, y0, i), w);
    cg_var_set(e, acc, cg_fma(e, xv, yv, cg_var_get(e, acc)));
    cg_loop_end(e, &l);
  }
  if (len % w) {
    LLVMValueRef off = cg_i64(e, nfull * w);
    LLVMValueRef xv = cg_vload_first(e, x, cg_add(e, x0, off), w, (int)(len % w));
    LLVMValueRef yv = cg_vload_first(e, dy, cg_add(e, y0, off), w, (int)(len % w));
    cg_var_set(e, acc, cg_fma(e, xv, yv, cg_var_get(e, acc)));
  }
  return cg_vsum(e, cg_var_get(e, acc));
}

/* Weight gradient (x, dy): item (o, ci) computes dw[o, ci, :], each tap
 * summed per batch row and then over rows in double. */
static attnc_status emit_conv1d_grad_weight(cg_emit *e, const cg_plan *p) {
  (void)p;
  c1_shape s;
  c1_shape_of(e->g, e->n, &s);
  cg_loop l;
  LLVMValueRef it = cg_loop_begin(e, &l, e->begin, e->end, 1);
  LLVMValueRef o = LLVMBuildSDiv(e->b, it, cg_i64(e, s.cg), ""), ci = LLVMBuildSRem(e->b, it, cg_i64(e, s.cg), "");
  LLVMValueRef c = cg_add(e, cg_mul(e, LLVMBuildSDiv(e->b, o, cg_i64(e, s.og), ""), cg_i64(e, s.cg)), ci);
  for (int64_t kx = 0; kx < s.kw; kx++) {
    int64_t first, last, ix0;
    c1_range(&s, kx, &first, &last, &ix0);
    LLVMValueRef total = cg_var_new(e, e->t_f64, LLVMConstReal(e->t_f64, 0));
    if (first < last) {
      cg_loop ln;
      LLVMValueRef n = cg_loop_begin(e, &ln, cg_i64(e, 0), cg_i64(e, s.n), 1);
      LLVMValueRef xb = cg_affine(e, cg_add(e, cg_mul(e, n, cg_i64(e, s.c)), c), s.l, ix0 - first * s.s);
      LLVMValueRef yb = cg_mul(e, cg_add(e, cg_mul(e, n, cg_i64(e, s.o)), o), cg_i64(e, s.ol));
      LLVMValueRef part = c1_dot(e, &s, xb, yb, first, last);
      if (s.dt != IR_F64) part = LLVMBuildFPExt(e->b, part, e->t_f64, "");
      cg_var_set(e, total, LLVMBuildFAdd(e->b, cg_var_get(e, total), part, ""));
      cg_loop_end(e, &ln);
    }
    LLVMValueRef v = cg_var_get(e, total);
    if (s.dt != IR_F64) v = LLVMBuildFPTrunc(e->b, v, e->t_f32, "");
    cg_store(e, e->arg[0], cg_affine(e, it, s.kw, kx), v);
  }
  cg_loop_end(e, &l);
  return ATTNC_OK;
}

/* Registers matmul and the conv1d family. */
void cg_register_linear(cg_kernel_impl *t) {
  t[IR_OP_matmul] = (cg_kernel_impl){plan_matmul, emit_matmul};
  t[IR_OP_conv1d] = (cg_kernel_impl){plan_conv1d, emit_conv1d};
  t[IR_OP_conv1d_grad_input] = (cg_kernel_impl){plan_conv1d, emit_conv1d_grad_input};
  t[IR_OP_conv1d_grad_weight] = (cg_kernel_impl){plan_conv1d, emit_conv1d_grad_weight};
}
