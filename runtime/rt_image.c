/* Image resampling as Pillow's Image.resize(BILINEAR) computes it (what
 * torchvision's Resize, CenterCrop and RandomResizedCrop do to PIL
 * images): a triangle filter widened by the shrink factor (antialiasing),
 * its weights normalized per output pixel and rounded to 22-bit fixed
 * point, a horizontal pass rounding to bytes, then a vertical pass; and the
 * random boxes of RandomResizedCrop. */
#include "rt_image.h"

#include <math.h>
#include <stdlib.h>

#include "rt_init.h"

#define PRECISION_BITS 22 /* Pillow's fixed point for 8-bit images: 32 - 8 - 2 */

/* The source taps of n output coordinates along an axis: output i reads
 * count[i] pixels from first[i], weighted by w[i * max ...] / 2^22. */
typedef struct {
  int64_t n, max;
  int64_t *first, *count;
  int32_t *w;
} axis_taps;

/* Views HWC interleaved bytes. */
rt_image rt_image_hwc(const uint8_t *data, int64_t channels, int64_t width, int64_t height) {
  rt_image im = {data, channels, width, height, 1, width * channels, channels};
  return im;
}

/* Views CHW planes. */
rt_image rt_image_chw(const uint8_t *data, int64_t channels, int64_t width, int64_t height) {
  rt_image im = {data, channels, width, height, width * height, width, 1};
  return im;
}

static void free_taps(axis_taps *t) {
  if (!t) return;
  free(t->first);
  free(t->count);
  free(t->w);
  free(t);
}

/* Pillow's bilinear filter. */
static double triangle(double x) {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

/* Taps for coordinates offset..offset+n-1 of an axis of 'in' pixels
 * resized to 'full' (Pillow's precompute_coeffs and normalize_coeffs_8bpc). */
static axis_taps *make_taps(int64_t in, int64_t full, int64_t offset, int64_t n) {
  axis_taps *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  double scale = (double)in / (double)full, filterscale = scale < 1 ? 1 : scale, support = filterscale;
  t->n = n;
  t->max = (int64_t)ceil(support) * 2 + 1;
  t->first = malloc((size_t)n * sizeof *t->first);
  t->count = malloc((size_t)n * sizeof *t->count);
  t->w = calloc((size_t)(n * t->max), sizeof *t->w);
  double *k = malloc((size_t)t->max * sizeof *k);
  if (!t->first || !t->count || !t->w || !k) {
    free(k);
    free_taps(t);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    double center = ((double)(i + offset) + 0.5) * scale, ww = 0;
    int64_t lo = (int64_t)(center - support + 0.5), hi = (int64_t)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    for (int64_t x = 0; x < hi - lo; x++) {
      k[x] = triangle(((double)(x + lo) - center + 0.5) / filterscale);
      ww += k[x];
    }
    t->first[i] = lo;
    t->count[i] = hi - lo;
    for (int64_t x = 0; x < hi - lo; x++) {
      double c = ww != 0 ? k[x] / ww : k[x];
      t->w[i * t->max + x] = (int32_t)(c < 0 ? -0.5 + c * (1 << PRECISION_BITS) : 0.5 + c * (1 << PRECISION_BITS));
    }
  }
  free(k);
  return t;
}

/* A fixed-point sum as a byte: rounded (the sum started at half a unit), clamped. */
static uint8_t clip8(int64_t v) {
  v >>= PRECISION_BITS;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One row of 'src' (row y of the box at 'base') resampled along x into
 * 'out' (out_w x channels, interleaved bytes). */
static void resize_row(const rt_image *src, const uint8_t *base, const axis_taps *tx, uint8_t *out) {
  int64_t nc = src->channels, xs = src->xstride, cs = src->cstride, half = (int64_t)1 << (PRECISION_BITS - 1);
  if (nc == 3 && xs == 3 && cs == 1) { /* decoded files: RGB interleaved */
    for (int64_t x = 0; x < tx->n; x++) {
      const uint8_t *p = base + tx->first[x] * 3;
      const int32_t *w = tx->w + x * tx->max;
      int64_t s0 = half, s1 = half, s2 = half;
      for (int64_t k = 0; k < tx->count[x]; k++, p += 3) s0 += w[k] * p[0], s1 += w[k] * p[1], s2 += w[k] * p[2];
      out[x * 3] = clip8(s0), out[x * 3 + 1] = clip8(s1), out[x * 3 + 2] = clip8(s2);
    }
    return;
  }
  for (int64_t x = 0; x < tx->n; x++)
    for (int64_t c = 0; c < nc; c++) {
      const uint8_t *p = base + c * cs + tx->first[x] * xs;
      const int32_t *w = tx->w + x * tx->max;
      int64_t s = half;
      for (int64_t k = 0; k < tx->count[x]; k++) s += w[k] * p[k * xs];
      out[x * nc + c] = clip8(s);
    }
}

/* acc[i] += w * r[i] for i < n. */
static void add_scaled(int32_t *restrict acc, const uint8_t *restrict r, int32_t w, int64_t n) {
  for (int64_t i = 0; i < n; i++) acc[i] += w * r[i];
}

/* Resizes a box of 'src' and keeps a window of the result. */
int rt_image_resize(const rt_image *src, rt_box b, int64_t full_w, int64_t full_h, int64_t ox, int64_t oy,
                    int64_t out_w, int64_t out_h, uint8_t *dst) {
  int64_t nc = src->channels, line = out_w * nc;
  axis_taps *tx = make_taps(b.w, full_w, ox, out_w), *ty = make_taps(b.h, full_h, oy, out_h);
  int64_t y0 = ty ? ty->first[0] : 0, y1 = ty ? ty->first[out_h - 1] + ty->count[out_h - 1] : 0;
  uint8_t *rows = malloc((size_t)((y1 - y0) * line));
  int32_t *acc = malloc((size_t)line * sizeof *acc);
  int ok = tx && ty && rows && acc;
  const uint8_t *base = src->data + b.y * src->ystride + b.x * src->xstride;
  for (int64_t y = y0; ok && y < y1; y++) /* horizontal pass over the rows the vertical taps read */
    resize_row(src, base + y * src->ystride, tx, rows + (y - y0) * line);
  for (int64_t y = 0; ok && y < out_h; y++) { /* vertical pass, each output row summed tap by tap */
    for (int64_t i = 0; i < line; i++) acc[i] = 1 << (PRECISION_BITS - 1);
    for (int64_t k = 0; k < ty->count[y]; k++)
      add_scaled(acc, rows + (ty->first[y] + k - y0) * line, ty->w[y * ty->max + k], line);
    for (int64_t x = 0; x < out_w; x++)
      for (int64_t c = 0; c < nc; c++) dst[(c * out_h + y) * out_w + x] = clip8(acc[x * nc + c]);
  }
  free(rows);
  free(acc);
  free_taps(tx);
  free_taps(ty);
  return ok ? 0 : -1;
}

/* Shorter side to 'resize', centre crop of 'size'. */
int rt_image_center(const rt_image *src, int64_t resize, int64_t size, uint8_t *dst) {
  int64_t w = src->width, h = src->height, short_side = w < h ? w : h;
  int64_t fw = w * resize / short_side, fh = h * resize / short_side;
  if (fw < resize) fw = resize;
  if (fh < resize) fh = resize;
  rt_box all = {0, 0, w, h};
  /* torchvision's CenterCrop: int(round((fw - size) / 2.0)), halves to even */
  int64_t ox = (int64_t)nearbyint((double)(fw - size) / 2), oy = (int64_t)nearbyint((double)(fh - size) / 2);
  return rt_image_resize(src, all, fw, fh, ox, oy, size, size, dst);
}

/* RandomResizedCrop's box. */
rt_box rt_image_random_box(int64_t w, int64_t h, double min_scale, uint64_t seed) {
  rt_rng r;
  rt_rng_seed(&r, seed);
  double area = (double)w * (double)h, lo = log(3.0 / 4.0), hi = log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; attempt++) {
    double target = area * (min_scale + (1 - min_scale) * rt_rng_uniform(&r));
    double aspect = exp(lo + (hi - lo) * rt_rng_uniform(&r));
    int64_t bw = (int64_t)nearbyint(sqrt(target * aspect)), bh = (int64_t)nearbyint(sqrt(target / aspect));
    if (bw > 0 && bw <= w && bh > 0 && bh <= h) {
      rt_box b = {0, 0, bw, bh};
      b.y = (int64_t)(rt_rng_next(&r) % (uint64_t)(h - bh + 1));
      b.x = (int64_t)(rt_rng_next(&r) % (uint64_t)(w - bw + 1));
      return b;
    }
  }
  double in_ratio = (double)w / (double)h;
  rt_box b = {0, 0, w, h};
  if (in_ratio < 3.0 / 4.0) b.h = (int64_t)nearbyint((double)w / (3.0 / 4.0));
  else if (in_ratio > 4.0 / 3.0) b.w = (int64_t)nearbyint((double)h * (4.0 / 3.0));
  if (b.h > h) b.h = h;
  if (b.w > w) b.w = w;
  b.y = (h - b.h) / 2;
  b.x = (w - b.w) / 2;
  return b;
}
