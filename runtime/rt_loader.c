/* Mini-batch loader. One worker thread fills two batch slots ahead of the
 * caller (double buffering under a mutex and a condition variable); a new
 * rt_loader_start bumps a generation number so that work in flight for an
 * older epoch is thrown away when it completes. The order of an epoch is a
 * Fisher-Yates shuffle seeded from (seed, epoch); the crop offsets and flip
 * of the sample at position p of the epoch come from a hash of (seed, epoch,
 * p), so they do not depend on where the epoch was started. A sample
 * that cannot be read (a data set read from files) ends the epoch: its
 * batch is handed out as an error, with the message kept. */
#include "rt_loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir_diag.h"

#define LOADER_SLOTS 2

typedef enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY } slot_state;

/* One prepared (or in preparation) batch. */
typedef struct {
  slot_state state;
  uint64_t gen;    /* generation it was prepared for */
  int64_t index;   /* batch index in the epoch */
  int64_t n;       /* samples in it; -1: a sample could not be read */
  float *images;   /* batch * C*H*W */
  int64_t *labels; /* batch */
} loader_slot;

struct rt_loader {
  const rt_dataset *ds;
  rt_loader_options o;
  int64_t batches, sample; /* batches per epoch, C*H*W */
  float lut[3][256];       /* normalized value of each pixel byte, per channel */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int quit;
  uint64_t gen;             /* bumped by every rt_loader_start */
  int64_t epoch;            /* epoch of the current generation */
  int64_t produce, consume; /* next batch to prepare / to hand out */
  loader_slot slot[LOADER_SLOTS];
  char error[1024];          /* the read error handed out as -1 */
  /* Worker-only state: the order of the epoch of generation perm_gen, a
   * sample's bytes, the read errors. */
  int64_t *perm;
  uint64_t perm_gen;
  uint8_t *raw;
  ir_diag *diag;
};

/* splitmix64's finalizer: a bijective mix of 64 bits. */
static uint64_t loader_mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Fills l->perm with the order of epoch 'epoch': identity without shuffle,
 * else a Fisher-Yates shuffle driven by a generator seeded from (seed, epoch). */
static void loader_permute(rt_loader *l, int64_t epoch) {
  int64_t n = l->ds->count;
  for (int64_t i = 0; i < n; i++) l->perm[i] = i;
  if (!l->o.shuffle) return;
  uint64_t s = loader_mix(loader_mix(l->o.seed) ^ (uint64_t)epoch);
  for (int64_t i = n - 1; i > 0; i--) {
    s += 0x632be59bd9b4e019ull;
    uint64_t j = loader_mix(s) % (uint64_t)(i + 1);
    int64_t t = l->perm[i];
    l->perm[i] = l->perm[j];
    l->perm[j] = t;
  }
}

/* Writes sample 'src' (bytes, CHW) to 'dst' normalized, cropped at offset
 * (ox, oy) of the image padded by 'pad' zero pixels, and mirrored if 'flip'. */
static void loader_sample(const rt_loader *l, const uint8_t *src, float *dst, int ox, int oy, int flip) {
  const rt_dataset *ds = l->ds;
  int64_t h = ds->height, w = ds->width, pad = l->o.pad_crop;
  for (int64_t c = 0; c < ds->channels; c++) {
    const float *lut = l->lut[c];
    const uint8_t *plane = src + c * h * w;
    float *out = dst + c * h * w;
    if (!pad && !flip) {
      for (int64_t i = 0; i < h * w; i++) out[i] = lut[plane[i]];
      continue;
    }
    float zero = lut[0];
    for (int64_t y = 0; y < h; y++) {
      float *row = out + y * w;
      int64_t sy = y + oy - pad;
      if (sy < 0 || sy >= h) {
        for (int64_t x = 0; x < w; x++) row[x] = zero;
        continue;
      }
      const uint8_t *srow = plane + sy * w;
      int64_t dx = ox - pad; /* source column of output column x (before the flip) is x + dx */
      for (int64_t x = 0; x < w; x++) {
        int64_t sx = (flip ? w - 1 - x : x) + dx;
        row[x] = sx >= 0 && sx < w ? lut[srow[sx]] : zero;
      }
    }
  }
}

/* Prepares batch 'index' of the current epoch (order l->perm) into 's';
 * 0, or -1 when a sample cannot be read (the message in l->diag). */
static int loader_fill(const rt_loader *l, loader_slot *s, int64_t epoch, int64_t index) {
  int64_t b = l->o.batch, first = index * b, n = l->ds->count - first;
  if (n > b) n = b;
  uint64_t base = loader_mix(loader_mix(l->o.seed ^ 0x6175676d656e74ull) ^ (uint64_t)epoch);
  int span = 2 * l->o.pad_crop + 1;
  for (int64_t i = 0; i < n; i++) {
    int64_t k = l->perm[first + i];
    uint64_t r = loader_mix(base ^ (uint64_t)(first + i));
    int ox = 0, oy = 0, flip = 0;
    if (l->o.pad_crop) {
      ox = (int)((r & 0xffff) % (uint64_t)span);
      oy = (int)(((r >> 16) & 0xffff) % (uint64_t)span);
    }
    if (l->o.flip) flip = (int)((r >> 40) & 1);
    const uint8_t *src = l->ds->pixels ? l->ds->pixels + k * l->sample : NULL;
    if (l->o.resized_crop > 0 || !src) {
      rt_random_crop crop = {l->o.resized_crop, loader_mix(r ^ 0x7272632d626f78ull)};
      if (rt_dataset_sample(l->ds, k, l->o.resized_crop > 0 ? &crop : NULL, l->raw, l->diag) != ATTNC_OK) return -1;
      src = l->raw;
    }
    loader_sample(l, src, s->images + i * l->sample, ox, oy, flip);
    s->labels[i] = l->ds->labels[k];
  }
  if (n < b) {
    memset(s->images + n * l->sample, 0, (size_t)((b - n) * l->sample) * sizeof(float));
    memset(s->labels + n, 0, (size_t)(b - n) * sizeof(int64_t));
  }
  s->n = n;
  return 0;
}

/* The worker: prepares the next batch of the current generation whenever a
 * slot is free, until asked to quit. */
static void *loader_main(void *arg) {
  rt_loader *l = arg;
  pthread_mutex_lock(&l->mu);
  while (!l->quit) {
    loader_slot *s = NULL;
    if (l->gen && l->produce < l->batches)
      for (int i = 0; i < LOADER_SLOTS && !s; i++)
        if (l->slot[i].state == SLOT_EMPTY) s = &l->slot[i];
    if (!s) {
      pthread_cond_wait(&l->cv, &l->mu);
      continue;
    }
    uint64_t gen = l->gen;
    int64_t epoch = l->epoch, index = l->produce++;
    s->state = SLOT_FILLING;
    pthread_mutex_unlock(&l->mu);
    if (l->perm_gen != gen) {
      loader_permute(l, epoch);
      l->perm_gen = gen;
    }
    int failed = loader_fill(l, s, epoch, index);
    pthread_mutex_lock(&l->mu);
    if (failed) {
      s->n = -1;
      if (gen == l->gen && !l->error[0]) {
        snprintf(l->error, sizeof l->error, "%s", ir_diag_text(l->diag));
        l->error[strcspn(l->error, "\n")] = 0;
      }
      ir_diag_clear(l->diag);
    }
    s->gen = gen;
    s->index = index;
    s->state = gen == l->gen ? SLOT_READY : SLOT_EMPTY;
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* Creates a loader of 'ds' with options 'o' and starts its (idle) worker. */
attnc_status rt_loader_create(const rt_dataset *ds, const rt_loader_options *o, rt_loader **out, ir_diag *d) {
  *out = NULL;
  int64_t side = ds->height < ds->width ? ds->height : ds->width;
  if (o->batch < 1 || o->pad_crop < 0 || (o->pad_crop && o->pad_crop >= side) || !(o->resized_crop >= 0) ||
      o->resized_crop > 1 || (o->resized_crop > 0 && o->pad_crop) || ds->channels < 1 || ds->channels > 3 ||
      ds->count < 0 || !(ds->std[0] > 0) || (ds->channels == 3 && !(ds->std[1] > 0 && ds->std[2] > 0))) {
    ir_diag_error(d, NULL, 0,
                  "loader: bad options (batch %lld, pad %d, resized crop %g) for %lld x %lld x %lld images of %s (or "
                  "std <= 0)",
                  (long long)o->batch, o->pad_crop, o->resized_crop, (long long)ds->channels, (long long)ds->height,
                  (long long)ds->width, ds->name);
    return ATTNC_EINVAL;
  }
  rt_loader *l = calloc(1, sizeof *l);
  if (!l) {
    ir_diag_error(d, NULL, 0, "loader: out of memory");
    return ATTNC_ENOMEM;
  }
  l->ds = ds;
  l->o = *o;
  l->sample = ds->channels * ds->height * ds->width;
  l->batches = o->drop_last ? ds->count / o->batch : (ds->count + o->batch - 1) / o->batch;
  for (int64_t c = 0; c < ds->channels; c++) {
    for (int v = 0; v < 256; v++) l->lut[c][v] = rt_dataset_normalized(ds, c, (uint8_t)v);
  }
  int ok = 1;
  l->perm = malloc((size_t)(ds->count ? ds->count : 1) * sizeof *l->perm);
  l->raw = malloc((size_t)l->sample);
  l->diag = ir_diag_create();
  ok = l->perm && l->raw && l->diag;
  for (int i = 0; i < LOADER_SLOTS && ok; i++) {
    l->slot[i].images = malloc((size_t)(o->batch * l->sample) * sizeof(float));
    l->slot[i].labels = malloc((size_t)o->batch * sizeof(int64_t));
    ok = l->slot[i].images && l->slot[i].labels;
  }
  int inited = 0;
  if (ok && pthread_mutex_init(&l->mu, NULL) == 0) {
    inited = 1;
    if (pthread_cond_init(&l->cv, NULL) == 0) {
      inited = 2;
      ok = pthread_create(&l->thread, NULL, loader_main, l) == 0;
    } else {
      ok = 0;
    }
  } else {
    ok = 0;
  }
  if (!ok) {
    if (inited > 1) pthread_cond_destroy(&l->cv);
    if (inited > 0) pthread_mutex_destroy(&l->mu);
    for (int i = 0; i < LOADER_SLOTS; i++) {
      free(l->slot[i].images);
      free(l->slot[i].labels);
    }
    free(l->perm);
    free(l->raw);
    ir_diag_destroy(l->diag);
    free(l);
    ir_diag_error(d, NULL, 0, "loader: out of memory or cannot start its thread");
    return ATTNC_ENOMEM;
  }
  *out = l;
  return ATTNC_OK;
}

/* Stops the worker and frees 'l'. */
void rt_loader_destroy(rt_loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->quit = 1;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  pthread_join(l->thread, NULL);
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
  for (int i = 0; i < LOADER_SLOTS; i++) {
    free(l->slot[i].images);
    free(l->slot[i].labels);
  }
  free(l->perm);
  free(l->raw);
  ir_diag_destroy(l->diag);
  free(l);
}

/* Batches per epoch. */
int64_t rt_loader_batches(const rt_loader *l) { return l->batches; }

/* Starts epoch 'epoch' at batch 'first', dropping prepared batches of before. */
void rt_loader_start(rt_loader *l, int64_t epoch, int64_t first) {
  if (first < 0) first = 0;
  if (first > l->batches) first = l->batches;
  pthread_mutex_lock(&l->mu);
  l->gen++;
  l->epoch = epoch;
  l->error[0] = 0;
  l->produce = l->consume = first;
  for (int i = 0; i < LOADER_SLOTS; i++)
    if (l->slot[i].state == SLOT_READY) l->slot[i].state = SLOT_EMPTY;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

/* Hands out the next batch of the current epoch (0 at its end). */
int64_t rt_loader_next(rt_loader *l, float *images, int64_t *labels) {
  pthread_mutex_lock(&l->mu);
  if (!l->gen || l->consume >= l->batches) {
    pthread_mutex_unlock(&l->mu);
    return 0;
  }
  loader_slot *s = NULL;
  for (;;) {
    for (int i = 0; i < LOADER_SLOTS && !s; i++)
      if (l->slot[i].state == SLOT_READY && l->slot[i].gen == l->gen && l->slot[i].index == l->consume) s = &l->slot[i];
    if (s) break;
    pthread_cond_wait(&l->cv, &l->mu);
  }
  if (s->n < 0) { /* a read error: the epoch ends here */
    l->consume = l->produce = l->batches;
    s->state = SLOT_EMPTY;
    pthread_mutex_unlock(&l->mu);
    return -1;
  }
  l->consume++;
  s->state = SLOT_FILLING; /* held by the caller while copying: the worker leaves it alone */
  pthread_mutex_unlock(&l->mu);
  int64_t n = s->n;
  memcpy(images, s->images, (size_t)(l->o.batch * l->sample) * sizeof(float));
  memcpy(labels, s->labels, (size_t)l->o.batch * sizeof(int64_t));
  pthread_mutex_lock(&l->mu);
  s->state = SLOT_EMPTY;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  return n;
}

/* The last read error's message. */
const char *rt_loader_error(const rt_loader *l) { return l->error; }
