/* Spec options: options{ key = default } with -D overrides converted to the
 * default's type, input_shape{C,H,W} and training(). */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "fe_internal.h"

#define DECLARED_KEY "attnc.declared_options"

/* Pushes the -D value for 'key' converted to the type of the value at
 * 'def', marking the -D pair used; pushes the default if there is none. */
static void push_option_value(lua_State *L, fe_state *st, const char *key, int def) {
  const char *given = NULL;
  for (int i = 0; i < st->req->nopts; i++)
    if (strcmp(st->req->keys[i], key) == 0) {
      given = st->req->values[i]; /* the last -D wins */
      st->opt_used[i] = 1;
    }
  if (!given) {
    lua_pushvalue(L, def);
    return;
  }
  switch (lua_type(L, def)) {
  case LUA_TNUMBER:
    if (!lua_stringtonumber(L, given)) luaL_error(L, "option -D %s=%s: expected a number", key, given);
    break;
  case LUA_TBOOLEAN:
    if (!strcmp(given, "true") || !strcmp(given, "1")) lua_pushboolean(L, 1);
    else if (!strcmp(given, "false") || !strcmp(given, "0")) lua_pushboolean(L, 0);
    else luaL_error(L, "option -D %s=%s: expected true or false", key, given);
    break;
  default: lua_pushstring(L, given); break;
  }
}

/* options{ key = default, ... } -> table of values (see docs/LANGUAGE.md). */
static int opt_options(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  fe_state *st = fe_state_get(L);
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, DECLARED_KEY); /* 2: array of names */
  lua_newtable(L);                                  /* 3: result */
  /* sorted keys make the declaration order (and the known-keys list) stable */
  lua_newtable(L); /* 4: keys */
  int nkeys = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "options: keys must be names");
    lua_pushvalue(L, -1);
    lua_rawseti(L, 4, ++nkeys);
  }
  lua_getglobal(L, "table"); /* not in the sandbox env: the host's table lib */
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, 4);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  for (int k = 1; k <= nkeys; k++) {
    lua_rawgeti(L, 4, k);
    const char *key = lua_tostring(L, -1);
    lua_getfield(L, 1, key);
    int def = lua_gettop(L);
    int t = lua_type(L, def);
    if (t != LUA_TNUMBER && t != LUA_TBOOLEAN && t != LUA_TSTRING)
      return luaL_error(L, "option '%s': default must be a number, boolean or string", key);
    int n = (int)lua_rawlen(L, 2);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, 2, i);
      int same = strcmp(lua_tostring(L, -1), key) == 0;
      lua_pop(L, 1);
      if (same) return luaL_error(L, "option '%s' is declared twice", key);
    }
    lua_pushvalue(L, def - 1);
    lua_rawseti(L, 2, n + 1);
    push_option_value(L, st, key, def);
    lua_setfield(L, 3, key);
    lua_pop(L, 2);
  }
  lua_settop(L, 3);
  return 1;
}

/* input_shape{C, H, W}: the default input shape. */
static int opt_input_shape(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  fe_state *st = fe_state_get(L);
  if (lua_rawlen(L, 1) != 3) return luaL_error(L, "input_shape: expected {C, H, W}");
  for (int i = 0; i < 3; i++) {
    lua_rawgeti(L, 1, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 1) return luaL_error(L, "input_shape: entry %d must be a positive integer", i + 1);
    st->default_shape[i] = v;
    lua_pop(L, 1);
  }
  st->has_default_shape = 1;
  return 0;
}

/* training() -> true while lowering the training graph. */
static int opt_training(lua_State *L) {
  lua_pushboolean(L, fe_state_get(L)->req->mode == FE_TRAIN);
  return 1;
}

/* Registers options, input_shape and training into the env at 'env'. */
void fe_options_register(lua_State *L, int env) {
  env = lua_absindex(L, env);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, DECLARED_KEY);
  lua_pushcfunction(L, opt_options);
  lua_setfield(L, env, "options");
  lua_pushcfunction(L, opt_input_shape);
  lua_setfield(L, env, "input_shape");
  lua_pushcfunction(L, opt_training);
  lua_setfield(L, env, "training");
}

/* Reports every -D key no options{} call declared. */
int fe_options_check_unused(lua_State *L, fe_state *st) {
  int bad = 0;
  for (int i = 0; i < st->req->nopts; i++) {
    if (st->opt_used[i]) continue;
    int dup = 0;
    for (int j = 0; j < i; j++)
      if (!st->opt_used[j] && strcmp(st->req->keys[j], st->req->keys[i]) == 0) dup = 1;
    if (dup) continue;
    lua_getfield(L, LUA_REGISTRYINDEX, DECLARED_KEY);
    int declared = lua_gettop(L), n = (int)lua_rawlen(L, declared);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int k = 1; k <= n; k++) {
      lua_rawgeti(L, declared, k);
      const char *name = lua_tostring(L, -1); /* stays alive in the table */
      lua_pop(L, 1);
      if (k > 1) luaL_addstring(&b, ", ");
      luaL_addstring(&b, name);
    }
    if (n == 0) luaL_addstring(&b, "none");
    luaL_pushresult(&b);
    ir_diag_error(st->d, NULL, 0, "%s: unknown option -D %s (known options: %s)", st->req->path,
                  st->req->keys[i], lua_tostring(L, -1));
    lua_pop(L, 2);
    bad++;
  }
  return bad;
}
