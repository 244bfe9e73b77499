/* The front-end driver: runs a model spec in a fresh sandboxed lua_State,
 * lowers the module it returns (parameters and buffers in state_dict order,
 * then one forward on the input) to an IR graph and verifies it. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "fe_internal.h"

#ifndef ATTNC_MODELS_DIR
#define ATTNC_MODELS_DIR "models"
#endif

const char *const FE_STATE_KEY = "attnc.fe_state";

/* The allocator's ud is the fe_state. */
fe_state *fe_state_get(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* Returns the positive integer in environment variable 'name', or 'def'. */
static long long env_limit(const char *name, long long def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  char *end;
  long long v = strtoll(s, &end, 10);
  return *end || v <= 0 ? def : v;
}

/* Records the error on top of the stack (from a failed load or pcall with
 * Lua status 'status') in st->d; returns the matching attnc status. */
static attnc_status report(lua_State *L, fe_state *st, int status) {
  char lim[256];
  if (status == LUA_ERRMEM) {
    if (fe_sandbox_limit_message(st, lim, sizeof lim)) ir_diag_error(st->d, st->req->path, 0, "%s", lim);
    else ir_diag_error(st->d, st->req->path, 0, "out of memory");
    return ATTNC_ENOMEM;
  }
  const char *msg = lua_tostring(L, -1);
  ir_diag_error(st->d, NULL, 0, "%s", msg ? msg : "error object is not a string");
  if (status == LUA_ERRFILE) return ATTNC_EIO;
  if (st->budget_hit) return ATTNC_ENOMEM;
  if (st->shape_error) return ATTNC_EVERIFY;
  return ATTNC_EPARSE;
}

/* Appends the input node f32[N,C,H,W] from --shape/--batch or the spec's
 * input_shape; returns its id, or -1 after reporting. */
static int add_input(fe_state *st) {
  const fe_request *req = st->req;
  int64_t dims[4] = {req->batch > 0 ? req->batch : 1, 0, 0, 0};
  int given = 0;
  for (int i = 0; i < 3; i++) given += req->shape[i] != 0;
  if (given == 3) {
    memcpy(dims + 1, req->shape, sizeof req->shape);
  } else if (given == 0 && st->has_default_shape) {
    memcpy(dims + 1, st->default_shape, sizeof st->default_shape);
  } else {
    ir_diag_error(st->d, req->path, 0, given ? "input shape needs C, H and W" :
                  "no input shape: pass --shape CxHxW or call input_shape{C, H, W} in the spec");
    return -1;
  }
  for (int i = 0; i < 4; i++)
    if (dims[i] < 1) {
      ir_diag_error(st->d, req->path, 0, "input dimensions must be positive");
      return -1;
    }
  ir_loc loc = ir_graph_loc(st->g, req->path, 0, NULL);
  return ir_graph_source(st->g, IR_OP_input, "input", 0, ir_type_make(IR_F32, 4, dims), loc)->id;
}

/* Training outputs: labels input, loss, updated running statistics. */
static attnc_status add_train_outputs(fe_state *st, int logits) {
  ir_loc loc = ir_graph_loc(st->g, st->req->path, 0, NULL);
  const ir_type *lt = &st->g->nodes[logits]->type;
  int64_t n = lt->rank > 0 ? lt->dims[0] : 1;
  int labels = ir_graph_source(st->g, IR_OP_input, "labels", 0, ir_type_make(IR_I64, 1, &n), loc)->id;
  int in[2] = {logits, labels};
  ir_node *loss = ir_graph_append(st->g, IR_OP_cross_entropy, in, 2, loc);
  if (ir_infer_node(st->g, loss, st->d)) return ATTNC_EVERIFY;
  ir_graph_add_output(st->g, "loss", loss->id);
  for (int i = 0; i < st->nupdates; i++) ir_graph_add_output(st->g, st->upd_names[i], st->upd_nodes[i]);
  return ATTNC_OK;
}

/* Runs the spec and lowers it (called under lua_pcall with the fe_state as
 * light userdata); returns the attnc status as an integer. */
static int lower_main(lua_State *L) {
  fe_state *st = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_pushcfunction(L, fe_sandbox_msgh); /* 1 */
  lua_newtable(L);                       /* 2: primitives */
  fe_tensor_register(L, 2);
  fe_sandbox_push_env(L, 2); /* 3 */
  fe_options_register(L, 3);
  fe_sandbox_install_hook(L);
  int status = fe_sandbox_load_file(L, st->req->path, st->req->path, 3);
  if (status == LUA_OK) status = lua_pcall(L, 0, 1, 1);
  if (status != LUA_OK) {
    lua_pushinteger(L, report(L, st, status));
    return 1;
  }
  int root = lua_gettop(L);
  if (fe_options_check_unused(L, st)) {
    lua_pushinteger(L, ATTNC_EINVAL);
    return 1;
  }
  int input = add_input(st);
  if (input < 0) {
    lua_pushinteger(L, ATTNC_EINVAL);
    return 1;
  }
  /* nn._lower(root, input): emits parameters, runs forward */
  lua_getfield(L, 3, "require");
  lua_pushstring(L, "nn");
  status = lua_pcall(L, 1, 1, 1);
  if (status == LUA_OK) {
    lua_getfield(L, -1, "_lower");
    lua_pushvalue(L, root);
    fe_tensor_push(L, input);
    status = lua_pcall(L, 2, 1, 1);
  }
  if (status != LUA_OK) {
    lua_pushinteger(L, report(L, st, status));
    return 1;
  }
  int logits = fe_tensor_check(L, -1);
  ir_graph_add_output(st->g, "logits", logits);
  attnc_status rc = st->req->mode == FE_TRAIN ? add_train_outputs(st, logits) : ATTNC_OK;
  lua_pushinteger(L, rc);
  return 1;
}

/* Returns the graph name for spec 'path': its file name without ".lua". */
static char *graph_name(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char *name = strdup(base);
  if (!name) return NULL;
  size_t n = strlen(name);
  if (n > 4 && strcmp(name + n - 4, ".lua") == 0) name[n - 4] = 0;
  return name;
}

/* Runs the spec of 'req' and lowers it to a verified graph (see fe.h). */
attnc_status fe_lower(const fe_request *req, ir_graph **out, ir_diag *d) {
  *out = NULL;
  fe_state st;
  memset(&st, 0, sizeof st);
  st.req = req;
  st.d = d;
  st.mem_cap = (size_t)env_limit("ATTNC_LUA_MEM_MB", (long long)(FE_MEM_CAP_DEFAULT >> 20)) << 20;
  st.budget = env_limit("ATTNC_LUA_BUDGET", FE_BUDGET_DEFAULT);
  st.budget_left = st.budget;
  const char *dir = getenv("ATTNC_MODELS");
  st.models_dir = dir && *dir ? dir : ATTNC_MODELS_DIR;
  st.opt_used = calloc((size_t)req->nopts + 1, sizeof *st.opt_used);
  char *name = graph_name(req->path);
  st.g = name ? ir_graph_create(name) : NULL;
  free(name);
  lua_State *L = st.opt_used && st.g ? lua_newstate(fe_alloc, &st) : NULL;
  attnc_status rc;
  if (!L) {
    ir_diag_error(d, req->path, 0, "out of memory");
    rc = ATTNC_ENOMEM;
  } else {
    st.L = L;
    lua_pushcfunction(L, lower_main);
    lua_pushlightuserdata(L, &st);
    int status = lua_pcall(L, 1, 1, 0);
    rc = status == LUA_OK ? (attnc_status)lua_tointeger(L, -1) : report(L, &st, status);
    lua_close(L);
  }
  for (int i = 0; i < st.nupdates; i++) free(st.upd_names[i]);
  free(st.upd_names);
  free(st.upd_nodes);
  free(st.scope);
  free(st.opt_used);
  if (rc == ATTNC_OK && ir_verify(st.g, d)) rc = ATTNC_EVERIFY;
  if (rc != ATTNC_OK) {
    ir_graph_destroy(st.g);
    return rc;
  }
  *out = st.g;
  return ATTNC_OK;
}
