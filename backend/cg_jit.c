/* The LLVM session of a program: a target machine for the host CPU (its
 * name and features, so AVX-512 where the machine has it), the O3 pipeline
 * of the new pass manager, and an ORC LLJIT that turns optimized modules
 * into callable code. */
#include <stdlib.h>
#include <string.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/ExecutionEngine.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/OrcEE.h>
#include <llvm-c/Target.h>
#include <llvm-c/Support.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <time.h>
#include "cg_internal.h"

struct cg_jit {
  LLVMOrcThreadSafeContextRef tsc;
  LLVMContextRef ctx;
  LLVMOrcLLJITRef jit;
  LLVMTargetMachineRef tm; /* for the pass pipeline and assembly */
  char *triple;
  LLVMTargetDataRef layout;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Registers the native target and sets two LLVM loop options,
 * once per process. At O3's default (300, boosted up to 4x for loops whose
 * unrolled body simplifies) LLVM fully unrolled the constant-trip loops of
 * some kernels (the 7x7 spatial weight gradient, 28-wide per-sample groups)
 * into tens of thousands of instructions: the ResNet-20+HAM training step
 * at 1x28x28 took 31 s to compile, 10 s at 100, with step times within
 * run-to-run noise (bench/README.md, "Compile time"). The kernels' own
 * register tiles are unrolled by the emitter, not by LLVM.
 * It also lets the loop vectorizer check up to 64 pointer pairs for overlap
 * at run time (default 8): a fused loop nest reads and writes a dozen
 * buffers, and past 8 checks LLVM left it scalar (ResNet-20+HAM's
 * backward loop over relu_grad, three products and two channel sums ran
 * at a third of the speed). */
static void init_native(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMInitializeNativeAsmParser();
  const char *argv[32] = {"attnc", "-unroll-threshold-aggressive=100", "-runtime-memory-check-threshold=64"};
  int argc = 3;
  /* ATTNC_LLVM_ARGS: more LLVM options, space-separated, for looking into
   * the optimizer (e.g. -pass-remarks-missed=loop-vectorize); a profiling
   * and debugging aid, see docs/FUSION.md */
  static char extra[1024];
  const char *env = getenv("ATTNC_LLVM_ARGS");
  if (env && strlen(env) < sizeof extra) {
    strcpy(extra, env);
    for (char *tok = strtok(extra, " "); tok && argc < 32; tok = strtok(NULL, " ")) argv[argc++] = tok;
  }
  LLVMParseCommandLineOptions(argc, argv, NULL);
}

/* Reports an LLVMErrorRef (consuming it) under 'what'. */
static attnc_status llvm_error(ir_diag *d, const char *what, LLVMErrorRef err) {
  char *msg = LLVMGetErrorMessage(err);
  ir_diag_error(d, NULL, 0, "LLVM: %s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return ATTNC_ERUNTIME;
}

/* Creates a target machine for the host CPU at full optimization. */
static LLVMTargetMachineRef host_machine(const char *triple, ir_diag *d) {
  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &err)) {
    ir_diag_error(d, NULL, 0, "LLVM: no target for %s: %s", triple, err ? err : "?");
    LLVMDisposeMessage(err);
    return NULL;
  }
  char *cpu = LLVMGetHostCPUName();
  char *features = LLVMGetHostCPUFeatures();
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features,
                                                    LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                                    LLVMCodeModelJITDefault);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  if (!tm) ir_diag_error(d, NULL, 0, "LLVM: cannot create a target machine for %s", triple);
  return tm;
}

/* The JIT's object layer, telling perf about each kernel it loads (the
 * jit-PID.dump that 'perf inject --jit' reads), for ATTNC_PERF=1. */
static LLVMOrcObjectLayerRef perf_layer(void *ctx, LLVMOrcExecutionSessionRef es, const char *triple) {
  (void)ctx;
  (void)triple;
  LLVMOrcObjectLayerRef layer = LLVMOrcCreateRTDyldObjectLinkingLayerWithSectionMemoryManager(es);
  LLVMJITEventListenerRef perf = LLVMCreatePerfJITEventListener();
  if (perf) LLVMOrcRTDyldObjectLinkingLayerRegisterJITEventListener(layer, perf);
  return layer;
}

/* Creates the JIT. */
attnc_status cg_jit_create(cg_jit **out, ir_diag *d) {
  pthread_once(&init_once, init_native);
  *out = NULL;
  cg_jit *j = calloc(1, sizeof *j);
  if (!j) return ATTNC_ENOMEM;
  j->triple = LLVMGetDefaultTargetTriple();
  j->tm = host_machine(j->triple, d);
  LLVMTargetMachineRef jtm = j->tm ? host_machine(j->triple, d) : NULL;
  if (!jtm) {
    cg_jit_destroy(j);
    return ATTNC_ERUNTIME;
  }
  j->layout = LLVMCreateTargetDataLayout(j->tm);
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
      builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jtm));
  const char *perf = getenv("ATTNC_PERF"); /* a profiling aid: see docs/FUSION.md */
  if (perf && !strcmp(perf, "1")) LLVMOrcLLJITBuilderSetObjectLinkingLayerCreator(builder, perf_layer, NULL);
  LLVMErrorRef err = LLVMOrcCreateLLJIT(&j->jit, builder);
  if (err) {
    j->jit = NULL;
    cg_jit_destroy(j);
    return llvm_error(d, "creating the JIT", err);
  }
  LLVMOrcDefinitionGeneratorRef gen;
  err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
      &gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
  if (err) {
    cg_jit_destroy(j);
    return llvm_error(d, "process symbols", err);
  }
  LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
  j->tsc = LLVMOrcCreateNewThreadSafeContext();
  j->ctx = LLVMOrcThreadSafeContextGetContext(j->tsc);
  *out = j;
  return ATTNC_OK;
}

/* Frees the JIT and all code it made. */
void cg_jit_destroy(cg_jit *j) {
  if (!j) return;
  if (j->jit) LLVMOrcDisposeLLJIT(j->jit);
  if (j->tsc) LLVMOrcDisposeThreadSafeContext(j->tsc);
  if (j->layout) LLVMDisposeTargetData(j->layout);
  if (j->tm) LLVMDisposeTargetMachine(j->tm);
  LLVMDisposeMessage(j->triple);
  free(j);
}

LLVMContextRef cg_jit_context(cg_jit *j) { return j->ctx; }

/* Creates an empty module for the host. */
LLVMModuleRef cg_jit_module(cg_jit *j, const char *name) {
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext(name, j->ctx);
  LLVMSetTarget(m, j->triple);
  LLVMSetModuleDataLayout(m, j->layout);
  return m;
}

/* Verifies 'm' and runs the O3 pipeline for target machine 'tm'. */
static attnc_status optimize(LLVMTargetMachineRef tm, LLVMModuleRef m, ir_diag *d) {
  char *msg = NULL;
  if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
    ir_diag_error(d, NULL, 0, "LLVM: generated module does not verify: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return ATTNC_ERUNTIME;
  }
  LLVMDisposeMessage(msg);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
  LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
  LLVMErrorRef err = LLVMRunPasses(m, "default<O3>", tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (err) return llvm_error(d, "O3 pipeline", err);
  return ATTNC_OK;
}

/* Verifies and optimizes 'm' at O3. */
attnc_status cg_jit_optimize(cg_jit *j, LLVMModuleRef m, ir_diag *d) { return optimize(j->tm, m, d); }

/* Seconds of a monotonic clock. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One compile thread: its part of the kernels, built, optimized and turned
 * into an object file in an LLVM context and target machine of its own. */
typedef struct {
  cg_jit *j;
  int part, nparts;
  cg_jit_build_fn build;
  void *arg;
  ir_diag *d;          /* this thread's diagnostics */
  attnc_status st;
  LLVMMemoryBufferRef obj;
  double build_s, opt_s, emit_s;
} compile_job;

/* Runs one compile_job (the pthread entry). */
static void *compile_part(void *v) {
  compile_job *c = v;
  double t0 = now_s();
  LLVMTargetMachineRef tm = host_machine(c->j->triple, c->d);
  if (!tm) {
    c->st = ATTNC_ERUNTIME;
    return NULL;
  }
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("attnc", ctx);
  LLVMSetTarget(m, c->j->triple);
  LLVMSetModuleDataLayout(m, layout);
  c->st = c->build(c->arg, c->part, c->nparts, m, c->d);
  double t1 = now_s();
  if (c->st == ATTNC_OK) c->st = optimize(tm, m, c->d);
  double t2 = now_s();
  char *msg = NULL;
  if (c->st == ATTNC_OK && LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &msg, &c->obj)) {
    ir_diag_error(c->d, NULL, 0, "LLVM: emitting machine code: %s", msg ? msg : "?");
    c->obj = NULL;
    c->st = ATTNC_ERUNTIME;
  }
  LLVMDisposeMessage(msg);
  c->build_s = t1 - t0, c->opt_s = t2 - t1, c->emit_s = now_s() - t2;
  LLVMDisposeModule(m);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetData(layout);
  LLVMDisposeTargetMachine(tm);
  return NULL;
}

/* Compiles kernels in 'nparts' modules on as many threads (see cg_internal.h). */
attnc_status cg_jit_compile(cg_jit *j, int nparts, cg_jit_build_fn build, void *arg, double times[3],
                            ir_diag *d) {
  if (nparts < 1) nparts = 1;
  compile_job *jobs = calloc((size_t)nparts, sizeof *jobs);
  pthread_t *tid = calloc((size_t)nparts, sizeof *tid);
  int *started = calloc((size_t)nparts, sizeof *started);
  attnc_status st = jobs && tid && started ? ATTNC_OK : ATTNC_ENOMEM;
  for (int k = 0; st == ATTNC_OK && k < nparts; k++) {
    jobs[k] = (compile_job){.j = j, .part = k, .nparts = nparts, .build = build, .arg = arg,
                            .d = ir_diag_create(), .st = ATTNC_OK};
    if (!jobs[k].d) st = ATTNC_ENOMEM;
  }
  for (int k = 1; st == ATTNC_OK && k < nparts; k++) /* part 0 runs on this thread */
    started[k] = pthread_create(&tid[k], NULL, compile_part, &jobs[k]) == 0;
  if (st == ATTNC_OK) compile_part(&jobs[0]);
  for (int k = 1; st == ATTNC_OK && k < nparts; k++) {
    if (started[k]) pthread_join(tid[k], NULL);
    else compile_part(&jobs[k]); /* no thread: compile it here */
  }
  if (times) times[0] = times[1] = times[2] = 0;
  for (int k = 0; jobs && k < nparts; k++) {
    if (st == ATTNC_OK && jobs[k].st != ATTNC_OK) {
      ir_diag_error(d, NULL, 0, "%s", ir_diag_text(jobs[k].d));
      st = jobs[k].st;
    }
    if (times) {
      if (jobs[k].build_s > times[0]) times[0] = jobs[k].build_s;
      if (jobs[k].opt_s > times[1]) times[1] = jobs[k].opt_s;
      if (jobs[k].emit_s > times[2]) times[2] = jobs[k].emit_s;
    }
  }
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
  for (int k = 0; jobs && k < nparts; k++) {
    if (jobs[k].obj && st == ATTNC_OK) {
      LLVMErrorRef err = LLVMOrcLLJITAddObjectFile(j->jit, jd, jobs[k].obj); /* takes the buffer */
      if (err) st = llvm_error(d, "adding machine code", err);
    } else if (jobs[k].obj) {
      LLVMDisposeMemoryBuffer(jobs[k].obj);
    }
    if (jobs[k].d) ir_diag_destroy(jobs[k].d);
  }
  free(jobs);
  free(tid);
  free(started);
  return st;
}

/* Looks up a compiled function. */
attnc_status cg_jit_lookup(cg_jit *j, const char *name, void **addr, ir_diag *d) {
  LLVMOrcExecutorAddress a = 0;
  LLVMErrorRef err = LLVMOrcLLJITLookup(j->jit, &a, name);
  if (err) return llvm_error(d, name, err);
  *addr = (void *)(uintptr_t)a;
  return ATTNC_OK;
}

/* Host assembly text of 'm'. */
attnc_status cg_jit_asm(cg_jit *j, LLVMModuleRef m, char **out, ir_diag *d) {
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(j->tm, m, LLVMAssemblyFile, &msg, &buf)) {
    ir_diag_error(d, NULL, 0, "LLVM: emitting assembly: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return ATTNC_ERUNTIME;
  }
  size_t n = LLVMGetBufferSize(buf);
  *out = malloc(n + 1);
  if (*out) {
    memcpy(*out, LLVMGetBufferStart(buf), n);
    (*out)[n] = 0;
  }
  LLVMDisposeMemoryBuffer(buf);
  return *out ? ATTNC_OK : ATTNC_ENOMEM;
}
