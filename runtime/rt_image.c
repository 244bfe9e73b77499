/* Image resampling: separable resizing by per-axis tap tables (a horizontal
 * pass into float rows, then a vertical pass rounding to bytes), and the
 * random boxes of RandomResizedCrop. */
#include "rt_image.h"

#include <math.h>
#include <stdlib.h>

#include "rt_init.h"

/* The source taps of one output coordinate along an axis. */
typedef struct {
  int64_t first, count;
  float w[];
} axis_tap;

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

static void free_taps(axis_tap **t, int64_t n) {
  for (int64_t i = 0; t && i < n; i++) free(t[i]);
  free(t);
}

/* Taps for coordinates offset..offset+n-1 of an axis of 'in' pixels
 * resized to 'full': the overlapped source pixels weighted by overlap when
 * shrinking, the two neighbours of the pixel centre when enlarging. */
static axis_tap **make_taps(int64_t in, int64_t full, int64_t offset, int64_t n) {
  axis_tap **t = calloc((size_t)n, sizeof *t);
  if (!t) return NULL;
  double scale = (double)in / (double)full;
  for (int64_t i = 0; i < n; i++) {
    int64_t o = i + offset;
    if (full <= in) {
      double lo = (double)o * scale, hi = (double)(o + 1) * scale;
      int64_t a = (int64_t)lo, b = (int64_t)(hi - 1e-9);
      if (b >= in) b = in - 1;
      t[i] = malloc(sizeof(axis_tap) + (size_t)(b - a + 1) * sizeof(float));
      if (!t[i]) break;
      t[i]->first = a, t[i]->count = b - a + 1;
      for (int64_t k = a; k <= b; k++) {
        double l = (double)k > lo ? (double)k : lo, r = (double)(k + 1) < hi ? (double)(k + 1) : hi;
        t[i]->w[k - a] = (float)((r - l) / scale);
      }
    } else {
      double s = ((double)o + 0.5) * scale - 0.5;
      if (s < 0) s = 0;
      int64_t a = (int64_t)s;
      t[i] = malloc(sizeof(axis_tap) + 2 * sizeof(float));
      if (!t[i]) break;
      t[i]->first = a;
      t[i]->count = a + 1 < in ? 2 : 1;
      t[i]->w[0] = t[i]->count == 2 ? (float)(1 - (s - (double)a)) : 1.0f;
      t[i]->w[1] = (float)(s - (double)a);
    }
  }
  for (int64_t i = 0; i < n; i++)
    if (!t[i]) {
      free_taps(t, n);
      return NULL;
    }
  return t;
}

/* Resizes a box of 'src' and keeps a window of the result. */
int rt_image_resize(const rt_image *src, rt_box b, int64_t full_w, int64_t full_h, int64_t ox, int64_t oy,
                    int64_t out_w, int64_t out_h, uint8_t *dst) {
  int64_t nc = src->channels;
  axis_tap **tx = make_taps(b.w, full_w, ox, out_w), **ty = make_taps(b.h, full_h, oy, out_h);
  float *rows = malloc((size_t)(b.h * out_w * nc) * sizeof(float));
  int ok = tx && ty && rows;
  const uint8_t *base = src->data + b.y * src->ystride + b.x * src->xstride;
  for (int64_t y = 0; ok && y < b.h; y++) /* horizontal pass: b.h x out_w x channels */
    for (int64_t x = 0; x < out_w; x++)
      for (int64_t c = 0; c < nc; c++) {
        const uint8_t *p = base + c * src->cstride + y * src->ystride + tx[x]->first * src->xstride;
        float s = 0;
        for (int64_t k = 0; k < tx[x]->count; k++) s += tx[x]->w[k] * p[k * src->xstride];
        rows[(y * out_w + x) * nc + c] = s;
      }
  for (int64_t y = 0; ok && y < out_h; y++) /* vertical pass into CHW */
    for (int64_t x = 0; x < out_w; x++)
      for (int64_t c = 0; c < nc; c++) {
        float s = 0;
        for (int64_t k = 0; k < ty[y]->count; k++) s += ty[y]->w[k] * rows[((ty[y]->first + k) * out_w + x) * nc + c];
        int v = (int)(s + 0.5f);
        dst[(c * out_h + y) * out_w + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
  free(rows);
  free_taps(tx, out_w);
  free_taps(ty, out_h);
  return ok ? 0 : -1;
}

/* Shorter side to 'size', centre crop. */
int rt_image_center(const rt_image *src, int64_t size, uint8_t *dst) {
  int64_t w = src->width, h = src->height, short_side = w < h ? w : h;
  int64_t fw = w * size / short_side, fh = h * size / short_side;
  if (fw < size) fw = size;
  if (fh < size) fh = size;
  rt_box all = {0, 0, w, h};
  return rt_image_resize(src, all, fw, fh, (fw - size) / 2, (fh - size) / 2, size, size, dst);
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
