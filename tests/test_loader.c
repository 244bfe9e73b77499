/* Tests of the mini-batch loader: every epoch is a permutation, shuffles
 * depend on (seed, epoch) only, a resumed epoch equals the tail of the
 * uninterrupted one, normalization values, crop and flip pixels checked
 * against an explicitly padded image, partial and dropped last batches,
 * restarts while work is in flight, and speed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "rt_loader.h"

/* A data set of 'n' samples of c x h x w whose label is the sample index
 * (classes = n) and whose pixel i of sample k is (k * 7 + i * 3) % 256. */
static rt_dataset *make_ds(int64_t n, int64_t c, int64_t h, int64_t w) {
  rt_dataset *ds = calloc(1, sizeof *ds);
  assert_non_null(ds);
  strcpy(ds->name, "test");
  ds->count = n;
  ds->channels = c;
  ds->height = h;
  ds->width = w;
  ds->classes = (int)n;
  int64_t per = c * h * w;
  ds->pixels = malloc((size_t)(n * per) + 1);
  ds->labels = malloc((size_t)n * sizeof(int64_t) + 1);
  assert_non_null(ds->pixels);
  for (int64_t k = 0; k < n; k++) {
    for (int64_t i = 0; i < per; i++) ds->pixels[k * per + i] = (uint8_t)((k * 7 + i * 3) % 256);
    ds->labels[k] = k;
  }
  for (int i = 0; i < 3; i++) ds->mean[i] = 0.5f, ds->std[i] = 0.25f;
  return ds;
}

static void free_ds(rt_dataset *ds) {
  free(ds->pixels);
  free(ds->labels);
  free(ds);
}

static rt_loader *make_loader(const rt_dataset *ds, int64_t batch, int shuffle, uint64_t seed, int pad, int flip,
                              int drop_last) {
  rt_loader_options o = {.batch = batch, .shuffle = shuffle, .seed = seed, .pad_crop = pad, .flip = flip,
                         .drop_last = drop_last};
  rt_loader *l = NULL;
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_loader_create(ds, &o, &l, d), ATTNC_OK);
  ir_diag_destroy(d);
  return l;
}

/* All batches of one epoch from batch 'first': images and labels
 * concatenated (batches * batch entries), counts in n[]. Returns the number of batches. */
typedef struct {
  float *images;
  int64_t *labels;
  int64_t n[64];
  int64_t batches;
} epoch_out;

static epoch_out run_epoch(rt_loader *l, const rt_dataset *ds, int64_t batch, int64_t epoch, int64_t first) {
  epoch_out e = {0};
  int64_t per = ds->channels * ds->height * ds->width, nb = rt_loader_batches(l);
  assert_true(nb <= 64);
  e.images = calloc((size_t)((nb + 1) * batch * per), sizeof(float));
  e.labels = calloc((size_t)((nb + 1) * batch), sizeof(int64_t));
  rt_loader_start(l, epoch, first);
  for (int64_t b = first;; b++) {
    assert_true(b <= nb);
    int64_t got = rt_loader_next(l, e.images + (b - first) * batch * per, e.labels + (b - first) * batch);
    if (!got) break;
    e.n[e.batches++] = got;
  }
  assert_int_equal(rt_loader_next(l, e.images, e.labels), 0); /* stays at the end */
  return e;
}

static void free_epoch(epoch_out *e) {
  free(e->images);
  free(e->labels);
}

/* Value of pixel byte v normalized with mean 0.5, std 0.25. */
static float norm(int v) { return ((float)v / 255.0f - 0.5f) * 4.0f; }

/* Each epoch hands out every sample exactly once, with its own (normalized)
 * pixels; 10 samples in batches of 3 = 3, 3, 3, 1 and the rest zero-filled. */
static void test_epoch_is_permutation(void **state) {
  (void)state;
  rt_dataset *ds = make_ds(10, 1, 3, 3);
  rt_loader *l = make_loader(ds, 3, 1, 42, 0, 0, 0);
  assert_int_equal(rt_loader_batches(l), 4);
  for (int64_t epoch = 0; epoch < 3; epoch++) {
    epoch_out e = run_epoch(l, ds, 3, epoch, 0);
    assert_int_equal(e.batches, 4);
    assert_int_equal(e.n[0], 3);
    assert_int_equal(e.n[3], 1);
    int seen[10] = {0};
    for (int i = 0; i < 10; i++) {
      int64_t k = e.labels[i];
      assert_in_range(k, 0, 9);
      seen[k]++;
      for (int p = 0; p < 9; p++) assert_float_equal(e.images[i * 9 + p], norm((int)((k * 7 + p * 3) % 256)), 1e-6);
    }
    for (int k = 0; k < 10; k++) assert_int_equal(seen[k], 1);
    for (int i = 10; i < 12; i++) {
      assert_int_equal(e.labels[i], 0);
      for (int p = 0; p < 9; p++) assert_true(e.images[i * 9 + p] == 0.0f);
    }
    free_epoch(&e);
  }
  rt_loader_destroy(l);
  free_ds(ds);
}

/* Without shuffle the order is the data set's; drop_last drops the partial batch. */
static void test_order_and_drop_last(void **state) {
  (void)state;
  rt_dataset *ds = make_ds(10, 1, 2, 2);
  rt_loader *l = make_loader(ds, 4, 0, 1, 0, 0, 1);
  assert_int_equal(rt_loader_batches(l), 2);
  epoch_out e = run_epoch(l, ds, 4, 5, 0);
  assert_int_equal(e.batches, 2);
  for (int i = 0; i < 8; i++) assert_int_equal(e.labels[i], i);
  free_epoch(&e);
  rt_loader_destroy(l);
  l = make_loader(ds, 10, 0, 1, 0, 0, 1);
  assert_int_equal(rt_loader_batches(l), 1);
  rt_loader_destroy(l);
  l = make_loader(ds, 11, 0, 1, 0, 0, 1);
  assert_int_equal(rt_loader_batches(l), 0);
  e = run_epoch(l, ds, 11, 0, 0);
  assert_int_equal(e.batches, 0);
  free_epoch(&e);
  rt_loader_destroy(l);
  free_ds(ds);
}

/* Same seed: identical batches (augmentation included); other epoch or seed: other order. */
static void test_seeds_and_epochs(void **state) {
  (void)state;
  rt_dataset *ds = make_ds(50, 3, 8, 8);
  rt_loader *a = make_loader(ds, 8, 1, 7, 2, 1, 0), *b = make_loader(ds, 8, 1, 7, 2, 1, 0);
  rt_loader *c = make_loader(ds, 8, 1, 8, 2, 1, 0);
  size_t nimg = 7 * 8 * 192;
  epoch_out a0 = run_epoch(a, ds, 8, 0, 0), a1 = run_epoch(a, ds, 8, 1, 0);
  epoch_out b0 = run_epoch(b, ds, 8, 0, 0), c0 = run_epoch(c, ds, 8, 0, 0);
  assert_memory_equal(a0.images, b0.images, nimg * sizeof(float));
  assert_memory_equal(a0.labels, b0.labels, 50 * sizeof(int64_t));
  assert_memory_not_equal(a0.labels, a1.labels, 50 * sizeof(int64_t));
  assert_memory_not_equal(a0.labels, c0.labels, 50 * sizeof(int64_t));
  /* epoch 0 again on the same loader gives epoch 0 again */
  epoch_out a0b = run_epoch(a, ds, 8, 0, 0);
  assert_memory_equal(a0.images, a0b.images, nimg * sizeof(float));
  free_epoch(&a0);
  free_epoch(&a1);
  free_epoch(&b0);
  free_epoch(&c0);
  free_epoch(&a0b);
  rt_loader_destroy(a);
  rt_loader_destroy(b);
  rt_loader_destroy(c);
  free_ds(ds);
}

/* Starting at batch k (fresh loader, or mid-epoch restart with work in
 * flight) yields exactly batches k.. of the uninterrupted epoch. */
static void test_resume(void **state) {
  (void)state;
  rt_dataset *ds = make_ds(45, 3, 8, 8);
  int64_t per = 192;
  rt_loader *full = make_loader(ds, 8, 1, 99, 2, 1, 0);
  epoch_out f = run_epoch(full, ds, 8, 3, 0);
  assert_int_equal(f.batches, 6);
  for (int64_t k = 1; k <= 6; k++) {
    rt_loader *r = make_loader(ds, 8, 1, 99, 2, 1, 0);
    rt_loader_start(r, 0, 0); /* some other epoch in flight first */
    float tmp[8 * 192];
    int64_t lab[8];
    assert_int_equal(rt_loader_next(r, tmp, lab), 8);
    epoch_out t = run_epoch(r, ds, 8, 3, k);
    assert_int_equal(t.batches, 6 - k);
    size_t m = (size_t)((6 - k) * 8);
    if (m) {
      assert_memory_equal(t.images, f.images + k * 8 * per, m * (size_t)per * sizeof(float));
      assert_memory_equal(t.labels, f.labels + k * 8, m * sizeof(int64_t));
    }
    for (int64_t b = 0; b < t.batches; b++) assert_int_equal(t.n[b], f.n[k + b]);
    free_epoch(&t);
    rt_loader_destroy(r);
  }
  free_epoch(&f);
  rt_loader_destroy(full);
  free_ds(ds);
}

/* Normalization: (v/255 - mean)/std per channel, hand-computed values. */
static void test_normalization(void **state) {
  (void)state;
  rt_dataset *ds = make_ds(1, 3, 1, 2);
  const uint8_t px[6] = {0, 255, 51, 204, 0, 255};
  memcpy(ds->pixels, px, 6);
  ds->mean[0] = 0.5f, ds->std[0] = 0.25f;      /* 0 -> -2, 255 -> 2 */
  ds->mean[1] = 0.0f, ds->std[1] = 0.5f;       /* 51 -> 0.4, 204 -> 1.6 */
  ds->mean[2] = 0.2860f, ds->std[2] = 0.3530f; /* Fashion-MNIST's */
  rt_loader *l = make_loader(ds, 1, 0, 0, 0, 0, 0);
  float img[6];
  int64_t lab;
  rt_loader_start(l, 0, 0);
  assert_int_equal(rt_loader_next(l, img, &lab), 1);
  assert_true(img[0] == -2.0f);
  assert_true(img[1] == 2.0f);
  assert_float_equal(img[2], 0.4, 1e-7);
  assert_float_equal(img[3], 1.6, 1e-7);
  assert_float_equal(img[4], -0.810198300283286, 1e-6);
  assert_float_equal(img[5], 2.022662889518414, 1e-6);
  rt_loader_destroy(l);
  free_ds(ds);
}

/* The 2 * (2p+1)^2 images pad-crop-flip can make of the 1 x h x w image
 * 'src' (pixel bytes), built by padding explicitly, cropping and mirroring. */
static uint8_t *candidates(const uint8_t *src, int h, int w, int p, int *count) {
  int ph = h + 2 * p, pw = w + 2 * p, nc = 2 * (2 * p + 1) * (2 * p + 1);
  uint8_t *padded = calloc((size_t)(ph * pw), 1), *out = malloc((size_t)(nc * h * w));
  for (int y = 0; y < h; y++) memcpy(padded + (y + p) * pw + p, src + y * w, (size_t)w);
  int k = 0;
  for (int oy = 0; oy <= 2 * p; oy++)
    for (int ox = 0; ox <= 2 * p; ox++)
      for (int fl = 0; fl < 2; fl++, k++)
        for (int y = 0; y < h; y++)
          for (int x = 0; x < w; x++) {
            int cx = fl ? w - 1 - x : x;
            out[(k * h + y) * w + x] = padded[(oy + y) * pw + ox + cx];
          }
  free(padded);
  *count = nc;
  return out;
}

/* Crop and flip: every output is one of the explicitly built candidates,
 * every candidate occurs over many samples, flips are about half, and two
 * hand-written candidates are among them. */
static void test_crop_flip_pixels(void **state) {
  (void)state;
  const int n = 400;
  rt_dataset *ds = make_ds(n, 1, 3, 3);
  const uint8_t img[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (int k = 0; k < n; k++) memcpy(ds->pixels + k * 9, img, 9);
  /* normalized value = byte + 10: padding (byte 0) must come out as 10, not 0 */
  ds->mean[0] = -10.0f / 255.0f, ds->std[0] = 1.0f / 255.0f;
  int nc = 0;
  uint8_t *cand = candidates(img, 3, 3, 1, &nc);
  assert_int_equal(nc, 18);
  /* by hand: offset (0,0) plain and mirrored, offset (2,2) plain */
  const uint8_t hand[3][9] = {{0, 0, 0, 0, 1, 2, 0, 4, 5}, {0, 0, 0, 2, 1, 0, 5, 4, 0}, {5, 6, 0, 8, 9, 0, 0, 0, 0}};
  int hand_seen[3] = {0};
  int seen[18] = {0}, flips = 0, first_batches[2][64], b = 0;
  rt_loader *l = make_loader(ds, 64, 1, 3, 1, 1, 0);
  rt_loader_start(l, 0, 0);
  float out[64 * 9];
  int64_t lab[64], got;
  while ((got = rt_loader_next(l, out, lab)) > 0) {
    for (int64_t i = 0; i < got; i++) {
      uint8_t v[9];
      for (int p = 0; p < 9; p++) {
        float f = out[i * 9 + p] - 10.0f;
        assert_true(f >= -0.01f && f <= 9.01f);
        v[p] = (uint8_t)(f + 0.5f);
        assert_float_equal(f, v[p], 1e-3);
      }
      int match = -1;
      for (int k = 0; k < nc && match < 0; k++)
        if (!memcmp(v, cand + k * 9, 9)) match = k;
      assert_true(match >= 0);
      seen[match]++;
      if (b < 2) first_batches[b][i] = match;
      flips += match % 2;
      for (int h = 0; h < 3; h++) hand_seen[h] += !memcmp(v, hand[h], 9);
    }
    b++;
  }
  /* the choices follow the position in the epoch, not in the batch */
  assert_memory_not_equal(first_batches[0], first_batches[1], sizeof first_batches[0]);
  for (int k = 0; k < nc; k++) assert_true(seen[k] > 0);
  assert_true(flips > 150 && flips < 250);
  for (int h = 0; h < 3; h++) assert_true(hand_seen[h] > 0);
  free(cand);
  rt_loader_destroy(l);
  free_ds(ds);
}

/* Pad only (no flip) never mirrors; flip only never shifts. */
static void test_crop_or_flip_alone(void **state) {
  (void)state;
  rt_dataset *ds = make_ds(64, 1, 3, 3);
  const uint8_t img[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, mirrored[9] = {3, 2, 1, 6, 5, 4, 9, 8, 7};
  for (int k = 0; k < 64; k++) memcpy(ds->pixels + k * 9, img, 9);
  ds->mean[0] = 0.0f, ds->std[0] = 1.0f / 255.0f;
  rt_loader *l = make_loader(ds, 64, 0, 5, 0, 1, 0);
  float out[64 * 9];
  int64_t lab[64];
  rt_loader_start(l, 0, 0);
  assert_int_equal(rt_loader_next(l, out, lab), 64);
  int flips = 0;
  for (int i = 0; i < 64; i++) {
    int same = 1, mir = 1;
    for (int p = 0; p < 9; p++) {
      same &= (int)(out[i * 9 + p] + 0.5f) == img[p];
      mir &= (int)(out[i * 9 + p] + 0.5f) == mirrored[p];
    }
    assert_true(same || mir);
    flips += mir;
  }
  assert_true(flips > 10 && flips < 54);
  rt_loader_destroy(l);
  int nc = 0;
  uint8_t *cand = candidates(img, 3, 3, 1, &nc);
  l = make_loader(ds, 64, 0, 5, 1, 0, 0);
  rt_loader_start(l, 2, 0);
  assert_int_equal(rt_loader_next(l, out, lab), 64);
  for (int i = 0; i < 64; i++) {
    uint8_t v[9];
    for (int p = 0; p < 9; p++) v[p] = (uint8_t)(out[i * 9 + p] + 0.5f);
    int match = -1;
    for (int k = 0; k < nc && match < 0; k++)
      if (!memcmp(v, cand + k * 9, 9)) match = k;
    assert_true(match >= 0 && match % 2 == 0); /* an unmirrored candidate */
  }
  free(cand);
  rt_loader_destroy(l);
  free_ds(ds);
}

/* Restarts at any moment, next() before any start, bad options. */
static void test_restart_and_edges(void **state) {
  (void)state;
  rt_dataset *ds = make_ds(100, 1, 4, 4);
  rt_loader *l = make_loader(ds, 7, 1, 1, 1, 1, 0);
  float img[7 * 16];
  int64_t lab[7];
  assert_int_equal(rt_loader_next(l, img, lab), 0);
  for (int i = 0; i < 200; i++) {
    rt_loader_start(l, i % 5, i % 16);
    if (i % 3 == 0) rt_loader_next(l, img, lab);
  }
  rt_loader_start(l, 0, 1000);
  assert_int_equal(rt_loader_next(l, img, lab), 0);
  rt_loader_start(l, 0, 14);
  assert_int_equal(rt_loader_next(l, img, lab), 2); /* 100 = 14 * 7 + 2 */
  rt_loader_start(l, 1, 0);                         /* destroy with work in flight */
  rt_loader_destroy(l);
  rt_loader_options bad = {.batch = 0, .shuffle = 1, .seed = 1};
  ir_diag *d = ir_diag_create();
  rt_loader *none = (rt_loader *)&bad;
  assert_int_equal(rt_loader_create(ds, &bad, &none, d), ATTNC_EINVAL);
  assert_null(none);
  bad.batch = 4;
  bad.pad_crop = 4;
  assert_int_equal(rt_loader_create(ds, &bad, &none, d), ATTNC_EINVAL);
  assert_non_null(strstr(ir_diag_text(d), "loader"));
  bad.pad_crop = 1;
  ds->std[0] = 0.0f;
  assert_int_equal(rt_loader_create(ds, &bad, &none, d), ATTNC_EINVAL);
  ds->std[0] = 0.25f;
  assert_int_equal(rt_loader_create(ds, &bad, &none, d), ATTNC_OK);
  rt_loader_destroy(none);
  ir_diag_destroy(d);
  rt_loader_destroy(NULL);
  free_ds(ds);
}

/* RandomResizedCrop: on horizontal ramps (pixel = 8x + 3c, every row the
 * same) each output row is one monotone resampling of a span of the ramp,
 * rising, or falling when flipped, and both kinds occur; the crops vary
 * between samples and epochs; a resumed epoch repeats them; a constant
 * image stays constant; crop and resized-crop exclude each other. */
static void test_resized_crop(void **state) {
  (void)state;
  enum { N = 24, S = 16, B = 6 };
  rt_dataset *ds = make_ds(N, 3, S, S);
  for (int64_t k = 0; k < N; k++)
    for (int64_t i = 0; i < 3 * S * S; i++)
      ds->pixels[k * 3 * S * S + i] = k == 0 ? 77 : (uint8_t)(8 * (i % S) + 3 * (i / (S * S)) + 2);
  rt_loader_options o = {.batch = B, .shuffle = 1, .seed = 9, .resized_crop = 0.08, .flip = 1};
  rt_loader *l = NULL;
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_loader_create(ds, &o, &l, d), ATTNC_OK);
  epoch_out e0 = run_epoch(l, ds, B, 0, 0), e1 = run_epoch(l, ds, B, 1, 0), r1 = run_epoch(l, ds, B, 1, 2);
  assert_int_equal(e0.batches, N / B);
  int rising = 0, falling = 0, spans = 0;
  float first_span = 0;
  for (int64_t i = 0; i < N; i++) {
    const float *img = e0.images + i * 3 * S * S;
    if (e0.labels[i] == 0) {
      for (int p = 0; p < 3 * S * S; p++) assert_float_equal(img[p], norm(77), 1e-6);
      continue;
    }
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < S; y++) {
        const float *row = img + (c * S + y) * S;
        assert_memory_equal(row, img + c * S * S, S * sizeof(float)); /* every row the same */
        int up = 1, down = 1;
        for (int x = 1; x < S; x++) up &= row[x] >= row[x - 1], down &= row[x] <= row[x - 1];
        assert_true(up || down);
        if (c == 0 && y == 0) rising += up && !down, falling += down && !up;
        for (int x = 0; x < S; x++) /* values of channel c's ramp: 3c + 2 .. 8*15 + 3c + 2 */
          assert_true(row[x] >= norm(3 * c + 2) - 1e-5f && row[x] <= norm(8 * (S - 1) + 3 * c + 2) + 1e-5f);
      }
    float span = fabsf(img[S - 1] - img[0]);
    if (i == 0 || e0.labels[i - 1] == 0) first_span = span;
    else spans += fabsf(span - first_span) > 1e-3f;
  }
  assert_true(rising > 2 && falling > 2);
  assert_true(spans > N / 2); /* the crops' widths differ */
  assert_true(memcmp(e0.images, e1.images, (size_t)(N * 3 * S * S) * sizeof(float)));
  /* epoch 1 resumed at batch 2: the same samples, crops and flips */
  assert_memory_equal(r1.images, e1.images + 2 * B * 3 * S * S, (size_t)((N - 2 * B) * 3 * S * S) * sizeof(float));
  free_epoch(&e0), free_epoch(&e1), free_epoch(&r1);
  rt_loader_destroy(l);
  rt_loader *bad = NULL;
  o.pad_crop = 2;
  assert_int_equal(rt_loader_create(ds, &o, &bad, d), ATTNC_EINVAL);
  o.pad_crop = 0, o.resized_crop = 1.5;
  assert_int_equal(rt_loader_create(ds, &o, &bad, d), ATTNC_EINVAL);
  assert_null(bad);
  ir_diag_destroy(d);
  free_ds(ds);
}

/* A Fashion-MNIST-shaped epoch of batches of 128 with crop and flip runs
 * through (its time per batch is printed; timings are bench/'s job). */
static void test_speed(void **state) {
  (void)state;
  rt_dataset *ds = make_ds(128 * 20, 1, 28, 28);
  rt_loader *l = make_loader(ds, 128, 1, 1, 4, 1, 0);
  float *img = malloc(128 * 784 * sizeof(float));
  int64_t lab[128];
  struct timespec t0, t1;
  rt_loader_start(l, 0, 0);
  rt_loader_next(l, img, lab); /* warm-up (computes the permutation) */
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int64_t nb = 1;
  while (rt_loader_next(l, img, lab)) nb++;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6) / (double)(nb - 1);
  print_message("loader: %.3f ms per batch of 128 x 28 x 28 (crop+flip)\n", ms);
  assert_int_equal(nb, 20);
  free(img);
  rt_loader_destroy(l);
  free_ds(ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_epoch_is_permutation),
      cmocka_unit_test(test_order_and_drop_last),
      cmocka_unit_test(test_seeds_and_epochs),
      cmocka_unit_test(test_resume),
      cmocka_unit_test(test_normalization),
      cmocka_unit_test(test_crop_flip_pixels),
      cmocka_unit_test(test_resized_crop),
      cmocka_unit_test(test_crop_or_flip_alone),
      cmocka_unit_test(test_restart_and_edges),
      cmocka_unit_test(test_speed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
