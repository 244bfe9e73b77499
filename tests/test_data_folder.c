/* Tests of image-folder data sets (folder:DIR[:SIZE[:RESIZE]]): PNG and JPEG files
 * written here in class folders, read back with their labels and pixels;
 * resizing and the centre crop with Pillow's values; Tiny ImageNet's
 * layout; sets read from their files as they are read; every
 * kind of wrong folder or file a clear message naming it; and a training
 * run on such a folder from the command line. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jpeglib.h>

#include "rt_data.h"
#include "rt_loader.h"
#include "util_build.h"
#include "util_cli.h"

/* Makes directory dir/sub. */
static void make_dir(const char *dir, const char *sub) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, sub);
  assert_int_equal(mkdir(p, 0755), 0);
}

/* Writes a w x h PNG of 'channels' (1 gray, 3 RGB) interleaved bytes to dir/name. */
static void write_png(const char *dir, const char *name, int w, int h, int channels, const uint8_t *px) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = (png_uint_32)w, im.height = (png_uint_32)h;
  im.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  assert_true(png_image_write_to_file(&im, p, 0, px, 0, NULL));
}

/* Writes a w x h RGB JPEG (quality 100) of interleaved bytes to dir/name. */
static void write_jpeg(const char *dir, const char *name, int w, int h, const uint8_t *px) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * (size_t)w * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(f);
}

/* Writes n bytes to dir/name. */
static void write_raw(const char *dir, const char *name, const void *data, size_t n) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  assert_int_equal(tc_write_file(p, data, n), 0);
}

/* Reads dir/name whole; *n gets its size. */
static char *read_raw(const char *dir, const char *name, size_t *n) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  char *b = tc_read_file(p, n);
  assert_non_null(b);
  return b;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

/* Removes 'dir' and everything below it, and frees the string. */
static void remove_tree(char *dir) {
  nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

/* Opens "folder:<arg>" for 'split', from its files if 'from_files'; NULL
 * on failure with the message in *msg (static). */
static rt_dataset *open_folder_as(const char *arg, rt_split split, int from_files, const char **msg) {
  static char text[2048];
  char spec[4400];
  if (snprintf(spec, sizeof spec, "folder:%s", arg) >= (int)sizeof spec) {
    if (msg) *msg = "test spec too long";
    return NULL;
  }
  ir_diag *d = ir_diag_create();
  rt_dataset *ds = NULL;
  attnc_status st = rt_dataset_open_as(spec, split, from_files, &ds, d);
  snprintf(text, sizeof text, "%s", ir_diag_text(d));
  ir_diag_destroy(d);
  if (msg) *msg = text;
  assert_true((st == ATTNC_OK) == (ds != NULL));
  return ds;
}

/* Opens "folder:<arg>" for 'split' decoded in memory. */
static rt_dataset *open_folder(const char *arg, rt_split split, const char **msg) {
  return open_folder_as(arg, split, 0, msg);
}

/* Expects "folder:<arg>" to fail with a message containing 'want'. */
static void expect_error(const char *arg, rt_split split, const char *want) {
  const char *msg;
  rt_dataset *ds = open_folder(arg, split, &msg);
  if (ds || !strstr(msg, want)) fail_msg("folder:%s: expected '%s', got '%s'", arg, want, ds ? "success" : msg);
}

/* Pixel k of a 4x4 test pattern, channel c. */
static uint8_t pattern(int k, int c) { return (uint8_t)(k * 13 + c * 70 + 5); }

/* A train split of two classes (cat: a PNG and a JPEG; dog: a gray PNG)
 * and a val split; other files beside them are ignored. Returns the root. */
static char *make_folder(void) {
  char *dir = tc_tempdir();
  assert_non_null(dir);
  make_dir(dir, "train"), make_dir(dir, "train/cat"), make_dir(dir, "train/dog");
  make_dir(dir, "val"), make_dir(dir, "val/dog");
  uint8_t rgb[48], solid[48], gray[16];
  for (int k = 0; k < 16; k++) {
    for (int c = 0; c < 3; c++) rgb[k * 3 + c] = pattern(k, c), solid[k * 3 + c] = (uint8_t)(40 + 60 * c);
    gray[k] = (uint8_t)(k * 16);
  }
  write_png(dir, "train/cat/a.png", 4, 4, 3, rgb);
  write_jpeg(dir, "train/cat/b.JPG", 4, 4, solid);
  write_png(dir, "train/dog/c.png", 4, 4, 1, gray);
  write_raw(dir, "train/cat/notes.txt", "not an image", 12);
  write_raw(dir, "train/labels.csv", "a,cat\n", 6);
  write_raw(dir, "train/cat/.hidden.png", "x", 1);
  write_png(dir, "val/dog/d.png", 4, 4, 3, rgb);
  return dir;
}

/* Labels follow the sorted class folders, files in name order; PNG pixels
 * exactly (gray expanded to RGB), JPEG within compression error; the test
 * split comes from val/ with the training classes' numbers. */
static void test_read(void **state) {
  (void)state;
  char *dir = make_folder();
  const char *msg;
  rt_dataset *ds = open_folder(dir, RT_SPLIT_TRAIN, &msg);
  if (!ds) fail_msg("%s", msg);
  assert_string_equal(ds->name, "folder");
  assert_int_equal(ds->count, 3);
  assert_int_equal(ds->classes, 2);
  assert_int_equal(ds->channels, 3);
  assert_int_equal(ds->height, 4);
  assert_int_equal(ds->width, 4);
  assert_int_equal(ds->labels[0], 0);
  assert_int_equal(ds->labels[1], 0);
  assert_int_equal(ds->labels[2], 1);
  assert_string_equal(ds->class_names[0], "cat");
  assert_string_equal(ds->class_names[1], "dog");
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < 16; k++) {
      assert_int_equal(ds->pixels[c * 16 + k], pattern(k, c));                              /* a.png, CHW */
      assert_true(abs(ds->pixels[48 + c * 16 + k] - (40 + 60 * c)) <= 3);                    /* b.JPG */
      assert_int_equal(ds->pixels[96 + c * 16 + k], k * 16);                                 /* c.png, gray */
    }
  assert_float_equal(ds->mean[0], 0.485, 1e-6); /* ImageNet's normalization */
  rt_dataset_destroy(ds);
  ds = open_folder(dir, RT_SPLIT_TEST, &msg);
  if (!ds) fail_msg("%s", msg);
  assert_int_equal(ds->count, 1);
  assert_int_equal(ds->classes, 2);
  assert_int_equal(ds->labels[0], 1);
  rt_dataset_destroy(ds);
  remove_tree(dir);
}

/* :SIZE resizes the shorter side and crops the centre with Pillow's values
 * (torchvision's Resize + CenterCrop on PIL images): an 8x4 image to 2x2,
 * and :2:4 keeps its centre 2x2 pixels; a 2x2 image enlarged to 4x4. */
static void test_resize(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  make_dir(dir, "train"), make_dir(dir, "train/x"), make_dir(dir, "test"), make_dir(dir, "test/x");
  uint8_t wide[8 * 4 * 3];
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 8; x++)
      for (int c = 0; c < 3; c++) wide[(y * 8 + x) * 3 + c] = (uint8_t)(y * 40 + x * 8 + c);
  write_png(dir, "train/x/wide.png", 8, 4, 3, wide);
  const uint8_t small[12] = {0, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40};
  write_png(dir, "test/x/small.png", 2, 2, 3, small);
  char arg[4200];
  snprintf(arg, sizeof arg, "%s:2", dir);
  const char *msg;
  rt_dataset *ds = open_folder(arg, RT_SPLIT_TRAIN, &msg);
  if (!ds) fail_msg("%s", msg);
  assert_int_equal(ds->height, 2);
  assert_int_equal(ds->width, 2);
  /* Pillow's Resize(2) + CenterCrop(2) (torchvision 0.14): a 4x8 -> 2x4 triangle filter, columns 1-2 */
  const int shrunk[12] = {49, 65, 111, 127, 50, 66, 112, 128, 51, 67, 113, 129};
  for (int k = 0; k < 12; k++) assert_int_equal(ds->pixels[k], shrunk[k]);
  rt_dataset_destroy(ds);
  /* :2:4: shorter side 4 (the image as it is), centre 2x2: rows 1-2, columns 3-4 */
  snprintf(arg, sizeof arg, "%s:2:4", dir);
  ds = open_folder(arg, RT_SPLIT_TRAIN, &msg);
  if (!ds) fail_msg("%s", msg);
  assert_int_equal(ds->height, 2);
  assert_int_equal(ds->resize, 4);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < 2; y++)
      for (int x = 0; x < 2; x++) assert_int_equal(ds->pixels[(c * 2 + y) * 2 + x], wide[((y + 1) * 8 + x + 3) * 3 + c]);
  rt_dataset_destroy(ds);
  snprintf(arg, sizeof arg, "%s:4", dir);
  ds = open_folder(arg, RT_SPLIT_TEST, &msg);
  if (!ds) fail_msg("%s", msg);
  const int want[16] = {0, 25, 75, 100, 50, 59, 76, 85, 150, 126, 79, 55, 200, 160, 80, 40};
  for (int k = 0; k < 16; k++) assert_int_equal(ds->pixels[k], want[k]);
  rt_dataset_destroy(ds);
  remove_tree(dir);
}

/* Every wrong folder or file: an error naming it, never a crash. */
static void test_errors(void **state) {
  (void)state;
  char *dir = make_folder();
  char arg[4200], want[4300];
  snprintf(arg, sizeof arg, "%s/nowhere", dir);
  expect_error(arg, RT_SPLIT_TRAIN, "nowhere/train: not found");
  snprintf(arg, sizeof arg, "%s:99999", dir);
  expect_error(arg, RT_SPLIT_TRAIN, "sizes must be 1 to 4096");
  snprintf(arg, sizeof arg, "%s:0", dir);
  expect_error(arg, RT_SPLIT_TRAIN, "sizes must be 1 to 4096");
  snprintf(arg, sizeof arg, "%s:8:4", dir);
  expect_error(arg, RT_SPLIT_TRAIN, "the resize (4) is smaller than the crop (8)");
  /* no val/ or test/ */
  char *bare = tc_tempdir();
  make_dir(bare, "train"), make_dir(bare, "train/a");
  uint8_t px[48] = {0};
  write_png(bare, "train/a/x.png", 4, 4, 3, px);
  expect_error(bare, RT_SPLIT_TEST, "holds the test images");
  make_dir(bare, "train/empty");
  expect_error(bare, RT_SPLIT_TRAIN, "train/empty: no .png, .jpg or .jpeg images");
  remove_tree(bare);
  /* a class in val/ that train/ lacks */
  make_dir(dir, "val/bird");
  expect_error(dir, RT_SPLIT_TEST, "class folder 'bird' is not one of the training classes");
  /* sizes differ without :SIZE; with it, fine */
  write_png(dir, "train/dog/e.png", 5, 4, 1, px);
  snprintf(want, sizeof want, "%s/train/dog/e.png: 5x4 pixels, but", dir);
  expect_error(dir, RT_SPLIT_TRAIN, want);
  snprintf(arg, sizeof arg, "%s:4", dir);
  rt_dataset *ds = open_folder(arg, RT_SPLIT_TRAIN, NULL);
  assert_non_null(ds);
  assert_int_equal(ds->count, 4);
  rt_dataset_destroy(ds);
  /* files that are not images, truncated PNG and JPEG data */
  uint8_t big[32 * 32 * 3];
  for (int k = 0; k < 32 * 32 * 3; k++) big[k] = (uint8_t)(k * 7919 % 251);
  write_png(dir, "big.png", 32, 32, 3, big);
  size_t n, nj;
  char *png = read_raw(dir, "big.png", &n), *jpg = read_raw(dir, "train/cat/b.JPG", &nj);
  write_raw(dir, "train/dog/f.jpeg", "GIF89a...", 9);
  snprintf(want, sizeof want, "%s/train/dog/f.jpeg: neither a PNG nor a JPEG file", dir);
  expect_error(arg, RT_SPLIT_TRAIN, want);
  write_raw(dir, "train/dog/f.jpeg", jpg, nj / 2);
  snprintf(want, sizeof want, "%s/train/dog/f.jpeg: corrupt JPEG data", dir);
  expect_error(arg, RT_SPLIT_TRAIN, want);
  write_raw(dir, "train/dog/f.jpeg", png, n - 40); /* a PNG named .jpeg: read by its bytes */
  snprintf(want, sizeof want, "%s/train/dog/f.jpeg: corrupt PNG data", dir);
  expect_error(arg, RT_SPLIT_TRAIN, want);
  write_raw(dir, "train/dog/f.jpeg", png, 20);
  snprintf(want, sizeof want, "%s/train/dog/f.jpeg: not a readable PNG file", dir);
  expect_error(arg, RT_SPLIT_TRAIN, want);
  free(png);
  free(jpg);
  remove_tree(dir);
}

/* Tiny ImageNet's layout: images in <class>/images/ beside a boxes file,
 * and val/images/ labelled by val_annotations.txt in its order; a wrong
 * annotation line is an error naming the file and line. */
static void test_tiny_imagenet(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  make_dir(dir, "train"), make_dir(dir, "val"), make_dir(dir, "val/images"), make_dir(dir, "test");
  make_dir(dir, "test/images");
  const char *wnids[2] = {"n01443537", "n09999999"};
  uint8_t px[8 * 8 * 3];
  for (int w = 0; w < 2; w++) {
    char sub[128];
    snprintf(sub, sizeof sub, "train/%s", wnids[w]);
    make_dir(dir, sub);
    snprintf(sub, sizeof sub, "train/%s/images", wnids[w]);
    make_dir(dir, sub);
    for (int i = 0; i < 2; i++) {
      memset(px, 50 + 100 * w + i, sizeof px);
      char name[160];
      snprintf(name, sizeof name, "train/%s/images/%s_%d.JPEG", wnids[w], wnids[w], i);
      write_jpeg(dir, name, 8, 8, px);
    }
    snprintf(sub, sizeof sub, "train/%s/%s_boxes.txt", wnids[w], wnids[w]);
    write_raw(dir, sub, "x\t0\t0\t8\t8\n", 10);
  }
  for (int i = 0; i < 3; i++) {
    memset(px, 40 * i, sizeof px);
    char name[64];
    snprintf(name, sizeof name, "val/images/val_%d.JPEG", i);
    write_jpeg(dir, name, 8, 8, px);
  }
  write_jpeg(dir, "test/images/test_0.JPEG", 8, 8, px); /* unlabelled: val/ is used */
  const char *list = "val_2.JPEG\tn09999999\t0\t0\t8\t8\nval_0.JPEG\tn01443537\t1\t1\t7\t7\r\nval_1.JPEG\tn09999999\t0\t0\t8\t8\n";
  write_raw(dir, "val/val_annotations.txt", list, strlen(list));
  const char *msg;
  rt_dataset *ds = open_folder(dir, RT_SPLIT_TRAIN, &msg);
  if (!ds) fail_msg("%s", msg);
  assert_int_equal(ds->count, 4);
  assert_int_equal(ds->classes, 2);
  assert_int_equal(ds->labels[1], 0);
  assert_int_equal(ds->labels[2], 1);
  assert_true(abs(ds->pixels[2 * 192] - 150) <= 2);
  rt_dataset_destroy(ds);
  ds = open_folder(dir, RT_SPLIT_TEST, &msg);
  if (!ds) fail_msg("%s", msg);
  assert_int_equal(ds->count, 3);
  const int64_t labels[3] = {1, 0, 1};
  const int first[3] = {80, 0, 40};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(ds->labels[i], labels[i]);
    assert_true(abs(ds->pixels[i * 192] - first[i]) <= 2);
  }
  rt_dataset_destroy(ds);
  char want[4300];
  const char *unknown = "val_0.JPEG\tn01443537\nval_1.JPEG\tn00000000\n";
  write_raw(dir, "val/val_annotations.txt", unknown, strlen(unknown));
  snprintf(want, sizeof want, "%s/val/val_annotations.txt:2: class 'n00000000' is not one of the training classes", dir);
  expect_error(dir, RT_SPLIT_TEST, want);
  write_raw(dir, "val/val_annotations.txt", "val_0.JPEG n01443537\n", 21);
  snprintf(want, sizeof want, "%s/val/val_annotations.txt:1: expected", dir);
  expect_error(dir, RT_SPLIT_TEST, want);
  write_raw(dir, "val/val_annotations.txt", "../x.JPEG\tn01443537\n", 20);
  expect_error(dir, RT_SPLIT_TEST, want);
  remove_tree(dir);
}

/* Every sample's bytes from a set read from its files. */
static uint8_t *all_samples(const rt_dataset *ds) {
  size_t per = (size_t)(ds->channels * ds->height * ds->width);
  uint8_t *px = malloc((size_t)ds->count * per);
  ir_diag *d = ir_diag_create();
  for (int64_t k = 0; k < ds->count; k++)
    if (rt_dataset_sample(ds, k, NULL, px + k * per, d) != ATTNC_OK) fail_msg("%s", ir_diag_text(d));
  ir_diag_destroy(d);
  return px;
}

/* A set read from its files gives the same samples, holdout, labels and
 * batches as the set decoded at opening; a file broken after opening is a
 * read error naming it, from rt_dataset_sample and from the loader. */
static void test_from_files(void **state) {
  (void)state;
  char *dir = make_folder();
  uint8_t wide[6 * 10 * 3];
  for (int k = 0; k < 180; k++) wide[k] = (uint8_t)(k * 29 % 256);
  write_png(dir, "train/dog/wide.png", 10, 6, 3, wide);
  char arg[4200];
  snprintf(arg, sizeof arg, "%s:3", dir);
  const char *msg;
  rt_dataset *mem = open_folder_as(arg, RT_SPLIT_TRAIN, 0, &msg), *files = open_folder_as(arg, RT_SPLIT_TRAIN, 1, &msg);
  if (!mem || !files) fail_msg("%s", msg);
  assert_null(files->pixels);
  assert_non_null(files->paths);
  assert_non_null(mem->pixels);
  assert_int_equal(files->count, 4);
  assert_int_equal(files->height, 3);
  assert_memory_equal(files->labels, mem->labels, 4 * sizeof(int64_t));
  uint8_t *px = all_samples(files);
  assert_memory_equal(px, mem->pixels, 4 * 27);
  free(px);
  /* batches through the loader, with flip */
  rt_loader_options o = {.batch = 2, .shuffle = 1, .seed = 3, .flip = 1};
  rt_loader *lm = NULL, *lf = NULL;
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_loader_create(mem, &o, &lm, d), ATTNC_OK);
  assert_int_equal(rt_loader_create(files, &o, &lf, d), ATTNC_OK);
  rt_loader_start(lm, 1, 0), rt_loader_start(lf, 1, 0);
  float a[2 * 27], b[2 * 27];
  int64_t la[2], lb[2];
  for (int i = 0; i < 2; i++) {
    assert_int_equal(rt_loader_next(lm, a, la), 2);
    assert_int_equal(rt_loader_next(lf, b, lb), 2);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(la, lb, sizeof la);
  }
  /* holdout moves the same samples */
  rt_dataset *hm = NULL, *hf = NULL;
  assert_int_equal(rt_dataset_holdout(mem, 2, 5, &hm, d), ATTNC_OK);
  assert_int_equal(rt_dataset_holdout(files, 2, 5, &hf, d), ATTNC_OK);
  assert_null(hf->pixels);
  px = all_samples(hf);
  assert_memory_equal(px, hm->pixels, 2 * 27);
  free(px);
  px = all_samples(files);
  assert_memory_equal(px, mem->pixels, 2 * 27);
  free(px);
  rt_dataset_destroy(hm), rt_dataset_destroy(hf);
  /* a file truncated after opening */
  char *bad = strdup(files->paths[1]);
  size_t n;
  char *bytes = tc_read_file(bad, &n);
  assert_int_equal(tc_write_file(bad, bytes, n / 2), 0);
  uint8_t one[27];
  assert_int_equal(rt_dataset_sample(files, 1, NULL, one, d), ATTNC_EPARSE);
  assert_non_null(strstr(ir_diag_text(d), bad));
  ir_diag_clear(d);
  rt_loader_start(lf, 0, 0);
  int64_t got = 0;
  while ((got = rt_loader_next(lf, b, lb)) > 0) {
  }
  assert_int_equal(got, -1);
  assert_non_null(strstr(rt_loader_error(lf), bad));
  assert_int_equal(rt_loader_next(lf, b, lb), 0); /* the epoch ended there */
  rt_loader_destroy(lm), rt_loader_destroy(lf);
  free(bytes);
  free(bad);
  ir_diag_destroy(d);
  rt_dataset_destroy(mem), rt_dataset_destroy(files);
  /* without :SIZE a file of another size is found when it is read */
  remove_tree(dir);
  dir = make_folder();
  files = open_folder_as(dir, RT_SPLIT_TRAIN, 1, &msg);
  if (!files) fail_msg("%s", msg);
  write_png(dir, "train/dog/c.png", 10, 6, 3, wide);
  d = ir_diag_create();
  assert_int_equal(rt_dataset_sample(files, 2, NULL, one, d), ATTNC_EPARSE);
  assert_non_null(strstr(ir_diag_text(d), "10x6 pixels, but the data set's images are 4x4"));
  ir_diag_destroy(d);
  rt_dataset_destroy(files);
  remove_tree(dir);
}

/* attnc train, eval and gradcam on an image folder: 3x8x8 images of two
 * classes (bright or dark top half), the class count from the folders;
 * RandomResizedCrop training resumed bit-identically; bad --augment values. */
static void test_train_cli(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  const char *split[2] = {"train", "val"};
  for (int s = 0; s < 2; s++) {
    char sub[64];
    make_dir(dir, split[s]);
    for (int k = 0; k < 2; k++) {
      snprintf(sub, sizeof sub, "%s/%s", split[s], k ? "top" : "bottom");
      make_dir(dir, sub);
      for (int i = 0; i < 16; i++) {
        uint8_t px[8 * 8 * 3];
        for (int p = 0; p < 64; p++)
          for (int c = 0; c < 3; c++) px[p * 3 + c] = (uint8_t)(((p < 32) == k ? 200 : 30) + (i * 7 + p) % 20);
        char name[128];
        snprintf(name, sizeof name, "%s/%02d.png", sub, i);
        write_png(dir, name, 8, 8, 3, px);
      }
    }
  }
  char spec[4200], *ck = tc_path(dir, "ck.safetensors");
  snprintf(spec, sizeof spec, "folder:%s", dir);
  tc_result r;
  const char *train[] = {"train", "tests/data/specs/tiny.lua", "--data", spec, "--epochs", "3", "--batch", "8", "--lr",
                         "0.05", "--threads", "1", "--save", ck, "--json", NULL};
  assert_int_equal(tc_run_attnc(train, &r), 0);
  if (r.code) fail_msg("train: %s", r.err);
  const char *top1 = strstr(r.out, "\"test_top1\":");
  assert_non_null(top1);
  assert_true(strtod(top1 + 12, NULL) > 0.9); /* an easy task */
  tc_result_free(&r);
  const char *eval[] = {"eval", "tests/data/specs/tiny.lua", "--weights", ck, "--data", spec, "--json", NULL};
  assert_int_equal(tc_run_attnc(eval, &r), 0);
  if (r.code) fail_msg("eval: %s", r.err);
  assert_non_null(strstr(r.out, "\"test_count\":32"));
  tc_result_free(&r);
  /* Grad-CAM of two val images */
  char *png = tc_path(dir, "cam.png");
  const char *cam[] = {"gradcam", "tests/data/specs/tiny.lua", "--weights", ck, "--data", spec, "--index", "0,17",
                       "--out", png, NULL};
  assert_int_equal(tc_run_attnc(cam, &r), 0);
  if (r.code) fail_msg("gradcam: %s", r.err);
  assert_non_null(strstr(r.out, "label 1 \"top\""));
  tc_result_free(&r);
  struct stat st;
  assert_int_equal(stat(png, &st), 0);
  /* RandomResizedCrop from the files: 2 epochs in one run, or 1 and a resumed
   * second, end with the same bytes */
  char *full = tc_path(dir, "full.safetensors"), *half = tc_path(dir, "half.safetensors");
#define RRC_ARGS "train", "tests/data/specs/tiny.lua", "--data", spec, "--batch", "8", "--threads", "2", \
                 "--augment", "resized-crop:0.3+flip", "--seed", "4"
  const char *two[] = {RRC_ARGS, "--epochs", "2", "--save", full, NULL};
  const char *one[] = {RRC_ARGS, "--epochs", "1", "--save", half, NULL};
  const char *more[] = {RRC_ARGS, "--epochs", "2", "--save", half, "--resume", half, NULL};
  const char *plain[] = {"train", "tests/data/specs/tiny.lua", "--data", spec, "--batch", "8", "--threads", "2",
                         "--augment", "flip", "--seed", "4", "--epochs", "2", "--save", ck, NULL};
  for (const char *const *run[] = {two, one, more, plain}, *const **a = run; a < run + 4; a++) {
    assert_int_equal(tc_run_attnc(*a, &r), 0);
    if (r.code) fail_msg("train: %s", r.err);
    if (*a == two) /* what it trains on, and that the crops come from the files */
      tb_assert_contains(r.err, "data: folder, 32 training and 32 test images of 3x8x8, 2 classes; augmentation: "
                            "resized-crop (area 0.3-1) + flip; training images decoded from their files");
    tc_result_free(&r);
  }
  assert_true(tc_same_tensors(full, half));
  assert_false(tc_same_tensors(full, ck)); /* the crops changed the training */
  const char *bad[] = {"resized-crop:0", "resized-crop:2", "crop+resized-crop", "none+flip", "flip+flip", ""};
  for (int i = 0; i < 6; i++) {
    const char *args[] = {"train", "tests/data/specs/tiny.lua", "--data", spec, "--augment", bad[i], NULL};
    assert_int_equal(tc_run_attnc(args, &r), 0);
    if (r.code != 2 || !strstr(r.err, "--augment")) fail_msg("--augment '%s': exit %d, %s", bad[i], r.code, r.err);
    tc_result_free(&r);
  }
  free(full), free(half), free(png);
  free(ck);
  remove_tree(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read),
      cmocka_unit_test(test_resize),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_tiny_imagenet),
      cmocka_unit_test(test_from_files),
      cmocka_unit_test(test_train_cli),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
