/* The spec sandbox: a capped allocator, an instruction budget, a restricted
 * global environment (no io, os, debug, binary chunks) and a require that
 * only loads text files from the models/ library folder. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "fe_internal.h"

/* Lua allocator that refuses to grow the state beyond st->mem_cap. */
void *fe_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  fe_state *st = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    st->mem_used -= old;
    return NULL;
  }
  if (nsize > old && st->mem_used - old + nsize > st->mem_cap) {
    st->mem_hit = 1;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) st->mem_used = st->mem_used - old + nsize;
  return p;
}

/* Returns 1 if frame 'ar' runs a spec file (not the nn library, not C). */
static int is_spec_frame(const lua_Debug *ar) {
  return ar->source[0] == '@' && ar->currentline > 0 && strcmp(ar->source + 1, FE_NN_CHUNK) != 0;
}

/* Finds the innermost spec frame at or above 'level' (see fe_internal.h). */
int fe_spec_frame(lua_State *L, int level, lua_Debug *ar) {
  lua_Debug fallback;
  int have_fallback = 0;
  for (int l = level; lua_getstack(L, l, ar); l++) {
    if (!lua_getinfo(L, "Sl", ar)) continue;
    if (is_spec_frame(ar)) return 1;
    if (!have_fallback && ar->source[0] == '@' && ar->currentline > 0) {
      fallback = *ar;
      have_fallback = 1;
    }
  }
  if (have_fallback) *ar = fallback;
  return have_fallback;
}

/* Raises the budget error, at the innermost spec line if there is one. */
static int budget_exceeded(lua_State *L, fe_state *st) {
  st->budget_hit = 1;
  lua_Debug ar;
  /* lua_error, not luaL_error: the location is the spec's line, not the caller's */
  if (fe_spec_frame(L, 0, &ar))
    lua_pushfstring(L, "%s:%d: instruction budget of %I exceeded (runaway loop?)", ar.source + 1, ar.currentline,
                    (lua_Integer)st->budget);
  else
    lua_pushfstring(L, "instruction budget of %I exceeded (runaway loop?)", (lua_Integer)st->budget);
  return lua_error(L);
}

/* Count hook: charges FE_HOOK_STEP instructions and stops the spec when the
 * budget is spent. */
static void budget_hook(lua_State *L, lua_Debug *unused) {
  (void)unused;
  fe_budget_charge(L, FE_HOOK_STEP);
}

/* Charges 'cost' instructions to the budget (see fe_internal.h). */
void fe_budget_charge(lua_State *L, double cost) {
  void *ud;
  lua_getallocf(L, &ud);
  fe_state *st = ud;
  if (!(cost <= (double)st->budget_left)) {
    st->budget_left = -1;
    budget_exceeded(L, st);
  }
  st->budget_left -= (long long)cost;
}

/* Installs the instruction-count hook on L. */
void fe_sandbox_install_hook(lua_State *L) { lua_sethook(L, budget_hook, LUA_MASKCOUNT, FE_HOOK_STEP); }

/* Writes the limit that stopped the run, if any. */
int fe_sandbox_limit_message(const fe_state *st, char *buf, size_t size) {
  if (st->budget_hit) {
    snprintf(buf, size, "instruction budget of %lld exceeded (runaway loop?)", st->budget);
    return 1;
  }
  if (st->mem_hit) {
    snprintf(buf, size, "memory cap of %zu MiB exceeded", st->mem_cap >> 20);
    return 1;
  }
  return 0;
}

/* Message handler: keeps a message that already starts with the innermost
 * spec location, otherwise prefixes that location. */
int fe_sandbox_msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  lua_Debug ar;
  char where[512], file[512];
  if (fe_spec_frame(L, 1, &ar) && is_spec_frame(&ar)) {
    snprintf(where, sizeof where, "%s:%d:", ar.source + 1, ar.currentline);
    snprintf(file, sizeof file, "%s:", ar.source + 1);
  } else { /* raised outside any spec frame: name the spec itself */
    snprintf(where, sizeof where, "%s:", fe_state_get(L)->req->path);
    file[0] = 0;
  }
  size_t lf = strlen(file);
  /* kept: a message that names this place, or another line of this file
   * (an error re-raised by pcall at another line than where it began) */
  if (strncmp(msg, where, strlen(where)) == 0 ||
      (lf && strncmp(msg, file, lf) == 0 && isdigit((unsigned char)msg[lf]))) {
    lua_pushstring(L, msg);
    return 1;
  }
  lua_pushfstring(L, "%s %s", where, msg);
  return 1;
}

/* Reads file 'path' into a malloc'd buffer; NULL if it cannot be read. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n + 4096 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

/* Loads a text chunk from 'path' with _ENV = the table at 'env'. */
int fe_sandbox_load_file(lua_State *L, const char *path, const char *chunkname, int env) {
  env = lua_absindex(L, env);
  size_t len = 0;
  char *text = read_file(path, &len);
  if (!text) {
    lua_pushfstring(L, "%s: cannot read file", chunkname);
    return LUA_ERRFILE;
  }
  lua_pushfstring(L, "@%s", chunkname);
  int status = luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t");
  free(text);
  lua_remove(L, -2);
  if (status != LUA_OK) return status;
  lua_pushvalue(L, env);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  return LUA_OK;
}

/* Checks a require name ([a-z0-9_]+ separated by '/' or '.') and writes
 * its path form (with '/') into out; returns 0, or -1 if invalid. */
static int normalize_module_name(const char *name, char *out, size_t size) {
  size_t n = strlen(name);
  if (n == 0 || n >= size) return -1;
  int seglen = 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (c == '.' || c == '/') {
      if (seglen == 0) return -1;
      out[i] = '/';
      seglen = 0;
    } else if (islower((unsigned char)c) || isdigit((unsigned char)c) || c == '_') {
      out[i] = c;
      seglen++;
    } else {
      return -1;
    }
  }
  if (seglen == 0) return -1;
  out[n] = 0;
  return 0;
}

/* require(name): loads models/<name>.lua once (upvalues: env, primitives,
 * cache) and returns its value; the chunk gets (name, primitives). */
static int sb_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  char norm[256];
  if (normalize_module_name(name, norm, sizeof norm))
    return luaL_error(L, "require '%s': module names are [a-z0-9_] words separated by '.' or '/'", name);
  lua_settop(L, 1);
  lua_getfield(L, lua_upvalueindex(3), norm);
  if (lua_type(L, -1) == LUA_TLIGHTUSERDATA) return luaL_error(L, "require '%s': circular require", name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  fe_state *st = fe_state_get(L);
  char path[4096], chunk[300];
  snprintf(path, sizeof path, "%s/%s.lua", st->models_dir, norm);
  snprintf(chunk, sizeof chunk, FE_LIB_PREFIX "%s.lua", norm);
  if (fe_sandbox_load_file(L, path, chunk, lua_upvalueindex(1)) != LUA_OK) {
    if (strstr(lua_tostring(L, -1), "cannot read file"))
      return luaL_error(L, "require '%s': no module %s in the models folder", name, chunk);
    return lua_error(L);
  }
  lua_pushlightuserdata(L, (void *)FE_STATE_KEY); /* "loading" marker */
  lua_setfield(L, lua_upvalueindex(3), norm);
  lua_pushstring(L, norm);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_call(L, 2, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, lua_upvalueindex(3), norm);
  return 1;
}

/* load(text [, name [, mode [, env]]]): text chunks only; env defaults to
 * the sandbox environment (upvalue 1). Returns the function or nil, message. */
static int sb_load(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "=(load)");
  int has_env = !lua_isnone(L, 4);
  if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  if (has_env) lua_pushvalue(L, 4);
  else lua_pushvalue(L, lua_upvalueindex(1));
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  return 1;
}

/* pcall that cannot swallow a hit limit: budget and memory errors pass on. */
static int sb_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  fe_state *st = fe_state_get(L);
  if (status == LUA_ERRMEM || st->budget_hit) return lua_error(L);
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, 1);
  return lua_gettop(L);
}

/* print(...): writes its arguments to stderr, tab-separated. */
static int sb_print(lua_State *L) {
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) fputc('\t', stderr);
    fwrite(s, 1, len, stderr);
    lua_pop(L, 1);
  }
  fputc('\n', stderr);
  return 0;
}

static const char *const base_whitelist[] = {
    "assert", "error",  "ipairs", "pairs",        "next",         "select",   "tonumber", "tostring",
    "type",   "rawget", "rawset", "setmetatable", "getmetatable", "rawequal", "rawlen",   "_VERSION",
    NULL,
};

/* Opens the safe libraries and pushes the sandbox environment. */
void fe_sandbox_push_env(lua_State *L, int prims) {
  prims = lua_absindex(L, prims);
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},   {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->name; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  /* strings index the real string table: remove dump there */
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  fe_costs_install(L);

  lua_newtable(L);
  int env = lua_gettop(L);
  for (int i = 0; base_whitelist[i]; i++) {
    lua_getglobal(L, base_whitelist[i]);
    lua_setfield(L, env, base_whitelist[i]);
  }
  static const char *const tables[] = {LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME, LUA_UTF8LIBNAME, NULL};
  for (int i = 0; tables[i]; i++) {
    lua_getglobal(L, tables[i]);
    lua_setfield(L, env, tables[i]);
  }
  lua_getglobal(L, LUA_TABLIBNAME);
  lua_getfield(L, -1, "unpack");
  lua_setfield(L, env, "unpack");
  lua_pop(L, 1);
  lua_pushcfunction(L, sb_pcall);
  lua_setfield(L, env, "pcall");
  lua_pushcfunction(L, sb_print);
  lua_setfield(L, env, "print");
  lua_pushvalue(L, env);
  lua_pushcclosure(L, sb_load, 1);
  lua_setfield(L, env, "load");
  lua_pushvalue(L, env);
  lua_pushvalue(L, prims);
  lua_newtable(L); /* require cache */
  lua_pushcclosure(L, sb_require, 3);
  lua_setfield(L, env, "require");
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");
}
