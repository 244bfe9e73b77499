/* The fused view of a graph (pass_fusion_print, the --stage fused dump): the
 * graph as ir_print prints it, each fusion group introduced by a comment line
 * naming its kind, label, members, steps, inputs and outputs, each member
 * line marked "|<step>", and a summary of the groups and kernel counts.
 * This view is for reading: it does not parse back as IR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

/* Writes ids as "%a,%b,..." ("-" for none). */
static void print_ids(FILE *o, const int *ids, int n) {
  if (n == 0) fputc('-', o);
  for (int i = 0; i < n; i++) fprintf(o, i ? ",%%%d" : "%%%d", ids[i]);
}

/* The node id of a printed node line "  %<id> = ...", or -1. */
static int line_node(const char *line, size_t len) {
  if (len < 4 || strncmp(line, "  %", 3) != 0) return -1;
  int id = 0;
  size_t i = 3;
  for (; i < len && line[i] >= '0' && line[i] <= '9' && id < 100000000; i++) id = id * 10 + (line[i] - '0');
  return i > 3 && i + 2 < len && line[i] == ' ' && line[i + 1] == '=' ? id : -1;
}

/* 1 if node 'n' needs a kernel launch of its own (not a source or a view). */
static int needs_kernel(const ir_node *n) {
  return !(ir_op_info_get(n->op)->flags & IR_OPF_SOURCE) && !pass_plan_is_alias(n);
}

/* The 1-based step of member 'id' in group 'gr'. */
static int step_of(const pass_fuse_group *gr, int id) {
  int at = 0;
  while (at < gr->nmembers && gr->members[at] != id) at++;
  int step = 0;
  while (step + 1 < gr->nsteps && gr->step_start[step + 1] <= at) step++;
  return step + 1;
}

/* Writes the comment line introducing group 'i'. */
static void print_header(FILE *o, const pass_fuse_group *gr, int i) {
  fprintf(o, "# fused.%d %s \"%s\" members=%%%d..%%%d (%d ops, %d step%s) ins=", i,
          gr->kind == PASS_FUSE_SAMPLE ? "sample" : "loop", gr->label ? gr->label : "?", pass_fuse_first(gr),
          pass_fuse_last(gr), gr->nmembers, gr->nsteps, gr->nsteps == 1 ? "" : "s");
  print_ids(o, gr->ins, gr->nins);
  fputs(" outs=", o);
  print_ids(o, gr->outs, gr->nouts);
  fputc('\n', o);
}

/* Writes the closing summary: groups per label, nodes fused, kernels. */
static void print_summary(FILE *o, const ir_graph *g, const pass_fusion *f) {
  int fused = 0, before = 0, after = 0;
  for (int i = 0; i < g->nnodes; i++) {
    int k = needs_kernel(g->nodes[i]), grouped = f && i < f->nnodes && f->group_of[i] >= 0;
    before += k;
    after += k && !grouped;
    fused += grouped;
  }
  int ngroups = f ? f->ngroups : 0;
  after += ngroups;
  fprintf(o, "# fusion summary: %d group%s", ngroups, ngroups == 1 ? "" : "s");
  for (int i = 0, printed = 0; i < ngroups; i++) {
    const char *label = f->groups[i].label ? f->groups[i].label : "?";
    int count = 0, earlier = 0;
    for (int j = 0; j < ngroups; j++)
      if (strcmp(f->groups[j].label ? f->groups[j].label : "?", label) == 0) {
        earlier |= j < i;
        count++;
      }
    if (!earlier) fprintf(o, "%s%d %s", printed++ ? ", " : " (", count, label);
  }
  if (ngroups) fputc(')', o);
  fprintf(o, "; %d of %d nodes fused; kernels %d without fusion, %d with\n", fused, g->nnodes, before, after);
}

/* The graph with its groups as text (see passes.h). */
char *pass_fusion_print(const ir_graph *g, const pass_fusion *f) {
  char *text = ir_print(g), *buf = NULL;
  size_t size = 0;
  if (!text) return NULL;
  FILE *o = open_memstream(&buf, &size);
  if (!o) {
    free(text);
    return NULL;
  }
  fputs("# fused view (not IR text, does not parse back): '# fused.<i>' introduces a group,\n"
        "# '|<i>.<s>' marks a member of group i in its step s; a group runs at its last member\n",
        o);
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    int id = line_node(line, len);
    if (id >= 0 && f && id < f->nnodes && f->group_of[id] >= 0) {
      const pass_fuse_group *gr = &f->groups[f->group_of[id]];
      if (pass_fuse_first(gr) == id) print_header(o, gr, f->group_of[id]);
      fprintf(o, "  |%d.%d %.*s\n", f->group_of[id], step_of(gr, id), (int)len - 2, line + 2);
    } else {
      fprintf(o, "%.*s\n", (int)len, line);
    }
    line += len + (end != NULL);
  }
  print_summary(o, g, f);
  free(text);
  if (fclose(o) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}
