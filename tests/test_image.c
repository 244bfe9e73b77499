/* Tests of image resampling (rt_image): a box resized with the same values
 * from either layout, byte for byte Pillow's values (torchvision's
 * transforms), windows of the result, and RandomResizedCrop's boxes (inside the image, within the
 * area and aspect ranges, the fallback for extreme shapes, deterministic per
 * seed, and their area spread as torchvision's). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rt_data_folder.h"
#include "rt_image.h"

/* A 3-channel w x h test image as CHW and as HWC bytes. */
static void make_image(int64_t w, int64_t h, uint8_t *chw, uint8_t *hwc) {
  for (int64_t c = 0; c < 3; c++)
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) {
        uint8_t v = (uint8_t)((x * 37 + y * 11 + c * 90 + x * y) % 256);
        chw[(c * h + y) * w + x] = v;
        hwc[(y * w + x) * 3 + c] = v;
      }
}

/* Both layouts give the same bytes; a box resized to its own size is
 * copied exactly; a window of the full result equals the window's part. */
static void test_layouts_and_windows(void **state) {
  (void)state;
  enum { W = 13, H = 9 };
  uint8_t chw[3 * W * H], hwc[3 * W * H], a[3 * 64], b[3 * 64], full[3 * 20 * 12], win[3 * 7 * 5];
  make_image(W, H, chw, hwc);
  rt_image vc = rt_image_chw(chw, 3, W, H), vh = rt_image_hwc(hwc, 3, W, H);
  rt_box box = {3, 2, 8, 6};
  assert_int_equal(rt_image_resize(&vc, box, 8, 6, 0, 0, 8, 6, a), 0);
  assert_int_equal(rt_image_resize(&vh, box, 8, 6, 0, 0, 8, 6, b), 0);
  assert_memory_equal(a, b, 3 * 48);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < 6; y++)
      for (int x = 0; x < 8; x++) assert_int_equal(a[(c * 6 + y) * 8 + x], chw[(c * H + y + 2) * W + x + 3]);
  /* the box enlarged to 20x12 (bilinear), and the window at (5, 4) of 7x5 */
  assert_int_equal(rt_image_resize(&vh, box, 20, 12, 0, 0, 20, 12, full), 0);
  assert_int_equal(rt_image_resize(&vc, box, 20, 12, 5, 4, 7, 5, win), 0);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < 5; y++)
      for (int x = 0; x < 7; x++) assert_int_equal(win[(c * 5 + y) * 7 + x], full[(c * 12 + y + 4) * 20 + x + 5]);
}

/* Byte for byte what torchvision 0.14 (Pillow) gives for Resize +
 * CenterCrop and resized_crop, shrinking and enlarging, RGB (the decoded
 * file's interleaved layout) and gray (a CHW plane):
 * tests/data/resize, written by scripts/resize_golden.py. */
static void test_pillow_values(void **state) {
  (void)state;
  const char *dir = "tests/data/resize";
  char path[256];
  snprintf(path, sizeof path, "%s/image.png", dir);
  ir_diag *d = ir_diag_create();
  int64_t w, h;
  uint8_t *rgb = NULL;
  if (rt_data_decode_image(path, &w, &h, &rgb, d) != ATTNC_OK) fail_msg("%s", ir_diag_text(d));
  uint8_t *green = malloc((size_t)(w * h));
  for (int64_t i = 0; i < w * h; i++) green[i] = rgb[i * 3 + 1];
  snprintf(path, sizeof path, "%s/cases.txt", dir);
  FILE *cases = fopen(path, "r");
  snprintf(path, sizeof path, "%s/expected.bin", dir);
  FILE *expected = fopen(path, "rb");
  assert_non_null(cases);
  assert_non_null(expected);
  char line[128];
  int n = 0;
  while (fgets(line, sizeof line, cases)) {
    int gray = !strncmp(line, "gray ", 5);
    const char *c = line + (gray ? 5 : 0);
    rt_image v = gray ? rt_image_chw(green, 1, w, h) : rt_image_hwc(rgb, 3, w, h);
    int64_t a[5], size;
    uint8_t got[3 * 64 * 64], want[3 * 64 * 64];
    if (sscanf(c, "center %" SCNd64 " %" SCNd64, &a[0], &size) == 2) {
      assert_int_equal(rt_image_center(&v, a[0], size, got), 0);
    } else {
      assert_int_equal(sscanf(c, "crop %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64, &a[0], &a[1], &a[2],
                              &a[3], &size),
                       5);
      rt_box b = {a[1], a[0], a[3], a[2]};
      assert_int_equal(rt_image_resize(&v, b, size, size, 0, 0, size, size, got), 0);
    }
    size_t bytes = (size_t)((gray ? 1 : 3) * size * size);
    assert_int_equal(fread(want, 1, bytes, expected), bytes);
    for (size_t i = 0; i < bytes; i++)
      if (got[i] != want[i]) fail_msg("%s: byte %zu is %d, Pillow's %d", line, i, got[i], want[i]);
    n++;
  }
  assert_int_equal(n, 26);
  fclose(cases);
  fclose(expected);
  free(green);
  free(rgb);
  ir_diag_destroy(d);
}

/* The boxes of RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3)). */
static void test_random_box(void **state) {
  (void)state;
  const int64_t W = 320, H = 240;
  double sum = 0, small = 1, large = 0;
  int n = 4000, whole = 0;
  for (int i = 0; i < n; i++) {
    rt_box b = rt_image_random_box(W, H, 0.08, (uint64_t)i * 7919);
    rt_box again = rt_image_random_box(W, H, 0.08, (uint64_t)i * 7919);
    assert_memory_equal(&b, &again, sizeof b);
    assert_true(b.x >= 0 && b.y >= 0 && b.w >= 1 && b.h >= 1 && b.x + b.w <= W && b.y + b.h <= H);
    double frac = (double)(b.w * b.h) / (double)(W * H), ratio = (double)b.w / (double)b.h;
    if (b.w == W && b.h == H) {
      whole++;
      continue;
    }
    /* rounding of each side moves the area and ratio a little */
    assert_true(frac > 0.075 && frac < 1.01);
    assert_true(ratio > 0.74 && ratio < 1.35);
    sum += frac;
    small = frac < small ? frac : small;
    large = frac > large ? frac : large;
  }
  /* Draws that do not fit are redrawn: large fractions with wide ratios
   * fail, so the mean is below the uniform 0.54. torchvision 1.13, 100000
   * boxes of 320x240 (torch.manual_seed(0)): mean 0.4344. */
  double mean = sum / (n - whole);
  print_message("mean area fraction %.4f\n", mean);
  assert_true(mean > 0.42 && mean < 0.45);
  assert_true(small < 0.09 && large > 0.95);
  assert_true(whole < n / 100);
  /* min_scale 1: the whole area, so only ratios near 1 fit, else the fallback (the whole image) */
  rt_box b = rt_image_random_box(W, W, 1.0, 3);
  assert_true(b.w * b.h >= W * W - 2 * W);
  /* fallbacks: too wide -> full height and a 4/3 box; too tall -> full width and a 3/4 box, centred */
  b = rt_image_random_box(1000, 10, 0.08, 1);
  assert_int_equal(b.h, 10);
  assert_int_equal(b.w, 13);
  assert_int_equal(b.x, (1000 - 13) / 2);
  b = rt_image_random_box(9, 900, 0.08, 1);
  assert_int_equal(b.w, 9);
  assert_int_equal(b.h, 12);
  assert_int_equal(b.y, (900 - 12) / 2);
  /* a 1x1 image: the only box */
  b = rt_image_random_box(1, 1, 0.08, 5);
  assert_true(b.x == 0 && b.y == 0 && b.w == 1 && b.h == 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layouts_and_windows),
      cmocka_unit_test(test_pillow_values),
      cmocka_unit_test(test_random_box),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
