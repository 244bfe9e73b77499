/* The instruction budget for the library functions that loop in C: the
 * count hook only sees VM instructions, so string.rep("", 1e12), a pattern
 * with nested repetitions over a long subject or table.move over 1e15 empty
 * slots would run for hours inside one call. Each wrapper charges the call's
 * worst-case work to the budget before calling the original. */
#include <limits.h>
#include <math.h>

#include <lauxlib.h>
#include <lualib.h>

#include "fe_internal.h"

typedef enum { COST_REP, COST_FIND, COST_PATTERN, COST_MOVE } cost_kind;

/* Returns the number of repetition items in Lua pattern p[0..n) (the
 * quantifiers * + - ? outside character classes, and %b balances). */
static int pattern_repetitions(const char *p, size_t n) {
  int q = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '%' && i + 1 < n) {
      if (p[i + 1] == 'b') q++, i += 3;
      else i++;
    } else if (p[i] == '[') {
      size_t j = i + 1;
      if (j < n && p[j] == '^') j++;
      if (j < n && p[j] == ']') j++;
      for (; j < n && p[j] != ']'; j++)
        if (p[j] == '%') j++;
      i = j;
    } else if (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?') {
      q++;
    }
  }
  return q;
}

/* Returns the worst-case steps of matching pattern (arg 2) in subject (arg
 * 1): every start position, times every split of the subject among the q
 * repetitions, times the pattern's length: (ls + 1)^(q + 1) (lp + 1). A plain
 * find (q = 0) is every start times the pattern's length. */
static double pattern_cost(lua_State *L, int plain) {
  size_t ls, lp;
  luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int q = plain ? 0 : pattern_repetitions(p, lp);
  return pow((double)ls + 1, q + 1) * ((double)lp + 1);
}

/* Charges the work of the wrapped call (upvalue 2: its cost_kind), then
 * calls the original (upvalue 1) with the same arguments. */
static int costed_call(lua_State *L) {
  double cost = 0;
  switch ((cost_kind)lua_tointeger(L, lua_upvalueindex(2))) {
  case COST_REP: {
    size_t l, lsep = 0;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    double bytes = n > 0 ? (double)n * (double)l + (double)(n - 1) * (double)lsep : 0;
    /* a step per copy and per 8 bytes copied (Lua itself refuses results
     * over INT_MAX bytes before copying any) */
    cost = n <= 0 || bytes > INT_MAX ? 0 : (double)n + bytes / 8;
    break;
  }
  case COST_FIND:
    cost = pattern_cost(L, lua_toboolean(L, 4));
    break;
  case COST_PATTERN:
    cost = pattern_cost(L, 0);
    break;
  case COST_MOVE: {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    cost = e >= f ? (double)e - (double)f + 1 : 0;
    break;
  }
  }
  fe_budget_charge(L, cost);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* Wraps field 'name' of the table on top of the stack. */
static void wrap(lua_State *L, const char *name, cost_kind kind) {
  lua_getfield(L, -1, name);
  lua_pushinteger(L, kind);
  lua_pushcclosure(L, costed_call, 2);
  lua_setfield(L, -2, name);
}

/* Installs the wrappers in the string and table libraries (see fe_internal.h). */
void fe_costs_install(lua_State *L) {
  lua_getglobal(L, LUA_STRLIBNAME);
  wrap(L, "rep", COST_REP);
  wrap(L, "find", COST_FIND);
  wrap(L, "match", COST_PATTERN);
  wrap(L, "gsub", COST_PATTERN);
  wrap(L, "gmatch", COST_PATTERN);
  lua_pop(L, 1);
  lua_getglobal(L, LUA_TABLIBNAME);
  wrap(L, "move", COST_MOVE);
  lua_pop(L, 1);
}
