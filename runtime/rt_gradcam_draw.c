/* Grad-CAM pictures: a map resized to the image and drawn over it in jet
 * colours, beside the image itself. */
#include <math.h>
#include <string.h>

#include "rt_gradcam.h"

/* Resizes 'src' [h,w] to 'dst' [H,W], sampling at pixel centres. */
void rt_gradcam_resize(const float *src, int64_t h, int64_t w, float *dst, int64_t H, int64_t W) {
  for (int64_t y = 0; y < H; y++) {
    double sy = ((double)y + 0.5) * (double)h / (double)H - 0.5;
    if (sy < 0) sy = 0;
    int64_t y0 = (int64_t)sy, y1 = y0 + 1 < h ? y0 + 1 : y0;
    double fy = sy - (double)y0;
    for (int64_t x = 0; x < W; x++) {
      double sx = ((double)x + 0.5) * (double)w / (double)W - 0.5;
      if (sx < 0) sx = 0;
      int64_t x0 = (int64_t)sx, x1 = x0 + 1 < w ? x0 + 1 : x0;
      double fx = sx - (double)x0;
      double top = src[y0 * w + x0] * (1 - fx) + src[y0 * w + x1] * fx;
      double bottom = src[y1 * w + x0] * (1 - fx) + src[y1 * w + x1] * fx;
      dst[y * W + x] = (float)(top * (1 - fy) + bottom * fy);
    }
  }
}

/* One channel of the jet colour map at v in [0,1] ('at': 1 red, 2 green, 3 blue). */
static double jet(double v, double at) {
  double c = 1.5 - fabs(4 * v - (4 - at));
  return c < 0 ? 0 : c > 1 ? 1 : c;
}

/* Draws one sample's image and its heat map side by side. */
void rt_gradcam_draw(const uint8_t *pixels, int64_t channels, int64_t H, int64_t W, const float *cam,
                     double opacity, int scale, uint8_t *rgb, int64_t stride) {
  float top = 0;
  for (int64_t p = 0; p < H * W; p++) top = cam[p] > top ? cam[p] : top;
  for (int64_t y = 0; y < H; y++)
    for (int64_t x = 0; x < W; x++) {
      uint8_t image[3], heat[3];
      for (int c = 0; c < 3; c++) image[c] = pixels[(channels == 3 ? c : 0) * H * W + y * W + x];
      double v = top > 0 ? cam[y * W + x] / top : 0;
      for (int c = 0; c < 3; c++)
        heat[c] = (uint8_t)lround((1 - opacity) * image[c] + opacity * 255 * jet(v, c + 1));
      for (int64_t dy = 0; dy < scale; dy++) {
        uint8_t *row = rgb + (y * scale + dy) * stride;
        for (int64_t dx = 0; dx < scale; dx++) {
          memcpy(row + 3 * (x * scale + dx), image, 3);
          memcpy(row + 3 * ((W + x) * scale + dx), heat, 3);
        }
      }
    }
}
