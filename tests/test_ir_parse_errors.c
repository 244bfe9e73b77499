/* Data-driven tests of the IR parser (every tests/data file (*.ir) states its
 * expected result in trailing comments) and a mutation test: thousands of
 * randomly damaged texts must be rejected with well-formed messages or
 * accepted as graphs that round-trip, never crash and never leak.
 *
 * Expectation comments in a data file:
 *   # >>> error: L:C: message   the parse fails; the Nth such line is the Nth
 *                               message, prefixed by the file path
 *   # >>> roundtrip             print(parse(print(parse(text)))) is stable
 *   # >>> print                 followed by "#| text" lines: the exact print
 *   # >>> verify-ok / verify-fails   what ir_verify says of the parsed graph
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ir.h"
#include "util_text.h"

#define DATA_DIR "tests/data"

/* What a data file expects, read from its "# >>>" comments. */
typedef struct {
  char **errors;
  int nerrors;
  int roundtrip, verify_ok, verify_fails;
  char *print; /* NULL when no "# >>> print" */
} expectation;

/* Appends s[0..len) and a newline to the growing string *buf. */
static void append_line(char **buf, const char *s, size_t len) {
  size_t old = *buf ? strlen(*buf) : 0;
  *buf = realloc(*buf, old + len + 2);
  memcpy(*buf + old, s, len);
  (*buf)[old + len] = '\n';
  (*buf)[old + len + 1] = 0;
}

/* Returns a newly allocated formatted string. */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s;
}

/* Reads the "# >>>" expectations of 'text'. */
static expectation read_expectation(const char *text) {
  expectation e;
  memset(&e, 0, sizeof e);
  int in_print = 0;
  for (const char *p = text; *p;) {
    size_t len = strcspn(p, "\n");
    size_t l = len && p[len - 1] == '\r' ? len - 1 : len;
    if (in_print && l >= 2 && !strncmp(p, "#|", 2)) {
      size_t skip = l >= 3 && p[2] == ' ' ? 3 : 2;
      append_line(&e.print, p + skip, l - skip);
    } else {
      in_print = 0;
      if (l >= 13 && !strncmp(p, "# >>> error: ", 13)) {
        e.errors = realloc(e.errors, (size_t)(e.nerrors + 1) * sizeof *e.errors);
        e.errors[e.nerrors] = strndup(p + 13, l - 13);
        e.nerrors++;
      } else if (l == 15 && !strncmp(p, "# >>> roundtrip", 15)) {
        e.roundtrip = 1;
      } else if (l == 15 && !strncmp(p, "# >>> verify-ok", 15)) {
        e.verify_ok = 1;
      } else if (l == 18 && !strncmp(p, "# >>> verify-fails", 18)) {
        e.verify_fails = 1;
      } else if (l == 11 && !strncmp(p, "# >>> print", 11)) {
        in_print = 1;
        e.print = strdup("");
      }
    }
    p += len + (p[len] == '\n');
  }
  return e;
}

static void free_expectation(expectation *e) {
  for (int i = 0; i < e->nerrors; i++) free(e->errors[i]);
  free(e->errors);
  free(e->print);
}

/* Runs data file 'path'; returns NULL if it meets its expectations, else a
 * description of the first mismatch (caller frees). */
static char *run_data_file(const char *path) {
  char *text = textutil_read_file(path, NULL), *why = NULL;
  if (!text) return strdup("cannot read the file");
  expectation e = read_expectation(text);
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, path, d);
  char *t1 = NULL, *t2 = NULL;
  if (!e.nerrors && !e.roundtrip && !e.print && !e.verify_ok && !e.verify_fails) {
    why = strdup("no '# >>>' expectation in the file");
  } else if (e.nerrors) {
    if (g) why = strdup("parsed, but errors were expected");
    else if (ir_diag_count(d) != e.nerrors)
      why = format("%d errors expected, got %d:\n%s", e.nerrors, ir_diag_count(d), ir_diag_text(d));
    for (int i = 0; !why && i < e.nerrors; i++) {
      char want[1024];
      snprintf(want, sizeof want, "%s:%s", path, e.errors[i]);
      if (strcmp(want, ir_diag_message(d, i)))
        why = format("error %d:\n  want %s\n  got  %s", i + 1, want, ir_diag_message(d, i));
    }
  } else if (!g) {
    why = format("parse failed:\n%s", ir_diag_text(d));
  } else {
    t1 = ir_print(g);
    if (e.print && strcmp(t1, e.print)) why = format("printed:\n%s\nexpected:\n%s", t1, e.print);
    if (!why && e.roundtrip) {
      ir_graph *g2 = ir_parse(t1, "printed", d);
      t2 = g2 ? ir_print(g2) : NULL;
      if (!t2 || strcmp(t1, t2)) why = format("round trip differs:\n%s\nthen:\n%s", t1, t2 ? t2 : "(parse failed)");
      ir_graph_destroy(g2);
    }
    ir_diag_clear(d);
    int verrors = why ? 0 : ir_verify(g, d);
    if (!why && e.verify_ok && verrors) why = format("verifier rejects it:\n%s", ir_diag_text(d));
    if (!why && e.verify_fails && !verrors) why = strdup("the verifier accepts it");
  }
  free(t1);
  free(t2);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
  free_expectation(&e);
  free(text);
  return why;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs every .ir file in tests/data (at least 15 malformed ones must be
 * there) and reports every file that misses its expectation. */
static void test_data_files(void **state) {
  (void)state;
  DIR *dir = opendir(DATA_DIR);
  assert_non_null(dir);
  char **names = NULL;
  int n = 0;
  for (struct dirent *de; (de = readdir(dir));) {
    size_t len = strlen(de->d_name);
    if (len < 4 || strcmp(de->d_name + len - 3, ".ir")) continue;
    names = realloc(names, (size_t)(n + 1) * sizeof *names);
    names[n++] = strdup(de->d_name);
  }
  closedir(dir);
  qsort(names, (size_t)n, sizeof *names, compare_names);
  int failures = 0, malformed = 0;
  for (int i = 0; i < n; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DATA_DIR, names[i]);
    char *text = textutil_read_file(path, NULL);
    if (text && strstr(text, "# >>> error: ")) malformed++;
    free(text);
    char *why = run_data_file(path);
    if (why) {
      print_error("%s: %s\n", path, why);
      failures++;
    }
    free(why);
    free(names[i]);
  }
  free(names);
  assert_int_equal(failures, 0);
  assert_true(malformed >= 15);
  assert_true(n >= malformed + 5);
}

/* The data driver itself catches wrong expectations (so a passing run
 * means something): a wrong column, a missing error, a wrong print. */
static void test_driver_detects_mismatch(void **state) {
  (void)state;
  const char *cases[] = {
      "graph @a {\n  %0 = foo : f32[]\n}\n# >>> error: 2:9: unknown op 'foo'\n",
      "graph @a {\n  %0 = foo : f32[]\n}\n# >>> error: 2:8: unknown op 'foo'\n# >>> error: 3:1: x\n",
      "graph @a {\n}\n# >>> error: 1:1: nothing\n",
      "graph @a {\n}\n# >>> print\n#| graph @b {\n#| }\n",
      "graph @a {\n  %0 = relu(%1) : f32[]\n  %1 = input name=\"x\" : f32[]\n}\n# >>> verify-ok\n",
      "graph @a {\n}\n",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char tmp[] = "/tmp/attnc_ir_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(cases[i], f);
    fclose(f);
    char *why = run_data_file(tmp);
    if (!why) fail_msg("case %zu passed but should not", i);
    free(why);
    remove(tmp);
  }
}

/* ---- mutation test ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

/* xorshift64*: deterministic pseudo-random numbers. */
static uint32_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717u) >> 32);
}

/* Returns a byte likely to matter to the parser, or any non-NUL byte. */
static char random_byte(void) {
  static const char interesting[] = "%=(),[]{}:#\"\\ \t\n\r-+.0123456789eExinfa@_";
  if (rng() % 4) return interesting[rng() % (sizeof interesting - 1)];
  return (char)(1 + rng() % 255);
}

/* Applies 1..4 random byte deletions, insertions, replacements or a
 * truncation to the NUL-terminated buffer s (capacity cap). */
static void mutate(char *s, size_t cap) {
  int edits = 1 + (int)(rng() % 4);
  for (int k = 0; k < edits; k++) {
    size_t len = strlen(s), pos = len ? rng() % len : 0;
    switch (rng() % 7) {
    case 0:
    case 1:
      if (len) memmove(s + pos, s + pos + 1, len - pos);
      break;
    case 2:
    case 3:
      if (len + 2 < cap) {
        memmove(s + pos + 1, s + pos, len - pos + 1);
        s[pos] = random_byte();
      }
      break;
    case 4:
    case 5:
      if (len) s[pos] = random_byte();
      break;
    default: s[pos] = 0; break;
    }
  }
}

/* Checks 'msg' has the form "fuzz.ir:<line>:<col>: <text>". */
static void assert_located(const char *msg) {
  int line = 0, col = 0, used = 0;
  assert_non_null(msg);
  if (sscanf(msg, "fuzz.ir:%d:%d: %n", &line, &col, &used) != 2 || !used || line < 1 || col < 1 || !msg[used])
    fail_msg("malformed message: %s", msg);
}

/* Parses each mutant: an error has a located message; a graph prints,
 * reparses and prints the same again, and draws as dot. */
static void test_mutations_never_crash(void **state) {
  (void)state;
  ir_diag *d = ir_diag_create();
  ir_graph *all = textutil_all_ops_graph(d);
  assert_non_null(all);
  char *bases[2] = {ir_print(all), NULL};
  ir_graph_destroy(all);
  bases[1] = strdup("graph @g {\n  %a = input name=\"x\" : f32[2,3]\n  %b = reduce_sum(%a) axes=[1] : f32[2]"
                    "  # m.lua:4 in s.t\n  %c = concat(%b, %b) axis=0 : f32[4]\n  output \"y\\n\" = %c\n}\n");
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 4000; iter++) {
    const char *base = bases[iter % 2];
    size_t cap = strlen(base) + 16;
    char *s = malloc(cap);
    memcpy(s, base, strlen(base) + 1);
    mutate(s, cap);
    ir_diag_clear(d);
    ir_graph *g = ir_parse(s, "fuzz.ir", d);
    if (!g) {
      rejected++;
      assert_true(ir_diag_count(d) >= 1);
      for (int i = 0; i < ir_diag_count(d) && i < 1000; i++) assert_located(ir_diag_message(d, i));
    } else {
      accepted++;
      assert_int_equal(ir_diag_count(d), 0);
      char *t1 = ir_print(g);
      ir_graph *g2 = ir_parse(t1, "fuzz.ir", d);
      if (!g2) fail_msg("reprint does not parse:\n%s\n%s", t1, ir_diag_text(d));
      char *t2 = ir_print(g2);
      assert_string_equal(t1, t2);
      char *dot = ir_dot(g);
      assert_non_null(dot);
      free(dot);
      free(t1);
      free(t2);
      ir_graph_destroy(g2);
      ir_graph_destroy(g);
    }
    free(s);
  }
  /* both outcomes occur often enough for the test to mean something */
  assert_true(accepted > 100);
  assert_true(rejected > 1000);
  free(bases[0]);
  free(bases[1]);
  ir_diag_destroy(d);
}

/* Edge inputs: NULL text, NULL file name, NULL diag, a huge graph with
 * every operand a forward reference (hash table growth, no quadratic work). */
static void test_edge_inputs(void **state) {
  (void)state;
  ir_diag *d = ir_diag_create();
  assert_null(ir_parse(NULL, "x.ir", d));
  assert_string_equal(ir_diag_message(d, 0), "x.ir:1:1: expected 'graph @name {' before the end of the input");
  ir_diag_clear(d);
  assert_null(ir_parse("graph @a {\n  %0 = nope : f32[]\n}\n", NULL, d));
  assert_string_equal(ir_diag_message(d, 0), "<input>:2:8: unknown op 'nope'");
  assert_null(ir_parse("graph @a {\n  %0 = nope : f32[]\n}\n", "x", NULL));
  enum { N = 20000 };
  size_t cap = (size_t)N * 48 + 64, o = 0;
  char *text = malloc(cap);
  o += (size_t)snprintf(text + o, cap - o, "graph @big {\n");
  for (int i = 0; i < N - 1; i++) o += (size_t)snprintf(text + o, cap - o, "  %%v%d = neg(%%v%d) : f32[2]\n", i, i + 1);
  o += (size_t)snprintf(text + o, cap - o, "  %%v%d = input name=\"x\" : f32[2]\n  output \"y\" = %%v0\n}\n", N - 1);
  ir_diag_clear(d);
  ir_graph *g = ir_parse(text, "big.ir", d);
  assert_non_null(g);
  assert_int_equal(g->nnodes, N);
  for (int i = 0; i < N - 1; i++) assert_int_equal(g->nodes[i]->in[0], i + 1);
  assert_true(ir_verify(g, d) > 0); /* forward references: dominance errors */
  ir_graph_destroy(g);
  free(text);
  ir_diag_destroy(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_data_files),
      cmocka_unit_test(test_driver_detects_mismatch),
      cmocka_unit_test(test_mutations_never_crash),
      cmocka_unit_test(test_edge_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
