/* Internals of the Lua front end shared by fe_lower.c (driver), fe_sandbox.c
 * (restricted environment, allocator cap, instruction budget, require),
 * fe_tensor.c (tensor userdata and the op primitives) and fe_options.c
 * (options / input_shape / training). */
#ifndef ATTNC_FE_INTERNAL_H
#define ATTNC_FE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "fe.h"

/* Default limits of a spec run; ATTNC_LUA_MEM_MB / ATTNC_LUA_BUDGET override. */
#define FE_MEM_CAP_DEFAULT ((size_t)256 << 20)
#define FE_BUDGET_DEFAULT 200000000LL
/* Instructions between two calls of the count hook. */
#define FE_HOOK_STEP 1000
/* Chunk name prefix of the library folder ("models/nn.lua"). */
#define FE_LIB_PREFIX "models/"
#define FE_NN_CHUNK "models/nn.lua"

/* Everything one lowering needs; one per lua_State (found through the
 * registry key FE_STATE_KEY, and as the allocator's ud). */
typedef struct fe_state {
  const fe_request *req;
  ir_graph *g;
  ir_diag *d;
  lua_State *L;
  /* allocator */
  size_t mem_used, mem_cap;
  int mem_hit; /* the cap refused an allocation */
  /* instruction budget */
  long long budget_left, budget;
  int budget_hit;
  /* library folder (absolute or relative to the working directory) */
  const char *models_dir;
  /* options */
  int *opt_used; /* per -D pair: declared by some options{} call */
  int64_t default_shape[3];
  int has_default_shape;
  int shape_error; /* the error being raised is a shape error */
  /* dotted module path of the forward running now ("" at top) */
  char *scope;
  /* train mode: updated buffers, in first-update order */
  int nupdates, updcap;
  char **upd_names;
  int *upd_nodes;
} fe_state;

/* Registry key of the fe_state light userdata. */
extern const char *const FE_STATE_KEY;

/* Returns the fe_state of L. */
fe_state *fe_state_get(lua_State *L);

/* ---- fe_sandbox.c ---- */

/* lua_Alloc that enforces st->mem_cap ('ud' is the fe_state). */
void *fe_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Installs the instruction-count hook on L. */
void fe_sandbox_install_hook(lua_State *L);
/* Charges 'cost' instructions of work to the budget; raises the budget
 * error (which pcall cannot catch) if that spends it. */
void fe_budget_charge(lua_State *L, double cost);

/* ---- fe_costs.c ---- */

/* Replaces the library functions whose work in C no VM instruction counts
 * (string.rep, find, match, gmatch, gsub, table.move) with wrappers that
 * first charge that work, at its worst case, to the budget. */
void fe_costs_install(lua_State *L);
/* Opens the safe libraries and pushes the sandbox environment table (the
 * _ENV of every spec and library chunk). 'prims' is the stack index of the
 * primitives table handed to library chunks as their second argument. */
void fe_sandbox_push_env(lua_State *L, int prims);
/* Loads the text chunk 'path' named '@chunkname' with the sandbox env (at
 * stack index 'env') as its _ENV; pushes the function, or returns a Lua
 * error status with the message pushed. */
int fe_sandbox_load_file(lua_State *L, const char *path, const char *chunkname, int env);
/* Fills *ar with the innermost frame at or above 'level' that runs a spec
 * file (a Lua file other than the nn library); falls back to the innermost
 * Lua frame with a line. Returns 0 if there is none. */
int fe_spec_frame(lua_State *L, int level, lua_Debug *ar);
/* Message handler for lua_pcall: adds the innermost spec location to a
 * message that has none of its own. */
int fe_sandbox_msgh(lua_State *L);
/* Writes into buf the message describing why the run stopped when a limit
 * was hit (returns 1), or returns 0 if no limit was hit. */
int fe_sandbox_limit_message(const fe_state *st, char *buf, size_t size);

/* ---- fe_tensor.c ---- */

/* Registers the tensor metatable and the op primitives into the table at
 * stack index 'prims'. */
void fe_tensor_register(lua_State *L, int prims);
/* Pushes a new tensor userdata for node 'id'. */
void fe_tensor_push(lua_State *L, int id);
/* Returns the node id of the tensor at 'idx', raising a Lua error if it is
 * not a tensor. */
int fe_tensor_check(lua_State *L, int idx);
/* Returns the location of the innermost spec frame (skipping the nn library
 * and C functions; falling back to the innermost Lua frame), with the
 * current scope, interned in the graph. */
ir_loc fe_here(lua_State *L);

/* ---- fe_options.c ---- */

/* Registers options, input_shape and training into the env at 'env'. */
void fe_options_register(lua_State *L, int env);
/* Reports every -D key no options{} call declared (with the known keys) to
 * st->d; returns the number of such keys. */
int fe_options_check_unused(lua_State *L, fe_state *st);

#endif
