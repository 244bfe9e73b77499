/* Resampling of 8-bit images for the data sets and the loader, with the
 * values Pillow gives torchvision's transforms: a box of an image resized
 * (Image.resize with BILINEAR: a triangle filter, widened when shrinking)
 * with a window of the result kept, the Resize + CenterCrop view, and the
 * random box of RandomResizedCrop. */
#ifndef ATTNC_RT_IMAGE_H
#define ATTNC_RT_IMAGE_H

#include <stdint.h>

/* A read-only view of an 8-bit image in any layout: pixel (c, y, x) is
 * data[c * cstride + y * ystride + x * xstride]. */
typedef struct {
  const uint8_t *data;
  int64_t channels, width, height;
  int64_t cstride, ystride, xstride;
} rt_image;

/* A rectangle of an image: left column, top row, width, height. */
typedef struct {
  int64_t x, y, w, h;
} rt_box;

/* A view of the HWC interleaved image 'data' (decoded files) or of the
 * CHW planes 'data' (data sets in memory). */
rt_image rt_image_hwc(const uint8_t *data, int64_t channels, int64_t width, int64_t height);
rt_image rt_image_chw(const uint8_t *data, int64_t channels, int64_t width, int64_t height);

/* Resizes box 'b' of 'src' to full_w x full_h pixels and writes the out_w
 * x out_h window at (ox, oy) of the result to 'dst' as CHW bytes (src's
 * channels). Returns 0, or -1 when out of memory (dst is then undefined). */
int rt_image_resize(const rt_image *src, rt_box b, int64_t full_w, int64_t full_h, int64_t ox, int64_t oy,
                    int64_t out_w, int64_t out_h, uint8_t *dst);

/* The ImageNet evaluation view, torchvision's Resize(resize) +
 * CenterCrop(size): shorter side resized to 'resize' (>= size), then the
 * size x size centre (offsets rounded half to even), as CHW bytes. 0, or -1 when out of
 * memory. */
int rt_image_center(const rt_image *src, int64_t resize, int64_t size, uint8_t *dst);

/* The box torchvision's RandomResizedCrop(scale=(min_scale, 1), ratio=(3/4,
 * 4/3)) takes from a w x h image: up to 10 draws of an area fraction and a
 * log-uniform aspect ratio until the box fits, else the whole image clamped
 * to the ratio range, centred. The draws come from 'seed' alone. */
rt_box rt_image_random_box(int64_t w, int64_t h, double min_scale, uint64_t seed);

#endif
