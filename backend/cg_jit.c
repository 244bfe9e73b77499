/* The LLVM session of a program: a target machine for the host CPU (its
 * name and features, so AVX-512 where the machine has it), the O3 pipeline
 * of the new pass manager, and an ORC LLJIT that turns optimized modules
 * into callable code. */
#include <stdlib.h>
#include <string.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
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

/* Registers the native target once per process. */
static void init_native(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMInitializeNativeAsmParser();
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

/* Verifies and optimizes 'm' at O3. */
attnc_status cg_jit_optimize(cg_jit *j, LLVMModuleRef m, ir_diag *d) {
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
  LLVMErrorRef err = LLVMRunPasses(m, "default<O3>", j->tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (err) return llvm_error(d, "O3 pipeline", err);
  return ATTNC_OK;
}

/* Adds an optimized module to the JIT. */
attnc_status cg_jit_add(cg_jit *j, LLVMModuleRef m, ir_diag *d) {
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, j->tsc);
  LLVMErrorRef err = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
  if (err) {
    LLVMOrcDisposeThreadSafeModule(tsm);
    return llvm_error(d, "adding a module", err);
  }
  return ATTNC_OK;
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
