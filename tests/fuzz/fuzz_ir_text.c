/* Fuzz target: the IR text parser, verifier, printer and Graphviz writer on
 * arbitrary bytes. A graph that parses and verifies must print to text that
 * parses back and prints the same (the text form's round-trip promise). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Parses 'data' as IR text; checks the round trip of whatever verifies. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ir_diag *d = ir_diag_create();
  char *text;
  ir_graph *g = fuzz_parse_verified(data, size, &text, d);
  if (g) {
    char *once = ir_print(g);
    ir_graph *g2 = once ? ir_parse(once, "printed.ir", d) : NULL;
    char *twice = g2 ? ir_print(g2) : NULL;
    if (once && (!g2 || !twice || strcmp(once, twice) != 0)) {
      fprintf(stderr, "round trip failed:\n%s\n---\n%s\n%s\n", once, twice ? twice : "(none)",
              ir_diag_text(d));
      abort();
    }
    free(ir_dot(g));
    free(twice);
    free(once);
    ir_graph_destroy(g2);
  }
  ir_graph_destroy(g);
  ir_diag_destroy(d);
  free(text);
  return 0;
}
