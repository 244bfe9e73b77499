/* The training loop (rt_train): epochs of SGD steps on a compiled training
 * step, evaluation after each epoch, the metrics log, checkpoints every
 * epoch and on a stop request, and bit-identical resumption mid-epoch. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt_bind.h"
#include "rt_loader.h"
#include "rt_progress.h"
#include "rt_train.h"

/* Everything one training run holds. */
typedef struct {
  const rt_train_options *o;
  ir_diag *d;
  cg_program *step, *eval;
  rt_dataset *train, *test, *held;
  rt_loader *loader;
  rt_metrics *tm, *em;    /* train metrics of the epoch, evaluation metrics */
  rt_progress *progress;
  float *input, *lr;
  const float *logits;   /* the step's logits output (fixed storage) */
  int64_t *labels;
  int64_t epoch, batch, steps, nb, classes;
  uint64_t seed;
  double train_s, train_images;
  double data_wait_s; /* of the current epoch: time the loop waited for the loader's batches */
  char interrupt_path[1024];
} loop;

/* Seconds on a monotonic clock. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 1 if a stop was requested. */
static int stopping(const loop *L) { return L->o->stop && *L->o->stop; }

/* Writes 'bytes' to buf as MiB, or as KiB below one MiB. */
static const char *size_text(char *buf, size_t n, int64_t bytes) {
  if (bytes >= 1048576) snprintf(buf, n, "%.1f MiB", (double)bytes / 1048576.0);
  else snprintf(buf, n, "%.1f KiB", (double)bytes / 1024.0);
  return buf;
}

/* Compiles the step and eval programs and checks their interfaces. */
static attnc_status compile(loop *L) {
  const rt_train_options *o = L->o;
  cg_options co = {.threads = o->threads, .interp = o->interp, .no_fuse = o->no_fuse};
  double t0 = now_s();
  fprintf(o->out, "compiling the training step (%d nodes) and the eval forward (%d nodes)%s...\n", o->step->nnodes,
          o->eval->nnodes, o->interp ? " for the interpreter" : "");
  fflush(o->out);
  attnc_status st = cg_program_create(o->step, &co, &L->step, L->d);
  if (st == ATTNC_OK) st = cg_program_create(o->eval, &co, &L->eval, L->d);
  if (st != ATTNC_OK) return st;
  const cg_stats *ss = cg_program_stats(L->step), *es = cg_program_stats(L->eval);
  char step[32], arena[32], planned[32], eval[32];
  if (!o->interp)
    fprintf(o->out,
            "compiled in %.1f s: %d kernel launches per step (%d distinct), %d threads; memory: step %s "
            "(buffers planned into an arena of %s from %s), eval forward %s\n",
            now_s() - t0, ss->kernels, ss->unique_kernels, ss->threads,
            size_text(step, sizeof step, ss->arena_bytes + ss->scratch_bytes),
            size_text(arena, sizeof arena, ss->arena_bytes), size_text(planned, sizeof planned, ss->buffer_bytes),
            size_text(eval, sizeof eval, es->arena_bytes + es->scratch_bytes));
  ir_type ti, tl, tr, to;
  L->input = cg_program_input(L->step, "input", &ti);
  L->labels = cg_program_input(L->step, "labels", &tl);
  L->lr = cg_program_input(L->step, "lr", &tr);
  if (!L->input || ti.rank != 4 || ti.dtype != IR_F32 || !L->labels || tl.dtype != IR_I64 || tl.rank != 1 ||
      tl.dims[0] != ti.dims[0] || !L->lr || tr.rank != 0 || tr.dtype != IR_F32 ||
      !cg_program_output(L->step, "logits", &to) || to.rank != 2) {
    ir_diag_error(L->d, NULL, 0,
                  "the training step needs inputs input f32[N,C,H,W], labels i64[N], lr f32 and an output logits");
    return ATTNC_EINVAL;
  }
  L->classes = to.dims[1];
  L->logits = cg_program_output(L->step, "logits", NULL);
  return ATTNC_OK;
}

/* Opens the train and test splits (and the holdout) and checks them
 * against the step's input and logits. */
static attnc_status open_data(loop *L, const ir_type *in) {
  const rt_train_options *o = L->o;
  attnc_status st = rt_dataset_open_as(o->data, RT_SPLIT_TRAIN, o->resized_crop > 0, &L->train, L->d);
  if (st == ATTNC_OK) st = rt_dataset_open(o->data, RT_SPLIT_TEST, &L->test, L->d);
  if (st != ATTNC_OK) return st;
  const rt_dataset *ds = L->train;
  if (ds->channels != in->dims[1] || ds->height != in->dims[2] || ds->width != in->dims[3]) {
    ir_diag_error(L->d, NULL, 0, "--data %s: images are %lldx%lldx%lld, the model takes %lldx%lldx%lld", o->data,
                  (long long)ds->channels, (long long)ds->height, (long long)ds->width, (long long)in->dims[1],
                  (long long)in->dims[2], (long long)in->dims[3]);
    return ATTNC_EINVAL;
  }
  if (ds->classes != L->classes) {
    ir_diag_error(L->d, NULL, 0, "--data %s has %d classes, the model's logits have %lld", o->data, ds->classes,
                  (long long)L->classes);
    return ATTNC_EINVAL;
  }
  if (o->holdout > 0) {
    if (o->holdout >= ds->count) {
      ir_diag_error(L->d, NULL, 0, "--holdout %lld: the training split has only %lld samples", (long long)o->holdout,
                    (long long)ds->count);
      return ATTNC_EINVAL;
    }
    st = rt_dataset_holdout(L->train, o->holdout, o->seed, &L->held, L->d);
  }
  return st;
}

/* Prints what the run trains on: the splits, the augmentation, and which
 * images are decoded from their files as they are read. */
static void describe_data(const loop *L) {
  const rt_train_options *o = L->o;
  const rt_dataset *t = L->train;
  char aug[96] = "";
  size_t n = 0;
  if (o->resized_crop > 0) n += (size_t)snprintf(aug, sizeof aug, "resized-crop (area %g-1)", o->resized_crop);
  if (o->pad_crop) n += (size_t)snprintf(aug, sizeof aug, "crop (pad %d)", o->pad_crop);
  if (o->flip) snprintf(aug + n, sizeof aug - n, "%sflip", n ? " + " : "");
  fprintf(o->out, "data: %s, %lld training%s and %lld test images of %lldx%lldx%lld, %d classes; augmentation: %s%s%s\n",
          t->name, (long long)t->count, L->held ? " (after the holdout)" : "", (long long)L->test->count,
          (long long)t->channels, (long long)t->height, (long long)t->width, t->classes, aug[0] ? aug : "none",
          t->paths ? "; training images decoded from their files as they are read" : "",
          L->test->paths ? "; test images decoded from their files (in memory they would take over half of it)" : "");
  fflush(o->out);
}

/* Restores the state from o->resume (checking that it belongs to this
 * run), from o->weights, or initializes it. */
static attnc_status load_state(loop *L) {
  const rt_train_options *o = L->o;
  ir_bundle *w = NULL;
  attnc_status st;
  L->seed = o->seed;
  if (o->resume) {
    rt_ckpt_info info;
    st = rt_ckpt_load(o->resume, &w, &info, L->d);
    if (st != ATTNC_OK) return st;
    if (!o->force && !ir_bundle_get_meta(w, "attnc.format")) {
      ir_diag_error(L->d, NULL, 0, "--resume %s: not an attnc training checkpoint (no attnc.* metadata)", o->resume);
      st = ATTNC_EINVAL;
    } else if (!o->force && strcmp(info.spec_hash, o->info.spec_hash)) {
      ir_diag_error(L->d, NULL, 0,
                    "--resume %s: written for model %s (spec hash %s), this is %s (hash %s); --force to resume anyway",
                    o->resume, info.model, info.spec_hash, o->info.model, o->info.spec_hash);
      st = ATTNC_EINVAL;
    } else if (!o->force && strcmp(info.options, o->info.options)) {
      ir_diag_error(L->d, NULL, 0,
                    "--resume %s: written with options %s, this run has %s; --force to resume anyway", o->resume,
                    info.options, o->info.options);
      st = ATTNC_EINVAL;
    }
    if (st == ATTNC_OK) st = rt_check_weights(o->step, w, o->resume, L->d);
    if (st == ATTNC_OK && info.batch > L->nb) {
      ir_diag_error(L->d, NULL, 0, "--resume %s: batch %lld of an epoch of %lld batches", o->resume,
                    (long long)info.batch, (long long)L->nb);
      st = ATTNC_EINVAL;
    }
    L->epoch = info.epoch;
    L->batch = info.batch;
    L->steps = info.step;
    L->seed = info.seed;
  } else if (o->weights) {
    st = rt_train_load_weights(o->weights, o->eval, &w, &(rt_ckpt_info){0}, L->d);
  } else {
    w = rt_train_init_state(o->step, o->seed);
    st = w ? ATTNC_OK : ATTNC_ENOMEM;
  }
  if (st == ATTNC_OK) st = rt_program_load(L->step, w, L->d);
  ir_bundle_destroy(w);
  return st;
}

/* Writes the state as a checkpoint to 'path' at (epoch, batch). */
static attnc_status save(loop *L, const char *path, int64_t epoch, int64_t batch, rt_train_result *r) {
  rt_ckpt_info info = L->o->info;
  info.epoch = epoch;
  info.batch = batch;
  info.step = L->steps;
  info.seed = L->seed;
  ir_bundle *b = rt_program_state(L->step, L->o->step);
  if (!b) return ATTNC_ENOMEM;
  ir_bundle_set_meta(b, "producer", "attnc train");
  attnc_status st = rt_ckpt_save(path, b, &info, L->d);
  ir_bundle_destroy(b);
  if (st == ATTNC_OK) snprintf(r->saved, sizeof r->saved, "%s", path);
  return st;
}

/* Copies the params and buffers of the step program into the eval program. */
static void sync_eval(loop *L) {
  const ir_graph *g = L->o->eval;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_param && n->op != IR_OP_buffer) continue;
    ir_type t;
    void *dst = cg_program_input(L->eval, ir_node_name(n), &t);
    const void *src = cg_program_input(L->step, ir_node_name(n), NULL);
    if (dst && src) memcpy(dst, src, (size_t)ir_type_numel(&t) * ir_dtype_size(t.dtype));
  }
}

/* Runs the rest of epoch L->epoch from batch L->batch. Returns ATTNC_OK;
 * L->batch is the number of batches done (< nb only when stopping). */
static attnc_status train_epoch(loop *L, double *last_lr) {
  const rt_train_options *o = L->o;
  rt_metrics_reset(L->tm);
  rt_loader_start(L->loader, L->epoch, L->batch);
  double t0 = now_s();
  int64_t images = 0;
  L->data_wait_s = 0;
  while (L->batch < L->nb && !stopping(L)) {
    double w0 = now_s();
    int64_t n = rt_loader_next(L->loader, L->input, L->labels);
    L->data_wait_s += now_s() - w0;
    if (n < 0) {
      ir_diag_error(L->d, NULL, 0, "--data %s: %s", o->data, rt_loader_error(L->loader));
      return ATTNC_EPARSE;
    }
    if (n == 0) break;
    double lr = rt_schedule_lr(&o->sched, L->epoch, L->batch, L->nb, o->epochs);
    *L->lr = (float)lr;
    *last_lr = lr;
    attnc_status st = cg_program_run(L->step, L->d);
    if (st != ATTNC_OK) return st;
    cg_program_feedback(L->step);
    rt_metrics_add(L->tm, L->logits, L->labels, n);
    L->batch++;
    L->steps++;
    images += n;
    double dt = now_s() - t0;
    rt_progress_update(L->progress, L->epoch + 1, L->batch, rt_metrics_loss(L->tm), rt_metrics_top1(L->tm),
                       dt > 0 ? (double)images / dt : 0);
  }
  L->train_s += now_s() - t0;
  L->train_images += (double)images;
  return ATTNC_OK;
}

/* Evaluates the current state on 'ds' into a reset L->em. */
static attnc_status evaluate(loop *L, const rt_dataset *ds) {
  sync_eval(L);
  rt_metrics_reset(L->em);
  return rt_evaluate(L->eval, ds, L->em, L->o->stop, L->d);
}

/* Appends the epoch's record to o->log. */
static attnc_status log_epoch(loop *L, double lr, double wall, double ips, double held_loss, double held_top1) {
  const char *keys[] = {"epoch", "lr", "train_loss", "train_top1", "test_loss", "test_top1", "test_top5",
                        "wall_s", "images_per_s", "holdout_loss", "holdout_top1"};
  double v[] = {(double)(L->epoch + 1), lr, rt_metrics_loss(L->tm), rt_metrics_top1(L->tm), rt_metrics_loss(L->em),
                rt_metrics_top1(L->em), rt_metrics_top5(L->em), wall, ips, held_loss, held_top1};
  return rt_log_append(L->o->log, L->held ? 11 : 9, keys, v, L->d);
}

/* Handles a stop request: a checkpoint at the current position. */
static attnc_status stop_now(loop *L, rt_train_result *r) {
  const char *path = L->o->save ? L->o->save : L->interrupt_path;
  r->interrupted = 1;
  rt_progress_end_epoch(L->progress);
  attnc_status st = save(L, path, L->epoch, L->batch, r);
  if (st == ATTNC_OK)
    fprintf(L->o->out, "interrupted at epoch %lld, batch %lld/%lld: checkpoint written to %s (continue with --resume %s)\n",
            (long long)L->epoch + 1, (long long)L->batch, (long long)L->nb, path, path);
  return st;
}

/* The epochs: train, evaluate, log, checkpoint. */
static attnc_status run_epochs(loop *L, rt_train_result *r) {
  const rt_train_options *o = L->o;
  attnc_status st = ATTNC_OK;
  int ran = 0;
  while (L->epoch < o->epochs) {
    double t0 = now_s(), s0 = L->train_s, i0 = L->train_images, lr = 0;
    if ((st = train_epoch(L, &lr)) != ATTNC_OK) return st;
    if (L->batch < L->nb) return stop_now(L, r);
    rt_progress_end_epoch(L->progress);
    double held_loss = 0, held_top1 = 0;
    if (L->held) {
      if ((st = evaluate(L, L->held)) != ATTNC_OK) return st;
      held_loss = rt_metrics_loss(L->em);
      held_top1 = rt_metrics_top1(L->em);
    }
    if ((st = evaluate(L, L->test)) != ATTNC_OK) return st;
    if (stopping(L)) return stop_now(L, r);
    double wall = now_s() - t0, ts = L->train_s - s0;
    double ips = ts > 0 ? (L->train_images - i0) / ts : 0;
    fprintf(o->out, "epoch %lld/%lld: lr %.4g, train loss %.4f top-1 %.2f%%, test loss %.4f top-1 %.2f%% top-5 %.2f%%",
            (long long)L->epoch + 1, (long long)o->epochs, lr, rt_metrics_loss(L->tm), 100 * rt_metrics_top1(L->tm),
            rt_metrics_loss(L->em), 100 * rt_metrics_top1(L->em), 100 * rt_metrics_top5(L->em));
    if (L->held) fprintf(o->out, ", holdout top-1 %.2f%%", 100 * held_top1);
    fprintf(o->out, ", %.1f s, %.0f images/s", wall, ips);
    if (L->data_wait_s > 0.05 * ts) /* the loader (decoding files, most likely) held the training back */
      fprintf(o->out, " (%.1f s of it waiting for the loader's batches)", L->data_wait_s);
    fprintf(o->out, "\n");
    fflush(o->out);
    if (o->log && (st = log_epoch(L, lr, wall, ips, held_loss, held_top1)) != ATTNC_OK) return st;
    L->epoch++;
    L->batch = 0;
    ran = 1;
    if (o->save && (st = save(L, o->save, L->epoch, 0, r)) != ATTNC_OK) return st;
  }
  if (!ran) { /* resumed at the end: report the state as it is */
    if ((st = evaluate(L, L->test)) != ATTNC_OK) return st;
  }
  return st;
}

/* Trains (see rt_train.h). */
attnc_status rt_train(const rt_train_options *o, rt_train_result *r, ir_diag *d) {
  memset(r, 0, sizeof *r);
  loop L;
  memset(&L, 0, sizeof L);
  L.o = o;
  L.d = d;
  if (o->interrupt_save) snprintf(L.interrupt_path, sizeof L.interrupt_path, "%s", o->interrupt_save);
  else snprintf(L.interrupt_path, sizeof L.interrupt_path, "attnc-interrupted-%ld.safetensors", (long)getpid());
  double t0 = now_s();
  attnc_status st = compile(&L);
  ir_type in;
  if (st == ATTNC_OK) {
    cg_program_input(L.step, "input", &in);
    st = open_data(&L, &in);
  }
  if (st == ATTNC_OK) describe_data(&L);
  if (st == ATTNC_OK) {
    rt_loader_options lo = {.batch = in.dims[0], .shuffle = 1, .seed = o->seed, .pad_crop = o->pad_crop,
                            .resized_crop = o->resized_crop, .flip = o->flip, .drop_last = 1};
    st = rt_loader_create(L.train, &lo, &L.loader, d);
  }
  if (st == ATTNC_OK && (L.nb = rt_loader_batches(L.loader)) < 1) {
    ir_diag_error(d, NULL, 0, "--data %s: %lld training samples make no batch of %lld", o->data,
                  (long long)L.train->count, (long long)in.dims[0]);
    st = ATTNC_EINVAL;
  }
  if (st == ATTNC_OK) st = load_state(&L);
  if (st == ATTNC_OK && L.seed != o->seed) { /* --force resume with another seed: the checkpoint's order */
    rt_loader_destroy(L.loader);
    L.loader = NULL;
    rt_loader_options lo = {.batch = in.dims[0], .shuffle = 1, .seed = L.seed, .pad_crop = o->pad_crop,
                            .resized_crop = o->resized_crop, .flip = o->flip, .drop_last = 1};
    st = rt_loader_create(L.train, &lo, &L.loader, d);
  }
  if (st == ATTNC_OK) {
    L.tm = rt_metrics_create((int)L.classes);
    L.em = rt_metrics_create((int)L.classes);
    L.progress = rt_progress_create(o->out, o->epochs, L.nb);
    if (!L.tm || !L.em || !L.progress || rt_metrics_name_classes(L.em, L.train->class_names)) st = ATTNC_ENOMEM;
    else if (o->tty >= 0) rt_progress_set_tty(L.progress, o->tty);
  }
  if (st == ATTNC_OK) st = run_epochs(&L, r);
  if (st == ATTNC_OK) {
    r->test_top1 = rt_metrics_top1(L.em);
    r->test_top5 = rt_metrics_top5(L.em);
    r->test_loss = rt_metrics_loss(L.em);
    r->train_wall_s = now_s() - t0;
    r->images_per_s = L.train_s > 0 ? L.train_images / L.train_s : 0;
    r->epochs = L.epoch;
    r->test = L.em;
    L.em = NULL;
  }
  rt_progress_destroy(L.progress);
  rt_metrics_destroy(L.tm);
  rt_metrics_destroy(L.em);
  rt_loader_destroy(L.loader);
  rt_dataset_destroy(L.held);
  rt_dataset_destroy(L.test);
  rt_dataset_destroy(L.train);
  cg_program_destroy(L.eval);
  cg_program_destroy(L.step);
  return st;
}

/* Frees what r holds. */
void rt_train_result_free(rt_train_result *r) {
  rt_metrics_destroy(r->test);
  r->test = NULL;
}
