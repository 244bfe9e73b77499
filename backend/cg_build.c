/* Helpers for emitting kernels with the LLVM C API: the kernel ABI wrapper,
 * kernel keys, loops, locals, branches, index arithmetic, scalar and vector
 * memory access and intrinsics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "cg_internal.h"

/* Reports an error about the node being compiled. */
attnc_status cg_error(cg_emit *e, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ir_diag_error(e->d, e->n->loc.file, e->n->loc.line, "%s %%%d: %s", ir_op_info_get(e->n->op)->name, e->n->id,
                msg);
  return ATTNC_ERUNTIME;
}

/* Appends "name=value" text of every attribute of 'n' to buf at *len. */
static void key_attrs(const ir_node *n, char *buf, size_t size, size_t *len) {
  const ir_op_info *info = ir_op_info_get(n->op);
  for (int a = 0; a < info->nattrs && *len < size; a++) {
    const ir_attr *at = &n->attrs[a];
    int w = 0;
    switch (info->attrs[a].kind) {
    case IR_ATTR_INT:
      w = snprintf(buf + *len, size - *len, ";%lld", (long long)at->ints[0]);
      break;
    case IR_ATTR_INTS:
      w = snprintf(buf + *len, size - *len, ";");
      for (int i = 0; i < at->n && *len + (size_t)w < size; i++)
        w += snprintf(buf + *len + w, size - *len - w, "%lld,", (long long)at->ints[i]);
      break;
    case IR_ATTR_FLOAT:
      w = snprintf(buf + *len, size - *len, ";%.17g", at->f);
      break;
    case IR_ATTR_STR:
      w = snprintf(buf + *len, size - *len, ";%s", at->s ? at->s : "");
      break;
    }
    *len += (size_t)w;
  }
}

/* Writes the identity of the kernel of 'n' (op, types, attributes). */
void cg_kernel_key(const ir_graph *g, const ir_node *n, char *buf, size_t size) {
  size_t len = 0;
  char t[128];
  ir_type_format(&n->type, t, sizeof t);
  len += (size_t)snprintf(buf, size, "%s %s(", ir_op_info_get(n->op)->name, t);
  for (int i = 0; i < n->nin && len < size; i++) {
    ir_type_format(&g->nodes[n->in[i]]->type, t, sizeof t);
    len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "," : "", t);
  }
  if (len < size) len += (size_t)snprintf(buf + len, size - len, ")");
  if (len < size) key_attrs(n, buf, size, &len);
  if (len >= size) buf[size - 1] = 0;
}

/* Row-major strides of 't'. */
void cg_strides(const ir_type *t, int64_t *s) {
  int64_t acc = 1;
  for (int i = t->rank - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= t->dims[i];
  }
}

/* Strides reading 'in' broadcast to 'out' (0 on broadcast axes). */
void cg_broadcast_strides(const ir_type *in, const ir_type *out, int64_t *s) {
  int64_t own[IR_MAX_RANK];
  cg_strides(in, own);
  int off = out->rank - in->rank;
  for (int i = 0; i < out->rank; i++) {
    int j = i - off;
    s[i] = (j < 0 || in->dims[j] == 1) ? 0 : own[j];
  }
}

LLVMTypeRef cg_type(cg_emit *e, ir_dtype dt) {
  switch (dt) {
  case IR_F64: return e->t_f64;
  case IR_I64: return e->t_i64;
  default: return e->t_f32;
  }
}

LLVMValueRef cg_i64(cg_emit *e, int64_t v) { return LLVMConstInt(e->t_i64, (unsigned long long)v, 1); }

/* A constant of dtype 'dt'. */
LLVMValueRef cg_const(cg_emit *e, ir_dtype dt, double v) {
  if (dt == IR_I64) return cg_i64(e, (int64_t)v);
  return LLVMConstReal(cg_type(e, dt), v);
}

/* Starts a counted loop; returns its induction variable. */
LLVMValueRef cg_loop_begin(cg_emit *e, cg_loop *l, LLVMValueRef start, LLVMValueRef end,
                           int64_t step) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  l->head = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "loop");
  l->body = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "done");
  l->end = end;
  l->step = step;
  LLVMBuildBr(e->b, l->head);
  LLVMPositionBuilderAtEnd(e->b, l->head);
  l->iv = LLVMBuildPhi(e->b, e->t_i64, "i");
  LLVMAddIncoming(l->iv, &start, &pre, 1);
  LLVMValueRef c = LLVMBuildICmp(e->b, LLVMIntSLT, l->iv, end, "");
  LLVMBuildCondBr(e->b, c, l->body, l->exit);
  LLVMPositionBuilderAtEnd(e->b, l->body);
  return l->iv;
}

/* Closes the innermost loop opened by cg_loop_begin. */
void cg_loop_end(cg_emit *e, cg_loop *l) {
  LLVMValueRef next = LLVMBuildNSWAdd(e->b, l->iv, cg_i64(e, l->step), "");
  LLVMBasicBlockRef from = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, l->head);
  LLVMAddIncoming(l->iv, &next, &from, 1);
  LLVMPositionBuilderAtEnd(e->b, l->exit);
}

/* One llvm.loop hint: its name and its value (none if 'bits' is 0, else
 * an i1 or i32 constant). */
typedef struct {
  const char *name;
  int bits, value;
} loop_hint;

/* Most hints one loop gets (cg_loop_reorder's two). */
#define MAX_LOOP_HINTS 2

/* Sets the 'count' (<= MAX_LOOP_HINTS) hints on the back edge of closed
 * loop 'l': a self-referencing llvm.loop node. */
static void loop_hints(cg_emit *e, const cg_loop *l, int count, const loop_hint *h) {
  LLVMValueRef br = LLVMGetBasicBlockTerminator(LLVMGetIncomingBlock(l->iv, 1));
  LLVMMetadataRef ops[1 + MAX_LOOP_HINTS];
  if (count > MAX_LOOP_HINTS) count = MAX_LOOP_HINTS;
  ops[0] = LLVMTemporaryMDNode(e->ctx, NULL, 0);
  for (int k = 0; k < count; k++) {
    LLVMMetadataRef md[2] = {LLVMMDStringInContext2(e->ctx, h[k].name, strlen(h[k].name)), NULL};
    if (h[k].bits)
      md[1] = LLVMValueAsMetadata(
          LLVMConstInt(LLVMIntTypeInContext(e->ctx, (unsigned)h[k].bits), (unsigned long long)h[k].value, 0));
    ops[k + 1] = LLVMMDNodeInContext2(e->ctx, md, h[k].bits ? 2 : 1);
  }
  LLVMMetadataRef id = LLVMMDNodeInContext2(e->ctx, ops, (size_t)count + 1);
  LLVMMetadataReplaceAllUsesWith(ops[0], id);
  LLVMSetMetadata(br, LLVMGetMDKindIDInContext(e->ctx, "llvm.loop", 9), LLVMMetadataAsValue(e->ctx, id));
}

void cg_loop_no_unroll(cg_emit *e, const cg_loop *l) {
  loop_hints(e, l, 1, (const loop_hint[]){{"llvm.loop.unroll.disable", 0, 0}});
}

void cg_loop_reorder(cg_emit *e, const cg_loop *l) {
  loop_hints(e, l, 2,
             (const loop_hint[]){{"llvm.loop.vectorize.enable", 1, 1},
                                 {"llvm.loop.vectorize.width", 32, cg_host_vector_floats()}});
}

/* A local variable initialized to 'init'. */
LLVMValueRef cg_var_new(cg_emit *e, LLVMTypeRef t, LLVMValueRef init) {
  LLVMBuilderRef b = LLVMCreateBuilderInContext(e->ctx);
  LLVMValueRef first = LLVMGetFirstInstruction(e->entry);
  if (first)
    LLVMPositionBuilderBefore(b, first);
  else
    LLVMPositionBuilderAtEnd(b, e->entry);
  LLVMValueRef v = LLVMBuildAlloca(b, t, "v");
  LLVMDisposeBuilder(b);
  if (init) LLVMBuildStore(e->b, init, v);
  return v;
}

LLVMValueRef cg_var_get(cg_emit *e, LLVMValueRef var) {
  return LLVMBuildLoad2(e->b, LLVMGetAllocatedType(var), var, "");
}

void cg_var_set(cg_emit *e, LLVMValueRef var, LLVMValueRef v) { LLVMBuildStore(e->b, v, var); }

/* Opens a conditional block. */
void cg_if_begin(cg_emit *e, cg_if *c, LLVMValueRef cond) {
  c->then_bb = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "then");
  c->else_bb = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "else");
  c->end_bb = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "endif");
  c->has_else = 0;
  LLVMBuildCondBr(e->b, cond, c->then_bb, c->else_bb);
  LLVMPositionBuilderAtEnd(e->b, c->then_bb);
}

/* Switches to the else part. */
void cg_if_else(cg_emit *e, cg_if *c) {
  LLVMBuildBr(e->b, c->end_bb);
  LLVMPositionBuilderAtEnd(e->b, c->else_bb);
  c->has_else = 1;
}

/* Closes the conditional. */
void cg_if_end(cg_emit *e, cg_if *c) {
  LLVMBuildBr(e->b, c->end_bb);
  if (!c->has_else) {
    LLVMPositionBuilderAtEnd(e->b, c->else_bb);
    LLVMBuildBr(e->b, c->end_bb);
  }
  LLVMPositionBuilderAtEnd(e->b, c->end_bb);
}

LLVMValueRef cg_add(cg_emit *e, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildNSWAdd(e->b, a, b, "");
}
LLVMValueRef cg_sub(cg_emit *e, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildNSWSub(e->b, a, b, "");
}
LLVMValueRef cg_mul(cg_emit *e, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildNSWMul(e->b, a, b, "");
}
LLVMValueRef cg_min(cg_emit *e, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, a, b, ""), a, b, "");
}
LLVMValueRef cg_max(cg_emit *e, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSGT, a, b, ""), a, b, "");
}

/* a*k + c. */
LLVMValueRef cg_affine(cg_emit *e, LLVMValueRef a, int64_t k, int64_t c) {
  LLVMValueRef v = k == 1 ? a : cg_mul(e, a, cg_i64(e, k));
  return c ? cg_add(e, v, cg_i64(e, c)) : v;
}

/* Element type of a typed pointer (typed pointers in LLVM 14). */
static LLVMTypeRef elem_of(LLVMValueRef ptr) { return LLVMGetElementType(LLVMTypeOf(ptr)); }

LLVMValueRef cg_gep(cg_emit *e, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(e->b, elem_of(base), base, &idx, 1, "");
}

LLVMValueRef cg_load(cg_emit *e, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildLoad2(e->b, elem_of(base), cg_gep(e, base, idx), "");
}

void cg_store(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v) {
  LLVMBuildStore(e->b, v, cg_gep(e, base, idx));
}

LLVMTypeRef cg_vec_type(cg_emit *e, ir_dtype dt, int width) {
  return LLVMVectorType(cg_type(e, dt), (unsigned)width);
}

/* Pointer to a vector of 'width' elements at base + idx. */
static LLVMValueRef vec_ptr(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, int width) {
  LLVMTypeRef vt = LLVMVectorType(elem_of(base), (unsigned)width);
  return LLVMBuildBitCast(e->b, cg_gep(e, base, idx), LLVMPointerType(vt, 0), "");
}

LLVMValueRef cg_vload(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, int width) {
  LLVMValueRef p = vec_ptr(e, base, idx, width);
  LLVMValueRef v = LLVMBuildLoad2(e->b, LLVMGetElementType(LLVMTypeOf(p)), p, "");
  LLVMSetAlignment(v, elem_of(base) == e->t_f32 ? 4 : 8);
  return v;
}

void cg_vstore(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v) {
  int width = (int)LLVMGetVectorSize(LLVMTypeOf(v));
  LLVMValueRef s = LLVMBuildStore(e->b, v, vec_ptr(e, base, idx, width));
  LLVMSetAlignment(s, elem_of(base) == e->t_f32 ? 4 : 8);
}

LLVMValueRef cg_splat(cg_emit *e, LLVMValueRef scalar, int width) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(scalar), (unsigned)width);
  LLVMValueRef v = LLVMBuildInsertElement(e->b, LLVMGetUndef(vt), scalar, LLVMConstInt(e->t_i32, 0, 0), "");
  LLVMValueRef *zeros = calloc((size_t)width, sizeof *zeros);
  for (int i = 0; i < width; i++) zeros[i] = LLVMConstInt(e->t_i32, 0, 0);
  LLVMValueRef mask = LLVMConstVector(zeros, (unsigned)width);
  free(zeros);
  return LLVMBuildShuffleVector(e->b, v, LLVMGetUndef(vt), mask, "");
}

/* The lane mask <i < count> of a vector of 'width'. */
static LLVMValueRef first_mask(cg_emit *e, int width, int count) {
  LLVMValueRef *bits = calloc((size_t)width, sizeof *bits);
  for (int i = 0; i < width; i++) bits[i] = LLVMConstInt(e->t_i1, i < count, 0);
  LLVMValueRef m = LLVMConstVector(bits, (unsigned)width);
  free(bits);
  return m;
}

/* Returns the declaration of intrinsic 'name' overloaded on 'types'. */
static LLVMValueRef intrinsic_decl(cg_emit *e, const char *name, LLVMTypeRef *types, int ntypes) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  return LLVMGetIntrinsicDeclaration(e->mod, id, types, (size_t)ntypes);
}

/* Calls intrinsic 'name' overloaded on 'types'. */
static LLVMValueRef call_intrinsic(cg_emit *e, const char *name, LLVMTypeRef *types, int ntypes,
                                   LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = intrinsic_decl(e, name, types, ntypes);
  LLVMTypeRef ft = LLVMIntrinsicGetType(e->ctx, id, types, (size_t)ntypes);
  return LLVMBuildCall2(e->b, ft, f, args, (unsigned)nargs, "");
}

LLVMValueRef cg_vload_first(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, int width, int count) {
  if (count >= width) return cg_vload(e, base, idx, width);
  LLVMValueRef p = vec_ptr(e, base, idx, width);
  LLVMTypeRef vt = LLVMGetElementType(LLVMTypeOf(p));
  LLVMTypeRef types[2] = {vt, LLVMTypeOf(p)};
  LLVMValueRef args[4] = {p, LLVMConstInt(e->t_i32, elem_of(base) == e->t_f32 ? 4 : 8, 0),
                          first_mask(e, width, count),
                          LLVMConstNull(vt)};
  return call_intrinsic(e, "llvm.masked.load", types, 2, args, 4);
}

void cg_vstore_first(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v, int count) {
  int width = (int)LLVMGetVectorSize(LLVMTypeOf(v));
  if (count >= width) {
    cg_vstore(e, base, idx, v);
    return;
  }
  LLVMValueRef p = vec_ptr(e, base, idx, width);
  LLVMTypeRef types[2] = {LLVMTypeOf(v), LLVMTypeOf(p)};
  LLVMValueRef args[4] = {v, p, LLVMConstInt(e->t_i32, elem_of(base) == e->t_f32 ? 4 : 8, 0),
                          first_mask(e, width, count)};
  call_intrinsic(e, "llvm.masked.store", types, 2, args, 4);
}

LLVMValueRef cg_every_other(cg_emit *e, LLVMValueRef v, int first, int n) {
  LLVMValueRef mask[64];
  for (int i = 0; i < n; i++) mask[i] = LLVMConstInt(e->t_i32, (unsigned long long)(2 * i + first), 0);
  return LLVMBuildShuffleVector(e->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(mask, (unsigned)n), "");
}

LLVMValueRef cg_cycle_count(cg_emit *e) { return call_intrinsic(e, "llvm.readcyclecounter", NULL, 0, NULL, 0); }

void cg_prefetch(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, int write) {
  LLVMValueRef p = LLVMBuildBitCast(e->b, cg_gep(e, base, idx), LLVMPointerType(e->t_i8, 0), "");
  LLVMTypeRef types[1] = {LLVMTypeOf(p)};
  LLVMValueRef args[4] = {p, LLVMConstInt(e->t_i32, (unsigned long long)(write != 0), 0), LLVMConstInt(e->t_i32, 3, 0),
                          LLVMConstInt(e->t_i32, 1, 0)};
  call_intrinsic(e, "llvm.prefetch", types, 1, args, 4);
}

/* One prefetch per 64-byte line of elements from 'at' (a line holds 16
 * floats or 8 doubles), and one at the last element when the row does not
 * end on a line start, for rows that do not start on one. */
void cg_prefetch_row(cg_emit *e, LLVMValueRef base, LLVMValueRef at, int64_t n, int write) {
  int64_t line = elem_of(base) == e->t_f32 ? 16 : 8;
  for (int64_t j = 0; j < n; j += line) cg_prefetch(e, base, cg_add(e, at, cg_i64(e, j)), write);
  if (n > 1 && (n - 1) % line) cg_prefetch(e, base, cg_add(e, at, cg_i64(e, n - 1)), write);
}

/* Transposes the square matrix of vectors v in log2(n) rounds of
 * two-vector shuffles; round k swaps bit k of the row and lane indices. */
void cg_vtranspose(cg_emit *e, LLVMValueRef *v, int n) {
  for (int k = 1; k < n; k *= 2) {
    LLVMValueRef lo[64], hi[64];
    for (int l = 0; l < n; l++) {
      lo[l] = LLVMConstInt(e->t_i32, (unsigned long long)(l & k ? n + l - k : l), 0);
      hi[l] = LLVMConstInt(e->t_i32, (unsigned long long)(l & k ? n + l : l + k), 0);
    }
    LLVMValueRef mlo = LLVMConstVector(lo, (unsigned)n), mhi = LLVMConstVector(hi, (unsigned)n);
    for (int i = 0; i < n; i++) {
      if (i & k) continue;
      LLVMValueRef a = v[i], b = v[i | k];
      v[i] = LLVMBuildShuffleVector(e->b, a, b, mlo, "");
      v[i | k] = LLVMBuildShuffleVector(e->b, a, b, mhi, "");
    }
  }
}

/* Horizontal sum, as a tree of halving shuffles (a fixed order). */
LLVMValueRef cg_vsum(cg_emit *e, LLVMValueRef v) {
  int width = (int)LLVMGetVectorSize(LLVMTypeOf(v));
  while (width > 1) {
    int h = width / 2;
    LLVMValueRef lo[32], hi[32];
    for (int i = 0; i < h; i++) {
      lo[i] = LLVMConstInt(e->t_i32, (unsigned long long)i, 0);
      hi[i] = LLVMConstInt(e->t_i32, (unsigned long long)(i + h), 0);
    }
    LLVMValueRef a = LLVMBuildShuffleVector(e->b, v, v, LLVMConstVector(lo, (unsigned)h), "");
    LLVMValueRef c = LLVMBuildShuffleVector(e->b, v, v, LLVMConstVector(hi, (unsigned)h), "");
    v = LLVMBuildFAdd(e->b, a, c, "");
    width = h;
  }
  return LLVMBuildExtractElement(e->b, v, LLVMConstInt(e->t_i32, 0, 0), "");
}

/* A typed pointer at 'byte_offset' into the byte buffer 'base'. */
static LLVMValueRef typed_at(cg_emit *e, LLVMValueRef base, int64_t byte_offset, ir_dtype dt) {
  LLVMValueRef off = cg_i64(e, byte_offset);
  LLVMValueRef p = LLVMBuildInBoundsGEP2(e->b, e->t_i8, base, &off, 1, "");
  return LLVMBuildBitCast(e->b, p, LLVMPointerType(cg_type(e, dt), 0), "");
}

LLVMValueRef cg_scratch(cg_emit *e, int64_t byte_offset, ir_dtype dt) { return typed_at(e, e->scratch, byte_offset, dt); }

LLVMValueRef cg_shared(cg_emit *e, int64_t byte_offset, ir_dtype dt) { return typed_at(e, e->shared, byte_offset, dt); }

LLVMValueRef cg_intrinsic_fixed(cg_emit *e, const char *name, LLVMValueRef *args, int nargs) {
  return call_intrinsic(e, name, NULL, 0, args, nargs);
}

LLVMValueRef cg_intrinsic(cg_emit *e, const char *name, LLVMValueRef *args, int nargs) {
  LLVMTypeRef t = LLVMTypeOf(args[0]);
  return call_intrinsic(e, name, &t, 1, args, nargs);
}

LLVMValueRef cg_fma(cg_emit *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return cg_intrinsic(e, "llvm.fmuladd", args, 3);
}

LLVMValueRef cg_const_of(LLVMTypeRef t, double c) {
  int width = LLVMGetTypeKind(t) == LLVMVectorTypeKind ? (int)LLVMGetVectorSize(t) : 0;
  LLVMTypeRef et = width ? LLVMGetElementType(t) : t;
  LLVMValueRef s = LLVMGetTypeKind(et) == LLVMIntegerTypeKind ? LLVMConstInt(et, (unsigned long long)(int64_t)c, 1)
                                                             : LLVMConstReal(et, c);
  if (!width) return s;
  LLVMValueRef few[64], *lanes = width <= 64 ? few : malloc(sizeof *lanes * (size_t)width);
  if (!lanes) return NULL;
  for (int i = 0; i < width; i++) lanes[i] = s;
  LLVMValueRef v = LLVMConstVector(lanes, (unsigned)width);
  if (lanes != few) free(lanes);
  return v;
}

/* 2^n for i32 n in [-126, 127] as the float of the same shape as type 't'. */
static LLVMValueRef pow2_of(cg_emit *e, LLVMValueRef n, LLVMTypeRef it, LLVMTypeRef t) {
  LLVMValueRef biased = LLVMBuildAdd(e->b, n, cg_const_of(it, 127), "");
  return LLVMBuildBitCast(e->b, LLVMBuildShl(e->b, biased, cg_const_of(it, 23), ""), t, "");
}

LLVMValueRef cg_exp(cg_emit *e, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  int vec = LLVMGetTypeKind(t) == LLVMVectorTypeKind;
  if ((vec ? LLVMGetElementType(t) : t) != e->t_f32) return cg_intrinsic(e, "llvm.exp", &x, 1);
  LLVMBuilderRef b = e->b;
  /* clamp to [-104, 89]: exp rounds to 0 below, to inf above; a NaN
   * passes both selects and is returned as it is at the end */
  LLVMValueRef lo = cg_const_of(t, -104.0), hi = cg_const_of(t, 89.0);
  LLVMValueRef c = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, lo, ""), lo, x, "");
  c = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, c, hi, ""), hi, c, "");
  /* x = n ln2 + r, |r| <= ln2 / 2, ln2 split in two for an exact n ln2 */
  LLVMValueRef fn = cg_fma(e, c, cg_const_of(t, 1.44269504088896341), cg_const_of(t, 0.5));
  fn = cg_intrinsic(e, "llvm.floor", &fn, 1);
  LLVMValueRef r = cg_fma(e, fn, cg_const_of(t, -0.693359375), c);
  r = cg_fma(e, fn, cg_const_of(t, 2.12194440e-4), r);
  /* exp(r) = 1 + r + r^2 p(r), Cephes' expf coefficients */
  static const double poly[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                                4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  LLVMValueRef y = cg_const_of(t, poly[0]);
  for (int i = 1; i < 6; i++) y = cg_fma(e, y, r, cg_const_of(t, poly[i]));
  y = cg_fma(e, y, LLVMBuildFMul(b, r, r, ""), LLVMBuildFAdd(b, r, cg_const_of(t, 1.0), ""));
  /* times 2^n as 2^(n/2) 2^(n - n/2): n in [-150, 129] leaves both
   * factors normal, so results near the ends come out subnormal or inf
   * by the multiplication's own rounding */
  LLVMTypeRef it = vec ? LLVMVectorType(e->t_i32, LLVMGetVectorSize(t)) : e->t_i32;
  LLVMValueRef n = LLVMBuildFPToSI(b, fn, it, "");
  LLVMValueRef n1 = LLVMBuildAShr(b, n, cg_const_of(it, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(b, n, n1, "");
  y = LLVMBuildFMul(b, LLVMBuildFMul(b, y, pow2_of(e, n1, it, t), ""), pow2_of(e, n2, it, t), "");
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, y, "");
}

/* Adds string attribute key=value to function 'f'. */
static void add_fn_attr(LLVMContextRef ctx, LLVMValueRef f, const char *k, const char *v) {
  LLVMAttributeRef a = LLVMCreateStringAttribute(ctx, k, (unsigned)strlen(k), v, (unsigned)strlen(v));
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, a);
}

/* Adds enum attribute 'name' at index 'idx' of 'f'. */
static void add_enum_attr(LLVMContextRef ctx, LLVMValueRef f, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(f, idx, LLVMCreateEnumAttribute(ctx, kind, 0));
}

/* Host vector width in f32 lanes (from LLVM's host feature string), or
 * ATTNC_VECTOR_FLOATS (4, 8 or 16) when set: the tests run the kernels
 * of the other widths with it (wider than the host's vectors, LLVM splits
 * them; slow but exact). */
int cg_host_vector_floats(void) {
  static int lanes;
  if (!lanes) {
    const char *env = getenv("ATTNC_VECTOR_FLOATS");
    if (env && (!strcmp(env, "4") || !strcmp(env, "8") || !strcmp(env, "16"))) {
      lanes = atoi(env);
    } else {
      char *f = LLVMGetHostCPUFeatures();
      lanes = strstr(f, "+avx512f") ? 16 : strstr(f, "+avx2") || strstr(f, "+avx,") ? 8 : 4;
      LLVMDisposeMessage(f);
    }
  }
  return lanes;
}

/* Sets the attributes every kernel function gets: the host's full vector
 * width, no unwinding. */
void cg_kernel_attrs(LLVMContextRef ctx, LLVMValueRef f) {
  const char *bits = cg_host_vector_floats() == 16 ? "512" : cg_host_vector_floats() == 8 ? "256" : "128";
  add_fn_attr(ctx, f, "prefer-vector-width", bits);
  add_fn_attr(ctx, f, "min-legal-vector-width", bits);
  add_enum_attr(ctx, f, LLVMAttributeFunctionIndex, "nounwind");
}

/* Points 'e' at module 'm' and fills its type shorthands. */
void cg_emit_init(cg_emit *e, LLVMModuleRef m) {
  e->ctx = LLVMGetModuleContext(m);
  e->mod = m;
  e->t_void = LLVMVoidTypeInContext(e->ctx);
  e->t_i1 = LLVMInt1TypeInContext(e->ctx);
  e->t_i8 = LLVMInt8TypeInContext(e->ctx);
  e->t_i32 = LLVMInt32TypeInContext(e->ctx);
  e->t_i64 = LLVMInt64TypeInContext(e->ctx);
  e->t_f32 = LLVMFloatTypeInContext(e->ctx);
  e->t_f64 = LLVMDoubleTypeInContext(e->ctx);
}

/* The function type of the kernel ABI: void(i8** args, i64 begin, i64 end, i8* scratch). */
LLVMTypeRef cg_kernel_abi_type(cg_emit *e) {
  LLVMTypeRef i8p = LLVMPointerType(e->t_i8, 0);
  LLVMTypeRef params[4] = {LLVMPointerType(i8p, 0), e->t_i64, e->t_i64, i8p};
  return LLVMFunctionType(e->t_void, params, 4, 0);
}

/* Emits the entry wrapper 'name'(i8** args, i64, i64, i8*) calling 'body'
 * with each of its 'nbuf' buffers cast to its element type. */
static void build_wrapper(cg_emit *e, const char *name, LLVMValueRef body, LLVMTypeRef body_t,
                          LLVMTypeRef *ptypes, int nbuf) {
  LLVMTypeRef i8p = LLVMPointerType(e->t_i8, 0);
  LLVMValueRef w = LLVMAddFunction(e->mod, name, cg_kernel_abi_type(e));
  cg_kernel_attrs(e->ctx, w);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(e->ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(e->ctx, w, "entry"));
  int np = nbuf + 3;
  LLVMValueRef *args = calloc((size_t)np, sizeof *args);
  for (int i = 0; i < nbuf; i++) {
    LLVMValueRef idx = LLVMConstInt(e->t_i64, (unsigned long long)i, 0);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(b, i8p, LLVMGetParam(w, 0), &idx, 1, "");
    LLVMValueRef raw = LLVMBuildLoad2(b, i8p, slot, "");
    args[i] = LLVMBuildBitCast(b, raw, ptypes[i], "");
  }
  args[nbuf] = LLVMGetParam(w, 1);
  args[nbuf + 1] = LLVMGetParam(w, 2);
  args[nbuf + 2] = LLVMGetParam(w, 3);
  LLVMBuildCall2(b, body_t, body, args, (unsigned)np, "");
  LLVMBuildRetVoid(b);
  LLVMDisposeBuilder(b);
  free(args);
}

/* Emits kernel 'name' for node 'n'. */
attnc_status cg_build_kernel(LLVMModuleRef m, const char *name, const ir_graph *g,
                             const ir_node *n, const cg_kernel_impl *impl, const cg_plan *p,
                             ir_diag *d) {
  cg_emit e;
  memset(&e, 0, sizeof e);
  cg_emit_init(&e, m);
  e.g = g;
  e.n = n;
  e.d = d;
  e.nargs = 1 + n->nin;
  int nbuf = e.nargs + (p->shared_bytes > 0); /* the plan's shared buffer after the node's */
  int np = nbuf + 3;
  LLVMTypeRef *pt = calloc((size_t)np, sizeof *pt);
  e.arg = calloc((size_t)e.nargs, sizeof *e.arg);
  if (!pt || !e.arg) {
    free(pt);
    free(e.arg);
    ir_diag_error(d, NULL, 0, "out of memory building kernel %s", name);
    return ATTNC_ENOMEM;
  }
  for (int i = 0; i < e.nargs; i++) {
    const ir_type *t = i == 0 ? &n->type : &g->nodes[n->in[i - 1]]->type;
    pt[i] = LLVMPointerType(cg_type(&e, t->dtype), 0);
  }
  if (nbuf > e.nargs) pt[e.nargs] = LLVMPointerType(e.t_i8, 0);
  pt[nbuf] = e.t_i64;
  pt[nbuf + 1] = e.t_i64;
  pt[nbuf + 2] = LLVMPointerType(e.t_i8, 0);
  char body_name[160];
  snprintf(body_name, sizeof body_name, "%s.body", name);
  LLVMTypeRef ft = LLVMFunctionType(e.t_void, pt, (unsigned)np, 0);
  e.fn = LLVMAddFunction(m, body_name, ft);
  LLVMSetLinkage(e.fn, LLVMInternalLinkage);
  cg_kernel_attrs(e.ctx, e.fn);
  for (int i = 0; i < e.nargs; i++) {
    e.arg[i] = LLVMGetParam(e.fn, (unsigned)i);
    add_enum_attr(e.ctx, e.fn, (unsigned)i + 1, "noalias");
  }
  if (nbuf > e.nargs) e.shared = LLVMGetParam(e.fn, (unsigned)e.nargs);
  e.begin = LLVMGetParam(e.fn, (unsigned)nbuf);
  e.end = LLVMGetParam(e.fn, (unsigned)nbuf + 1);
  e.scratch = LLVMGetParam(e.fn, (unsigned)nbuf + 2);
  e.b = LLVMCreateBuilderInContext(e.ctx);
  e.entry = LLVMAppendBasicBlockInContext(e.ctx, e.fn, "entry");
  LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(e.ctx, e.fn, "start");
  LLVMPositionBuilderAtEnd(e.b, start);
  attnc_status st = impl->emit(&e, p);
  if (st == ATTNC_OK) {
    LLVMBuildRetVoid(e.b);
    LLVMPositionBuilderAtEnd(e.b, e.entry);
    LLVMBuildBr(e.b, start);
    build_wrapper(&e, name, e.fn, ft, pt, nbuf);
  }
  LLVMDisposeBuilder(e.b);
  free(pt);
  free(e.arg);
  return st;
}
