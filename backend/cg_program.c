/* The runtime driver of the JIT: partitions the graph into fusion groups
 * (pass_fuse; each group is one kernel, cg_fuse.c, unless cg_options.no_fuse
 * or ATTNC_NO_FUSE=1), lays out one arena with a buffer per materialized
 * node (pass_plan_memory_fused), compiles one kernel per distinct (op,
 * types, attributes) or distinct group into a single module, optimizes and
 * JIT-compiles it, and runs the kernels in graph order with every thread taking a fixed share of each kernel's work (OpenMP, a
 * barrier between kernels), so results depend only on the thread count. */
#include <omp.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <llvm-c/Core.h>
#include "cg_internal.h"
#include "ir_interp.h"
#include "passes.h"

typedef void (*kernel_fn)(void **args, int64_t begin, int64_t end, void *scratch);

/* One kernel call of a run. */
typedef struct {
  kernel_fn fn;
  void **args; /* output, inputs (a group: outs, ins) */
  int64_t par, par2; /* work items of the first and second phase (plan.par, plan.par2) */
  int node;    /* node id (a group: its last member) */
  int group;   /* fusion group, -1 for one node */
  int uniq;    /* index of its distinct kernel */
  double secs; /* profile: thread 0's time from its call to the barrier after the last phase */
  double busy; /* profile: the threads' time inside the kernel, added up */
} launch;

/* One distinct kernel. */
typedef struct {
  char *key;
  char name[32];
  int node; /* first node using it */
  int group; /* its fusion group (the first using it), -1 for one node */
  char *show; /* profile text of a group ("fused:<label> ..."), NULL otherwise */
  cg_plan plan;
  kernel_fn fn;
  int64_t *step_cycles; /* step_profile, a sample group: cycles per step of its group, all threads */
} unique_kernel;

struct cg_program {
  cg_options opt;
  cg_stats stats;
  ir_graph *g;          /* a copy of the graph */
  char *arena;
  void **ptr;           /* buffer of each node */
  launch *launches;
  int nlaunch;
  unique_kernel *uniq;
  int nuniq, capuniq;
  int *hash;            /* open addressing over uniq, -1 empty */
  int hashcap;
  cg_jit *jit;
  char *scratch;
  int64_t scratch_per;
  char *shared;         /* the kernels' shared buffer (plan.shared_bytes, the largest) */
  int profile;
  int profile_runs;     /* runs timed since profiling was turned on */
  int *sources;         /* node ids of input/param/buffer nodes */
  int nsources;
  void **interp_out;    /* interpreter mode: storage of each output */
  struct {
    void *src, *val;
    size_t bytes;
  } *fb;                /* cg_program_feedback's pairs */
  int nfb, fb_ready;
  pass_fusion fusion;   /* the groups compiled (group_of NULL without fusion) */
  cg_fused **fk;        /* prepared kernel of each group */
  cg_plan *fplan;       /* its plan */
};

/* Seconds on a monotonic clock. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t align64(int64_t x) { return (x + 63) & ~(int64_t)63; }

static int64_t node_bytes(const ir_node *n) {
  return ir_type_numel(&n->type) * (int64_t)ir_dtype_size(n->type.dtype);
}

static int is_named_source(const ir_node *n) {
  return n->op == IR_OP_input || n->op == IR_OP_param || n->op == IR_OP_buffer;
}

/* Fusion group of node 'id', or -1. */
static int group_of(const cg_program *p, int id) { return p->fusion.group_of ? p->fusion.group_of[id] : -1; }

/* 1 if node 'id' shares its operand's buffer instead of having a kernel. */
static int is_alias(const cg_program *p, int id) {
  return group_of(p, id) < 0 && pass_plan_is_alias(p->g->nodes[id]);
}

/* Allocates an arena of 'bytes' (freed with free) in whole 2 MiB pages,
 * asking the kernel for transparent huge pages: a training step's kernels
 * walk a 200 MB arena, dozens of feature-map planes 4 KiB apart at a time,
 * which with 4 KiB pages outruns the TLB. Measured on the Zen 4 (ResNet-20
 * step, batch 128, bench/ab_step, 200 pairs): the step takes 0.974 (q1
 * 0.940, q3 1.010) of its time with 4 KiB pages. Without THP (or with it
 * set to "never") the advice is a no-op. */
static void *arena_alloc(int64_t bytes) {
  const size_t huge = (size_t)2 << 20;
  size_t n = ((size_t)(bytes > 0 ? bytes : 1) + huge - 1) / huge * huge;
  void *a = aligned_alloc(huge, n);
#ifdef MADV_HUGEPAGE
  if (a) (void)madvise(a, n, MADV_HUGEPAGE);
#endif
  return a;
}

/* Lays out the arena with the memory plan (pass_plan_memory: buffers of
 * dead values reused); fills constants. */
static attnc_status layout(cg_program *p, ir_diag *d) {
  const ir_graph *g = p->g;
  pass_memory_plan plan;
  const pass_fusion *f = p->fusion.ngroups ? &p->fusion : NULL;
  if (pass_plan_memory_fused(g, f, !p->opt.interp && !p->opt.no_reuse && !getenv("ATTNC_NO_REUSE"), &plan, d) != ATTNC_OK) return ATTNC_ENOMEM;
  p->ptr = calloc((size_t)g->nnodes + 1, sizeof *p->ptr);
  p->sources = calloc((size_t)g->nnodes + 1, sizeof *p->sources);
  p->stats.buffer_bytes = plan.total_bytes;
  p->stats.arena_bytes = plan.arena_bytes;
  p->arena = arena_alloc(plan.arena_bytes);
  if (!p->ptr || !p->sources || !p->arena) {
    pass_memory_plan_free(&plan);
    ir_diag_error(d, NULL, 0, "out of memory: the buffer arena needs %lld bytes", (long long)plan.arena_bytes);
    return ATTNC_ENOMEM;
  }
  memset(p->arena, p->opt.poison ? 0xff : 0, (size_t)plan.arena_bytes);
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (is_named_source(n)) p->sources[p->nsources++] = i;
    p->ptr[i] = p->arena + plan.offset[i];
    if (n->op == IR_OP_const) {
      ir_tensor t = {n->type, p->ptr[i]};
      double v = ir_get_float(n, "value");
      for (int64_t k = 0; k < ir_type_numel(&n->type); k++) ir_tensor_set(&t, k, v);
    }
  }
  pass_memory_plan_free(&plan);
  return ATTNC_OK;
}

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Returns the index of the distinct kernel with 'key', adding it (with
 * node 'node') if new; -1 if out of memory. */
static int intern_kernel(cg_program *p, const char *key, int node) {
  if (p->nuniq * 2 >= p->hashcap) {
    int cap = p->hashcap ? p->hashcap * 2 : 256;
    int *h = malloc((size_t)cap * sizeof *h);
    if (!h) return -1;
    for (int i = 0; i < cap; i++) h[i] = -1;
    for (int u = 0; u < p->nuniq; u++) {
      size_t s = fnv(p->uniq[u].key) & (size_t)(cap - 1);
      while (h[s] >= 0) s = (s + 1) & (size_t)(cap - 1);
      h[s] = u;
    }
    free(p->hash);
    p->hash = h;
    p->hashcap = cap;
  }
  size_t s = fnv(key) & (size_t)(p->hashcap - 1);
  while (p->hash[s] >= 0) {
    if (!strcmp(p->uniq[p->hash[s]].key, key)) return p->hash[s];
    s = (s + 1) & (size_t)(p->hashcap - 1);
  }
  if (p->nuniq == p->capuniq) {
    int cap = p->capuniq ? p->capuniq * 2 : 64;
    unique_kernel *u = realloc(p->uniq, (size_t)cap * sizeof *u);
    if (!u) return -1;
    p->uniq = u;
    p->capuniq = cap;
  }
  unique_kernel *u = &p->uniq[p->nuniq];
  memset(u, 0, sizeof *u);
  u->key = strdup(key);
  if (!u->key) return -1;
  u->node = node;
  u->group = group_of(p, node);
  snprintf(u->name, sizeof u->name, "k%d_%s", p->nuniq,
           u->group >= 0 ? "fused" : ir_op_info_get(p->g->nodes[node]->op)->name);
  p->hash[s] = p->nuniq;
  return p->nuniq++;
}

/* Adds to the traffic figure the bytes of the distinct buffers of nodes
 * ids[0..n) with at least 4096 elements (one launch's reads and writes). */
static void add_traffic(cg_program *p, const int *ids, int n) {
  for (int k = 0; k < n; k++) {
    const ir_node *x = p->g->nodes[ids[k]];
    int seen = ir_type_numel(&x->type) < 4096;
    for (int j = 0; !seen && j < k; j++) seen = p->ptr[ids[j]] == p->ptr[ids[k]];
    if (!seen) p->stats.traffic_bytes += node_bytes(x);
  }
}

/* The profile text of group 'gi': its label and members' ops and types. */
static char *group_show(const cg_program *p, int gi) {
  const pass_fuse_group *gr = &p->fusion.groups[gi];
  size_t cap = 400, len = 0;
  char *s = malloc(cap + 1);
  if (!s) return NULL;
  len += (size_t)snprintf(s, cap, "fused:%s", gr->label ? gr->label : "group");
  for (int j = 0; j < gr->nmembers && len < cap; j++) {
    const ir_node *n = p->g->nodes[gr->members[j]];
    char t[128];
    ir_type_format(&n->type, t, sizeof t);
    len += (size_t)snprintf(s + len, cap - len, "%s%s %s", j ? ", " : " ", ir_op_info_get(n->op)->name, t);
  }
  if (len >= cap) strcpy(s + cap - 4, "...");
  return s;
}

/* Adds the launch of group 'gi' (at its last member). */
static attnc_status collect_group(cg_program *p, int gi) {
  const pass_fuse_group *gr = &p->fusion.groups[gi];
  int last = pass_fuse_last(gr);
  char *key = cg_fused_key(p->g, gr);
  int u = key ? intern_kernel(p, key, last) : -1;
  free(key);
  if (u < 0) return ATTNC_ENOMEM;
  if (u == p->nuniq - 1 && p->uniq[u].node == last) {
    p->uniq[u].show = group_show(p, gi);
    p->uniq[u].plan = p->fplan[gi];
    if (p->opt.step_profile && gr->kind == PASS_FUSE_SAMPLE) {
      p->uniq[u].step_cycles = calloc((size_t)pass_fuse_nsteps(gr), sizeof(int64_t));
      if (!p->uniq[u].step_cycles) return ATTNC_ENOMEM;
    }
  }
  launch *L = &p->launches[p->nlaunch++];
  L->node = last;
  L->group = gi;
  L->uniq = u;
  L->par = p->uniq[u].plan.par;
  int na = gr->nouts + gr->nins;
  int *ids = malloc((size_t)na * sizeof *ids);
  L->args = calloc((size_t)na, sizeof *L->args);
  if (!L->args || !ids) {
    free(ids);
    return ATTNC_ENOMEM;
  }
  for (int k = 0; k < na; k++) {
    ids[k] = k < gr->nouts ? gr->outs[k] : gr->ins[k - gr->nouts];
    L->args[k] = p->ptr[ids[k]];
  }
  add_traffic(p, ids, na);
  free(ids);
  p->stats.flops += p->uniq[u].plan.flops;
  p->stats.fused_kernels++;
  p->stats.fused_nodes += gr->nmembers;
  return ATTNC_OK;
}

/* Finds the distinct kernels of the graph and the launch list. */
static attnc_status collect_kernels(cg_program *p, ir_diag *d) {
  const ir_graph *g = p->g;
  const cg_kernel_impl *table = cg_kernel_table();
  p->launches = calloc((size_t)g->nnodes + 1, sizeof *p->launches);
  if (!p->launches) return ATTNC_ENOMEM;
  attnc_status st = ATTNC_OK;
  char key[1024];
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    int gi = group_of(p, i);
    if (gi >= 0) {
      const pass_fuse_group *gr = &p->fusion.groups[gi];
      if (pass_fuse_last(gr) != i) continue;
      attnc_status gs = collect_group(p, gi);
      if (gs == ATTNC_ENOMEM) return gs;
      continue;
    }
    if (ir_op_info_get(n->op)->flags & IR_OPF_SOURCE || is_alias(p, i)) continue;
    if (!table[n->op].emit) {
      ir_diag_error(d, n->loc.file, n->loc.line, "%s %%%d: the JIT has no kernel for this op",
                    ir_op_info_get(n->op)->name, n->id);
      st = ATTNC_ERUNTIME;
      continue;
    }
    cg_kernel_key(g, n, key, sizeof key);
    int u = intern_kernel(p, key, i);
    if (u < 0) return ATTNC_ENOMEM;
    if (u == p->nuniq - 1 && p->uniq[u].node == i) {
      cg_plan *pl = &p->uniq[u].plan;
      pl->par = 1;
      pl->algo = NULL;
      table[n->op].plan(g, n, pl);
      if (pl->par < 1) pl->par = 1;
    }
    launch *L = &p->launches[p->nlaunch++];
    L->node = i;
    L->group = -1;
    L->uniq = u;
    L->par = p->uniq[u].plan.par;
    L->par2 = p->uniq[u].plan.par2;
    L->args = calloc((size_t)n->nin + 2, sizeof *L->args); /* + the shared buffer (alloc_scratch) */
    int *ids = malloc(((size_t)n->nin + 1) * sizeof *ids);
    if (!L->args || !ids) {
      free(ids);
      return ATTNC_ENOMEM;
    }
    ids[0] = i;
    L->args[0] = p->ptr[i];
    for (int k = 0; k < n->nin; k++) {
      L->args[1 + k] = p->ptr[n->in[k]];
      ids[1 + k] = n->in[k];
    }
    add_traffic(p, ids, n->nin + 1);
    free(ids);
    p->stats.flops += p->uniq[u].plan.flops;
  }
  p->stats.kernels = p->nlaunch;
  p->stats.unique_kernels = p->nuniq;
  return st;
}

/* Builds the distinct kernels u with u % nparts == part into module 'm'
 * (a cg_jit_build_fn; reads the program only). */
static attnc_status build_part(void *arg, int part, int nparts, LLVMModuleRef m, ir_diag *d) {
  const cg_program *p = arg;
  const cg_kernel_impl *table = cg_kernel_table();
  for (int u = part; u < p->nuniq; u += nparts) {
    const ir_node *n = p->g->nodes[p->uniq[u].node];
    attnc_status st = p->uniq[u].group >= 0
                          ? cg_fused_build(m, p->uniq[u].name, p->fk[p->uniq[u].group], p->uniq[u].step_cycles, d)
                          : cg_build_kernel(m, p->uniq[u].name, p->g, n, &table[n->op], &p->uniq[u].plan, d);
    if (st != ATTNC_OK) return st;
  }
  return ATTNC_OK;
}

/* Compiles the kernels, in one module per thread (at most 8), and resolves
 * their addresses. The stage times are the slowest thread's; linking and
 * lookup count as code generation. */
static attnc_status compile(cg_program *p, ir_diag *d) {
  attnc_status st = cg_jit_create(&p->jit, d);
  if (st != ATTNC_OK) return st;
  int nparts = p->stats.threads < 8 ? p->stats.threads : 8;
  if (nparts > p->nuniq) nparts = p->nuniq;
  (void)cg_host_vector_floats(); /* cached before the threads read it */
  double times[3];
  st = cg_jit_compile(p->jit, nparts, build_part, p, times, d);
  double t2 = now_s();
  for (int u = 0; st == ATTNC_OK && u < p->nuniq; u++) {
    void *addr;
    st = cg_jit_lookup(p->jit, p->uniq[u].name, &addr, d);
    p->uniq[u].fn = (kernel_fn)addr;
  }
  p->stats.lower_s = times[0];
  p->stats.opt_s = times[1];
  p->stats.jit_s = times[2] + (now_s() - t2);
  for (int k = 0; k < p->nlaunch; k++) p->launches[k].fn = p->uniq[p->launches[k].uniq].fn;
  return st;
}

/* Allocates the per-thread scratch. */
static attnc_status alloc_scratch(cg_program *p, ir_diag *d) {
  int64_t per = 0;
  for (int u = 0; u < p->nuniq; u++)
    if (p->uniq[u].plan.scratch_bytes > per) per = p->uniq[u].plan.scratch_bytes;
  p->scratch_per = align64(per > 0 ? per : 64);
  p->stats.scratch_bytes = p->scratch_per * p->stats.threads;
  p->scratch = aligned_alloc(64, (size_t)p->stats.scratch_bytes);
  if (!p->scratch) {
    ir_diag_error(d, NULL, 0, "out of memory for kernel scratch");
    return ATTNC_ENOMEM;
  }
  memset(p->scratch, 0, (size_t)p->stats.scratch_bytes);
  int64_t shared = 0;
  for (int u = 0; u < p->nuniq; u++)
    if (p->uniq[u].group < 0 && p->uniq[u].plan.shared_bytes > shared) shared = align64(p->uniq[u].plan.shared_bytes);
  if (shared == 0) return ATTNC_OK;
  p->shared = aligned_alloc(64, (size_t)shared);
  if (!p->shared) {
    ir_diag_error(d, NULL, 0, "out of memory for kernel scratch");
    return ATTNC_ENOMEM;
  }
  memset(p->shared, 0, (size_t)shared);
  p->stats.scratch_bytes += shared;
  for (int k = 0; k < p->nlaunch; k++) {
    launch *L = &p->launches[k];
    if (L->group < 0 && p->uniq[L->uniq].plan.shared_bytes > 0) L->args[1 + p->g->nodes[L->node]->nin] = p->shared;
  }
  return ATTNC_OK;
}

/* Deep copy of the groups of 'f' into *to (group_of rebuilt). */
static attnc_status copy_fusion(const ir_graph *g, const pass_fusion *f, pass_fusion *to) {
  memset(to, 0, sizeof *to);
  to->nnodes = g->nnodes;
  to->group_of = malloc(((size_t)g->nnodes + 1) * sizeof *to->group_of);
  to->groups = calloc((size_t)f->ngroups + 1, sizeof *to->groups);
  if (!to->group_of || !to->groups) return ATTNC_ENOMEM;
  for (int i = 0; i < g->nnodes; i++) to->group_of[i] = -1;
  for (int gi = 0; gi < f->ngroups; gi++) {
    const pass_fuse_group *s = &f->groups[gi];
    pass_fuse_group *t = &to->groups[to->ngroups++];
    *t = *s;
    t->members = malloc(((size_t)s->nmembers + 1) * sizeof(int));
    t->step_start = malloc(((size_t)s->nsteps + 1) * sizeof(int));
    t->outs = malloc(((size_t)s->nouts + 1) * sizeof(int));
    t->ins = malloc(((size_t)s->nins + 1) * sizeof(int));
    if (!t->members || !t->step_start || !t->outs || !t->ins) return ATTNC_ENOMEM;
    memcpy(t->members, s->members, (size_t)s->nmembers * sizeof(int));
    memcpy(t->step_start, s->step_start, (size_t)s->nsteps * sizeof(int));
    memcpy(t->outs, s->outs, (size_t)s->nouts * sizeof(int));
    memcpy(t->ins, s->ins, (size_t)s->nins * sizeof(int));
    for (int j = 0; j < s->nmembers; j++)
      if (s->members[j] >= 0 && s->members[j] < g->nnodes) to->group_of[s->members[j]] = gi;
  }
  return ATTNC_OK;
}

/* Prepares the kernel of every group of p->fusion; groups the JIT cannot
 * compile are dropped (their members run as single nodes). */
static attnc_status prepare_groups(cg_program *p) {
  pass_fusion *f = &p->fusion;
  p->fk = calloc((size_t)f->ngroups + 1, sizeof *p->fk);
  p->fplan = calloc((size_t)f->ngroups + 1, sizeof *p->fplan);
  if (!p->fk || !p->fplan) return ATTNC_ENOMEM;
  int kept = 0;
  for (int gi = 0; gi < f->ngroups; gi++) {
    pass_fuse_group *gr = &f->groups[gi];
    cg_plan plan = {0};
    cg_fused *k = cg_fused_prepare(p->g, gr, &plan);
    if (!k) {
      free(gr->members);
      free(gr->step_start);
      free(gr->outs);
      free(gr->ins);
      continue;
    }
    f->groups[kept] = *gr;
    p->fplan[kept] = plan;
    p->fk[kept++] = k;
  }
  f->ngroups = kept;
  /* prepared kernels point at their group: fix after compaction */
  for (int gi = 0; gi < kept; gi++) {
    cg_fused_free(p->fk[gi]);
    p->fk[gi] = cg_fused_prepare(p->g, &f->groups[gi], &p->fplan[gi]);
    if (!p->fk[gi]) return ATTNC_ENOMEM;
  }
  for (int i = 0; i < p->g->nnodes; i++) f->group_of[i] = -1;
  for (int gi = 0; gi < kept; gi++)
    for (int j = 0; j < f->groups[gi].nmembers; j++) f->group_of[f->groups[gi].members[j]] = gi;
  return ATTNC_OK;
}

/* Creates the program with the groups 'given', or those of pass_fuse when
 * NULL, unless fusion is off. */
static attnc_status create(const ir_graph *g, const cg_options *o, const pass_fusion *given,
                           cg_program **out, ir_diag *d) {
  *out = NULL;
  cg_program *p = calloc(1, sizeof *p);
  if (!p) return ATTNC_ENOMEM;
  if (o) p->opt = *o;
  p->stats.threads = p->opt.threads > 0 ? p->opt.threads : omp_get_num_procs();
  p->g = ir_graph_clone(g);
  attnc_status st = p->g ? ATTNC_OK : ATTNC_ENOMEM;
  const char *env = getenv("ATTNC_NO_FUSE");
  int fuse = !p->opt.interp && !p->opt.no_fuse && !(env && !strcmp(env, "1"));
  if (st == ATTNC_OK && fuse) {
    st = given ? copy_fusion(p->g, given, &p->fusion) : pass_fuse(p->g, &p->fusion, d);
    if (st == ATTNC_OK) st = prepare_groups(p);
  }
  if (st == ATTNC_OK) st = layout(p, d);
  if (st == ATTNC_OK && p->opt.interp) {
    p->interp_out = calloc((size_t)p->g->noutputs + 1, sizeof *p->interp_out);
    for (int i = 0; p->interp_out && i < p->g->noutputs; i++) {
      const ir_node *n = p->g->nodes[p->g->outputs[i].node];
      p->interp_out[i] = calloc(1, (size_t)node_bytes(n) + 64);
      if (!p->interp_out[i]) st = ATTNC_ENOMEM;
    }
    if (!p->interp_out) st = ATTNC_ENOMEM;
  } else if (st == ATTNC_OK) {
    st = collect_kernels(p, d);
    if (st == ATTNC_OK) st = compile(p, d);
    if (st == ATTNC_OK) st = alloc_scratch(p, d);
  }
  if (st != ATTNC_OK) {
    if (st == ATTNC_ENOMEM && !ir_diag_count(d)) ir_diag_error(d, NULL, 0, "out of memory compiling");
    cg_program_destroy(p);
    return st;
  }
  *out = p;
  return ATTNC_OK;
}

/* Creates the program. */
attnc_status cg_program_create(const ir_graph *g, const cg_options *o, cg_program **out,
                               ir_diag *d) {
  return create(g, o, NULL, out, d);
}

/* Creates the program with the given fusion groups. */
attnc_status cg_program_create_fused(const ir_graph *g, const cg_options *o, const pass_fusion *f,
                                     cg_program **out, ir_diag *d) {
  return create(g, o, f, out, d);
}

/* Frees the program. */
void cg_program_destroy(cg_program *p) {
  if (!p) return;
  for (int k = 0; k < p->nlaunch; k++) free(p->launches[k].args);
  free(p->launches);
  for (int u = 0; u < p->nuniq; u++) {
    free(p->uniq[u].key);
    free(p->uniq[u].show);
    free(p->uniq[u].step_cycles);
  }
  for (int gi = 0; p->fk && gi < p->fusion.ngroups; gi++) cg_fused_free(p->fk[gi]);
  free(p->fk);
  free(p->fplan);
  if (p->fusion.group_of) pass_fusion_free(&p->fusion);
  free(p->uniq);
  free(p->hash);
  cg_jit_destroy(p->jit);
  if (p->interp_out && p->g)
    for (int i = 0; i < p->g->noutputs; i++) free(p->interp_out[i]);
  free(p->interp_out);
  free(p->fb);
  free(p->scratch);
  free(p->shared);
  free(p->arena);
  free(p->ptr);
  free(p->sources);
  ir_graph_destroy(p->g);
  free(p);
}

void *cg_program_input(cg_program *p, const char *name, ir_type *t) {
  for (int i = 0; i < p->nsources; i++) {
    const ir_node *n = p->g->nodes[p->sources[i]];
    if (!strcmp(ir_get_str(n, "name"), name)) {
      if (t) *t = n->type;
      return p->ptr[n->id];
    }
  }
  return NULL;
}

void *cg_program_output(cg_program *p, const char *name, ir_type *t) {
  for (int i = 0; i < p->g->noutputs; i++)
    if (!strcmp(p->g->outputs[i].name, name)) {
      const ir_node *n = p->g->nodes[p->g->outputs[i].node];
      if (t) *t = n->type;
      return p->interp_out ? p->interp_out[i] : p->ptr[n->id];
    }
  return NULL;
}

int cg_program_input_count(const cg_program *p) { return p->nsources; }

const char *cg_program_input_name(const cg_program *p, int i, ir_type *t) {
  const ir_node *n = p->g->nodes[p->sources[i]];
  if (t) *t = n->type;
  return ir_get_str(n, "name");
}

int cg_program_output_count(const cg_program *p) { return p->g->noutputs; }

const char *cg_program_output_name(const cg_program *p, int i, ir_type *t) {
  if (t) *t = p->g->nodes[p->g->outputs[i].node]->type;
  return p->g->outputs[i].name;
}

/* Runs the graph in the interpreter over copies of the sources. */
static attnc_status run_interp(cg_program *p, ir_diag *d) {
  ir_bundle *in = ir_bundle_create(), *out = ir_bundle_create();
  attnc_status st = (in && out) ? ATTNC_OK : ATTNC_ENOMEM;
  for (int i = 0; st == ATTNC_OK && i < p->nsources; i++) {
    const ir_node *n = p->g->nodes[p->sources[i]];
    ir_tensor *t = ir_tensor_create(n->type);
    if (!t) {
      st = ATTNC_ENOMEM;
      break;
    }
    memcpy(t->data, p->ptr[n->id], (size_t)node_bytes(n));
    ir_bundle_put(in, ir_get_str(n, "name"), t);
  }
  if (st == ATTNC_OK) st = ir_interp_run(p->g, in, IR_INTERP_NATIVE, out, d);
  for (int i = 0; st == ATTNC_OK && i < p->g->noutputs; i++) {
    const ir_tensor *t = ir_bundle_get(out, p->g->outputs[i].name);
    if (t) memcpy(p->interp_out[i], t->data, (size_t)node_bytes(p->g->nodes[p->g->outputs[i].node]));
  }
  ir_bundle_destroy(in);
  ir_bundle_destroy(out);
  return st;
}

/* Runs every kernel in order; each thread takes its share of each. */
static void run_jit(cg_program *p) {
  int want = p->stats.threads;
  int profile = p->profile;
#pragma omp parallel num_threads(want)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    void *scratch = p->scratch + (int64_t)t * p->scratch_per;
    for (int k = 0; k < p->nlaunch; k++) {
      launch *L = &p->launches[k];
      double t0 = profile ? now_s() : 0, busy = 0; /* a thread with no share has no busy time */
      int64_t b = L->par * t / nt, e = L->par * (t + 1) / nt;
      if (b < e) {
        L->fn(L->args, b, e, scratch);
        if (profile) busy = now_s() - t0;
      }
#pragma omp barrier
      if (L->par2 > 0) {
        b = L->par + L->par2 * t / nt, e = L->par + L->par2 * (t + 1) / nt;
        if (b < e) {
          double t1 = profile ? now_s() : 0;
          L->fn(L->args, b, e, scratch);
          if (profile) busy += now_s() - t1;
        }
#pragma omp barrier
      }
      if (profile) {
#pragma omp atomic
        L->busy += busy;
        if (t == 0) L->secs += now_s() - t0;
      }
    }
  }
}

/* Runs the program once. */
attnc_status cg_program_run(cg_program *p, ir_diag *d) {
  if (p->interp_out) return run_interp(p, d);
  run_jit(p);
  if (p->profile) p->profile_runs++;
  return ATTNC_OK;
}

/* Copies 'src' into the source of type 't' at 'dst', converting float dtypes. */
static attnc_status copy_in(const char *name, const ir_type *t, void *dst, const ir_tensor *src,
                            ir_diag *d) {
  int same = src->type.rank == t->rank;
  for (int i = 0; same && i < t->rank; i++) same = src->type.dims[i] == t->dims[i];
  if (!same) {
    char want[128], got[128];
    ir_type_format(t, want, sizeof want);
    ir_type_format(&src->type, got, sizeof got);
    ir_diag_error(d, NULL, 0, "tensor '%s' is %s, the program expects %s", name, got, want);
    return ATTNC_EINVAL;
  }
  if (src->type.dtype == t->dtype) {
    memcpy(dst, src->data, (size_t)(ir_type_numel(t) * (int64_t)ir_dtype_size(t->dtype)));
    return ATTNC_OK;
  }
  ir_tensor view = {*t, dst};
  for (int64_t i = 0; i < ir_type_numel(t); i++) ir_tensor_set(&view, i, ir_tensor_get(src, i));
  return ATTNC_OK;
}

/* Copies sources in, runs, copies outputs out. */
attnc_status cg_program_run_bundle(cg_program *p, const ir_bundle *in, ir_bundle *out, ir_diag *d) {
  for (int i = 0; in && i < in->count; i++) {
    ir_type t;
    void *dst = cg_program_input(p, in->names[i], &t);
    if (!dst) continue;
    attnc_status st = copy_in(in->names[i], &t, dst, in->tensors[i], d);
    if (st != ATTNC_OK) return st;
  }
  attnc_status st = cg_program_run(p, d);
  for (int i = 0; st == ATTNC_OK && out && i < p->g->noutputs; i++) {
    ir_type t;
    const char *name = cg_program_output_name(p, i, &t);
    ir_tensor *x = ir_tensor_create(t);
    if (!x) return ATTNC_ENOMEM;
    memcpy(x->data, cg_program_output(p, name, NULL), (size_t)(ir_type_numel(&t) * (int64_t)ir_dtype_size(t.dtype)));
    ir_bundle_put(out, name, x);
  }
  return st;
}

/* Copies outputs named like sources into them (pairs found on first use). */
int cg_program_feedback(cg_program *p) {
  if (!p->fb_ready) {
    p->fb = calloc((size_t)p->g->noutputs + 1, sizeof *p->fb);
    if (!p->fb) return -1;
    for (int i = 0; i < p->g->noutputs; i++) {
      ir_type t;
      const char *name = cg_program_output_name(p, i, &t);
      void *src = cg_program_input(p, name, NULL);
      if (!src || src == cg_program_output(p, name, NULL)) continue;
      p->fb[p->nfb].val = cg_program_output(p, name, NULL);
      p->fb[p->nfb].src = src;
      p->fb[p->nfb].bytes = (size_t)(ir_type_numel(&t) * (int64_t)ir_dtype_size(t.dtype));
      p->nfb++;
    }
    p->fb_ready = 1;
  }
  for (int k = 0; k < p->nfb; k++) memcpy(p->fb[k].src, p->fb[k].val, p->fb[k].bytes);
  return p->nfb;
}

const cg_stats *cg_program_stats(const cg_program *p) { return &p->stats; }

void cg_program_set_profile(cg_program *p, int on) {
  p->profile = on;
  if (on) {
    p->profile_runs = 0;
    for (int k = 0; k < p->nlaunch; k++) p->launches[k].secs = p->launches[k].busy = 0;
    for (int u = 0; u < p->nuniq; u++)
      if (p->uniq[u].step_cycles)
        memset(p->uniq[u].step_cycles, 0,
               (size_t)pass_fuse_nsteps(&p->fusion.groups[p->uniq[u].group]) * sizeof(int64_t));
  }
}

/* Profile row: one distinct kernel. */
typedef struct {
  int uniq;
  int calls;
  double secs;
  double busy; /* the threads' time inside its calls, added up */
} prof_row;

static int by_time(const void *a, const void *b) {
  double x = ((const prof_row *)a)->secs, y = ((const prof_row *)b)->secs;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Prints the steps of sample-group kernel 'u' (its time per run 'secs'):
 * each step's share of the counted cycles, that share of the time, and
 * its members' ops (a one-member step: the op and its type). */
static void print_steps(const cg_program *p, FILE *f, const unique_kernel *u, double secs) {
  const pass_fuse_group *gr = &p->fusion.groups[u->group];
  int nsteps = pass_fuse_nsteps(gr);
  int64_t total = 0;
  for (int s = 0; s < nsteps; s++) total += u->step_cycles[s];
  if (total <= 0) return;
  for (int s = 0; s < nsteps; s++) {
    int a, b;
    pass_fuse_step(gr, s, &a, &b);
    double share = (double)u->step_cycles[s] / (double)total;
    char ops[200];
    size_t len = 0;
    if (b - a == 1) {
      const ir_node *n = p->g->nodes[gr->members[a]];
      char t[128];
      ir_type_format(&n->type, t, sizeof t);
      snprintf(ops, sizeof ops, "%s %s", ir_op_info_get(n->op)->name, t);
    } else {
      len = (size_t)snprintf(ops, sizeof ops, "loop of %d:", b - a);
      for (int j = a; j < b && len < sizeof ops; j++)
        len += (size_t)snprintf(ops + len, sizeof ops - len, " %s", ir_op_info_get(p->g->nodes[gr->members[j]]->op)->name);
      if (len >= sizeof ops) strcpy(ops + sizeof ops - 5, " ...");
    }
    fprintf(f, "%10.3f %6.1f %6s %5s %5s    step %d: %s\n", secs * share * 1e3, 100 * share, "", "", "", s + 1, ops);
  }
}

/* The share (%) of 'nt' threads' time over 'secs' not spent in kernels,
 * of which they spent 'busy' seconds in all. */
static double wait_pct(double busy, double secs, int nt) {
  double w = secs > 0 ? 100 * (1 - busy / (secs * nt)) : 0;
  return w < 0 ? 0 : w;
}

/* Prints time per run of each distinct kernel (all its calls), averaged
 * over the profiled runs. */
void cg_program_print_profile(const cg_program *p, FILE *f, int top) {
  prof_row *rows = calloc((size_t)p->nuniq + 1, sizeof *rows);
  if (!rows) return;
  double total = 0, busy = 0;
  for (int u = 0; u < p->nuniq; u++) rows[u].uniq = u;
  for (int k = 0; k < p->nlaunch; k++) {
    rows[p->launches[k].uniq].calls++;
    rows[p->launches[k].uniq].secs += p->launches[k].secs;
    rows[p->launches[k].uniq].busy += p->launches[k].busy;
    total += p->launches[k].secs;
    busy += p->launches[k].busy;
  }
  qsort(rows, (size_t)p->nuniq, sizeof *rows, by_time);
  double runs = p->profile_runs > 0 ? p->profile_runs : 1;
  total /= runs;
  int nt = p->stats.threads > 0 ? p->stats.threads : 1;
  fprintf(f, "per run, averaged over %d runs (time includes waiting at the barrier after each call;\n"
             "wait%%: the share of the %d threads' time spent there, idle; GF/s counts a convolution's\n"
             "multiply-adds as the direct sum, whatever [algorithm] it took)\n",
          p->profile_runs, nt);
  fprintf(f, "%10s %6s %6s %5s %5s  %s\n", "ms", "%", "calls", "GF/s", "wait%", "kernel");
  for (int r = 0; r < p->nuniq && (top <= 0 || r < top); r++) {
    const unique_kernel *u = &p->uniq[rows[r].uniq];
    double secs = rows[r].secs / runs;
    double gf = secs > 0 ? u->plan.flops * rows[r].calls / secs * 1e-9 : 0;
    char algo[32] = "";
    if (u->plan.algo) snprintf(algo, sizeof algo, "[%s] ", u->plan.algo);
    fprintf(f, "%10.3f %6.2f %6d %5.0f %5.1f  %s%s\n", secs * 1e3, total > 0 ? 100 * secs / total : 0,
            rows[r].calls, gf, wait_pct(rows[r].busy / runs, secs, nt), algo, u->show ? u->show : u->key);
    if (u->step_cycles) print_steps(p, f, u, secs);
  }
  fprintf(f, "%10.3f total over %d kernel calls, %.1f%% of the threads' time waiting\n", total * 1e3, p->nlaunch,
          wait_pct(busy / runs, total, nt));
  free(rows);
}

/* qsort order of profile kinds: most time first, then by name. */
static int by_kind_time(const void *a, const void *b) {
  double x = ((const cg_profile_kind *)a)->ms, y = ((const cg_profile_kind *)b)->ms;
  return x < y ? 1 : x > y ? -1 : strcmp(((const cg_profile_kind *)a)->kind, ((const cg_profile_kind *)b)->kind);
}

/* Sums the profile by kind of kernel (the first word of its text). */
int cg_program_profile_kinds(const cg_program *p, cg_profile_kind *out, int max) {
  cg_profile_kind *all = calloc((size_t)p->nuniq + 1, sizeof *all);
  if (!all) return -1;
  double runs = p->profile_runs > 0 ? p->profile_runs : 1;
  int n = 0;
  for (int k = 0; k < p->nlaunch; k++) {
    const unique_kernel *u = &p->uniq[p->launches[k].uniq];
    const char *text = u->show ? u->show : u->key; /* its first word is the kind */
    char kind[sizeof all->kind];
    size_t len = strcspn(text, " ");
    if (len >= sizeof kind) len = sizeof kind - 1;
    memcpy(kind, text, len);
    kind[len] = '\0';
    int i = 0;
    while (i < n && strcmp(all[i].kind, kind)) i++;
    if (i == n) memcpy(all[n++].kind, kind, len + 1);
    all[i].ms += p->launches[k].secs * 1e3 / runs;
    all[i].calls++;
  }
  qsort(all, (size_t)n, sizeof *all, by_kind_time);
  memcpy(out, all, sizeof *all * (size_t)(n < max ? n : max));
  free(all);
  return n;
}

/* Text of the optimized kernels of 'g'. */
attnc_status cg_emit_text(const ir_graph *g, const cg_options *o, int asm_text, char **out, ir_diag *d) {
  *out = NULL;
  cg_program *p = calloc(1, sizeof *p);
  if (!p) return ATTNC_ENOMEM;
  if (o) p->opt = *o;
  p->g = ir_graph_clone(g);
  attnc_status st = p->g ? ATTNC_OK : ATTNC_ENOMEM;
  const char *env = getenv("ATTNC_NO_FUSE"); /* the kernels that run: fused unless turned off */
  if (st == ATTNC_OK && !p->opt.no_fuse && !(env && !strcmp(env, "1"))) {
    st = pass_fuse(p->g, &p->fusion, d);
    if (st == ATTNC_OK) st = prepare_groups(p);
  }
  if (st == ATTNC_OK) st = layout(p, d);
  if (st == ATTNC_OK) st = collect_kernels(p, d);
  if (st == ATTNC_OK) st = cg_jit_create(&p->jit, d);
  LLVMModuleRef m = NULL;
  if (st == ATTNC_OK) {
    m = cg_jit_module(p->jit, p->g->name ? p->g->name : "attnc");
    st = build_part(p, 0, 1, m, d); /* one module: the text reads top to bottom */
  }
  if (st == ATTNC_OK) st = cg_jit_optimize(p->jit, m, d);
  if (st == ATTNC_OK && asm_text) {
    char *text = NULL;
    st = cg_jit_asm(p->jit, m, &text, d);
    *out = text;
  } else if (st == ATTNC_OK) {
    char *text = LLVMPrintModuleToString(m);
    *out = strdup(text);
    LLVMDisposeMessage(text);
  }
  if (st == ATTNC_OK && *out) {
    /* a table of contents: which kernel is which op */
    size_t len = strlen(*out) + 64;
    for (int u = 0; u < p->nuniq; u++) len += strlen(p->uniq[u].key) + 48;
    char *all = malloc(len), *w = all;
    if (all) {
      const char *c = asm_text ? "#" : ";";
      w += sprintf(w, "%s %d distinct kernels\n", c, p->nuniq);
      for (int u = 0; u < p->nuniq; u++) w += sprintf(w, "%s %s: %s\n", c, p->uniq[u].name, p->uniq[u].key);
      strcpy(w, *out);
      free(*out);
      *out = all;
    }
  }
  if (m) LLVMDisposeModule(m);
  cg_program_destroy(p);
  return st;
}
