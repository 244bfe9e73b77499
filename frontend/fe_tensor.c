/* Tensors of the spec language and the C primitives behind models/nn.lua:
 * a tensor is a userdata naming an IR node; every primitive appends nodes
 * with the spec location and module scope, and raises a Lua error carrying
 * the verifier's diagnostic when shape inference fails. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "fe_internal.h"

#define TENSOR_MT "attnc.tensor"
#define METHODS_KEY "attnc.tensor_methods"

typedef struct {
  int id;
} fe_tensor;

/* Pushes a new tensor userdata for node 'id'. */
void fe_tensor_push(lua_State *L, int id) {
  fe_tensor *t = lua_newuserdatauv(L, sizeof *t, 0);
  t->id = id;
  luaL_setmetatable(L, TENSOR_MT);
}

/* Returns the node id of the tensor at 'idx' or raises an error. */
int fe_tensor_check(lua_State *L, int idx) {
  fe_tensor *t = luaL_testudata(L, idx, TENSOR_MT);
  if (!t) luaL_error(L, "expected a tensor, got %s", luaL_typename(L, idx));
  return t->id;
}

/* Returns the type of the tensor at 'idx'. */
static const ir_type *tensor_type(lua_State *L, int idx) {
  int id = fe_tensor_check(L, idx);
  return &fe_state_get(L)->g->nodes[id]->type;
}

/* Returns the location of the innermost spec frame, in the current scope. */
ir_loc fe_here(lua_State *L) {
  fe_state *st = fe_state_get(L);
  lua_Debug ar;
  const char *scope = st->scope && st->scope[0] ? st->scope : NULL;
  if (fe_spec_frame(L, 1, &ar)) return ir_graph_loc(st->g, ar.source + 1, ar.currentline, scope);
  return ir_graph_loc(st->g, NULL, 0, scope);
}

/* Infers node n's type, raising the diagnostic as a Lua error on failure. */
static void infer_or_raise(lua_State *L, ir_node *n) {
  fe_state *st = fe_state_get(L);
  ir_diag *d = ir_diag_create();
  if (ir_infer_node(st->g, n, d) == 0) {
    ir_diag_destroy(d);
    return;
  }
  lua_pushstring(L, ir_diag_count(d) ? ir_diag_message(d, 0) : "shape inference failed");
  ir_diag_destroy(d);
  st->shape_error = 1;
  lua_error(L);
}

/* Pushes the dims of type t as a Lua array. */
static void push_dims(lua_State *L, const ir_type *t) {
  lua_createtable(L, t->rank, 0);
  for (int i = 0; i < t->rank; i++) {
    lua_pushinteger(L, t->dims[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Reads an array of integers at 'idx' into v (at most 'max'); returns the count. */
static int check_ints(lua_State *L, int idx, int64_t *v, int max, const char *what) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int n = (int)lua_rawlen(L, idx);
  if (n > max) luaL_error(L, "%s: at most %d values, got %d", what, max, n);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    int ok;
    v[i] = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "%s: entry %d is not an integer", what, i + 1);
    lua_pop(L, 1);
  }
  return n;
}

/* Sets attribute 'name' of n from the Lua value at 'idx'. */
static void set_attr(lua_State *L, ir_node *n, const char *name, int idx) {
  int slot = ir_op_attr_index(n->op, name);
  const char *opname = ir_op_info_get(n->op)->name;
  if (slot < 0) luaL_error(L, "%s has no attribute '%s'", opname, name);
  int rc = 0, ok = 1;
  switch (ir_op_info_get(n->op)->attrs[slot].kind) {
  case IR_ATTR_INT: {
    int64_t v = lua_tointegerx(L, idx, &ok);
    if (ok) rc = ir_set_int(n, name, v);
    break;
  }
  case IR_ATTR_INTS: {
    int64_t v[IR_MAX_INTS];
    if (lua_type(L, idx) == LUA_TNUMBER) {
      v[0] = lua_tointegerx(L, idx, &ok);
      if (ok) rc = ir_set_ints(n, name, v, 1);
    } else {
      int cnt = check_ints(L, idx, v, IR_MAX_INTS, name);
      rc = ir_set_ints(n, name, v, cnt);
    }
    break;
  }
  case IR_ATTR_FLOAT: {
    double v = lua_tonumberx(L, idx, &ok);
    if (ok) rc = ir_set_float(n, name, v);
    break;
  }
  case IR_ATTR_STR:
    ok = lua_type(L, idx) == LUA_TSTRING;
    if (ok) rc = ir_set_str(n, name, lua_tostring(L, idx));
    break;
  }
  if (!ok || rc) luaL_error(L, "%s: bad value for attribute '%s'", opname, name);
}

/* C.op(name, {inputs...}, {attr = value, ...}) -> tensor. */
static int prim_op(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int op = ir_op_lookup(name);
  if (op < 0) return luaL_error(L, "unknown op '%s'", name);
  if (ir_op_info_get((ir_opcode)op)->flags & IR_OPF_SOURCE)
    return luaL_error(L, "op '%s' is a source; use nn.Parameter/nn.Buffer", name);
  int nin = (int)lua_rawlen(L, 2);
  if (nin > 64) return luaL_error(L, "%s: too many operands", name);
  int in[64];
  for (int i = 0; i < nin; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (!luaL_testudata(L, -1, TENSOR_MT))
      return luaL_error(L, "%s: operand %d is a %s, not a tensor", name, i + 1, luaL_typename(L, -1));
    in[i] = fe_tensor_check(L, -1);
    lua_pop(L, 1);
  }
  fe_state *st = fe_state_get(L);
  ir_node *n = ir_graph_append(st->g, (ir_opcode)op, in, nin, fe_here(L));
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "%s: attribute names must be strings", name);
      set_attr(L, n, lua_tostring(L, -2), lua_gettop(L));
      lua_pop(L, 1);
    }
  }
  infer_or_raise(L, n);
  fe_tensor_push(L, n->id);
  return 1;
}

/* C.const(value, like) -> scalar const tensor of like's dtype (f32 if none). */
static int prim_const(lua_State *L) {
  double v = luaL_checknumber(L, 1);
  ir_dtype dt = lua_isnoneornil(L, 2) ? IR_F32 : tensor_type(L, 2)->dtype;
  fe_state *st = fe_state_get(L);
  ir_node *n = ir_graph_source(st->g, IR_OP_const, NULL, v, ir_type_make(dt, 0, NULL), fe_here(L));
  fe_tensor_push(L, n->id);
  return 1;
}

/* C.source(kind, name, {dims}, file, line, scope) -> tensor of a new
 * param/buffer/input node of dtype f32 (i64 for kind "labels"). */
static int prim_source(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int64_t dims[IR_MAX_RANK];
  int rank = check_ints(L, 3, dims, IR_MAX_RANK, "shape");
  for (int i = 0; i < rank; i++)
    if (dims[i] < 0) return luaL_error(L, "%s: negative dimension in shape", name);
  const char *file = luaL_optstring(L, 4, NULL);
  int line = (int)luaL_optinteger(L, 5, 0);
  const char *scope = luaL_optstring(L, 6, NULL);
  ir_opcode op = strcmp(kind, "param") == 0 ? IR_OP_param : strcmp(kind, "buffer") == 0 ? IR_OP_buffer : IR_OP_input;
  if (op == IR_OP_input && strcmp(kind, "input")) return luaL_error(L, "unknown source kind '%s'", kind);
  fe_state *st = fe_state_get(L);
  if (ir_graph_find_source(st->g, op, name)) return luaL_error(L, "%s '%s' defined twice", kind, name);
  ir_loc loc = ir_graph_loc(st->g, file, line, scope && scope[0] ? scope : NULL);
  ir_node *n = ir_graph_source(st->g, op, name, 0, ir_type_make(IR_F32, rank, dims), loc);
  fe_tensor_push(L, n->id);
  return 1;
}

/* C.here() -> file, line of the innermost spec frame (nil if none). */
static int prim_here(lua_State *L) {
  lua_Debug ar;
  if (!fe_spec_frame(L, 1, &ar)) return 0;
  lua_pushstring(L, ar.source + 1);
  lua_pushinteger(L, ar.currentline);
  return 2;
}

/* C.scope(path) -> previous scope; sets the module path of new nodes. */
static int prim_scope(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  fe_state *st = fe_state_get(L);
  lua_pushstring(L, st->scope ? st->scope : "");
  char *copy = strdup(path);
  if (!copy) return luaL_error(L, "out of memory");
  free(st->scope);
  st->scope = copy;
  return 1;
}

/* C.update(name, tensor): records that buffer 'name' ends the training step
 * holding 'tensor' (the last update wins; first-update order is kept). */
static int prim_update(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int id = fe_tensor_check(L, 2);
  fe_state *st = fe_state_get(L);
  for (int i = 0; i < st->nupdates; i++)
    if (strcmp(st->upd_names[i], name) == 0) {
      st->upd_nodes[i] = id;
      return 0;
    }
  if (st->nupdates == st->updcap) {
    int cap = st->updcap ? st->updcap * 2 : 16;
    char **nn = realloc(st->upd_names, (size_t)cap * sizeof *nn);
    if (nn) st->upd_names = nn;
    int *ni = realloc(st->upd_nodes, (size_t)cap * sizeof *ni);
    if (ni) st->upd_nodes = ni;
    if (!nn || !ni) return luaL_error(L, "out of memory");
    st->updcap = cap;
  }
  char *copy = strdup(name);
  if (!copy) return luaL_error(L, "out of memory");
  st->upd_names[st->nupdates] = copy;
  st->upd_nodes[st->nupdates++] = id;
  return 0;
}

/* C.shape(t) -> array of dims; C.dtype(t) -> "f32"...; C.id(t) -> node id. */
static int prim_shape(lua_State *L) {
  push_dims(L, tensor_type(L, 1));
  return 1;
}
static int prim_dtype(lua_State *L) {
  lua_pushstring(L, ir_dtype_name(tensor_type(L, 1)->dtype));
  return 1;
}
static int prim_id(lua_State *L) {
  lua_pushinteger(L, fe_tensor_check(L, 1));
  return 1;
}
/* C.is_tensor(v) -> boolean. */
static int prim_is_tensor(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, TENSOR_MT) != NULL);
  return 1;
}
/* C.training() -> true when lowering the training graph. */
static int prim_training(lua_State *L) {
  lua_pushboolean(L, fe_state_get(L)->req->mode == FE_TRAIN);
  return 1;
}

/* Calls upvalue 1 with the arguments and returns all its results. */
static int wrapped_call(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* Pushes a C closure calling the function at 'idx'. A spec's tail call
 * ("return x:relu()") to a Lua function would replace the spec's frame and
 * lose the op's location; a tail call to a C function keeps it. */
static void push_wrapped(lua_State *L, int idx) {
  lua_pushvalue(L, idx);
  lua_pushcclosure(L, wrapped_call, 1);
}

/* C.wrap(f) -> C closure calling f (see push_wrapped). */
static int prim_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  push_wrapped(L, 1);
  return 1;
}

/* C.set_tensor_methods(t): keys starting with "__" become metamethods of
 * tensors (arithmetic, comparison, length), the others methods. */
static int prim_set_methods(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_getmetatable(L, TENSOR_MT);
  lua_getfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!k) return luaL_error(L, "tensor method names must be strings");
    int meta = strncmp(k, "__", 2) == 0;
    if (meta && (!strcmp(k, "__index") || !strcmp(k, "__metatable") || !strcmp(k, "__gc") || !strcmp(k, "__name")))
      return luaL_error(L, "cannot replace tensor %s", k);
    lua_pushvalue(L, -2);
    if (lua_type(L, -2) == LUA_TFUNCTION) push_wrapped(L, -2);
    else lua_pushvalue(L, -2);
    lua_rawset(L, meta ? 2 : 3);
    lua_pop(L, 1);
  }
  return 0;
}

/* Tensor __index: "shape" gives the dims, other keys the methods. */
static int tensor_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "shape") == 0) {
    push_dims(L, tensor_type(L, 1));
    return 1;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* Tensor __tostring: "tensor %id f32[...]". */
static int tensor_tostring(lua_State *L) {
  char buf[256];
  ir_type_format(tensor_type(L, 1), buf, sizeof buf);
  lua_pushfstring(L, "tensor %%%d %s", fe_tensor_check(L, 1), buf);
  return 1;
}

/* Registers the tensor metatable and the primitives into table 'prims'. */
void fe_tensor_register(lua_State *L, int prims) {
  prims = lua_absindex(L, prims);
  luaL_newmetatable(L, TENSOR_MT);
  lua_pushcfunction(L, tensor_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, tensor_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushstring(L, "tensor");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
  static const luaL_Reg fns[] = {
      {"op", prim_op},         {"const", prim_const},       {"source", prim_source},
      {"here", prim_here},     {"scope", prim_scope},       {"update", prim_update},
      {"shape", prim_shape},   {"dtype", prim_dtype},       {"id", prim_id},
      {"is_tensor", prim_is_tensor}, {"training", prim_training}, {"set_tensor_methods", prim_set_methods},
      {"wrap", prim_wrap},
      {NULL, NULL},
  };
  lua_pushvalue(L, prims);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
