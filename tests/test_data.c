/* Tests of the data set readers: small IDX (plain and gzip'd), CIFAR-10,
 * CIFAR-100 and STL-10 files written here, the installed Fashion-MNIST, a
 * corrupt file of every kind (each a clear message naming the file, no
 * crash), random garbage, and the held-out split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "rt_data.h"
#include "util_cli.h"

/* Writes 'n' bytes to dir/name, gzip'd when 'gz' (then ".gz" is appended). */
static void write_bytes(const char *dir, const char *name, const void *data, size_t n, int gz) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
  if (!gz) {
    assert_int_equal(tc_write_file(path, data, n), 0);
    return;
  }
  gzFile f = gzopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
  assert_int_equal(gzclose(f), Z_OK);
}

/* Stores v big-endian at p. */
static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* The pixel of a small IDX test image: sample k, row y, column x. */
static unsigned char idx_pixel(int k, int y, int x) { return (unsigned char)(k * 40 + y * 7 + x * 3 + 1); }

/* Writes "<pre>-images-idx3-ubyte" and "<pre>-labels-idx1-ubyte" (gzip'd if
 * gz) with 'n' rows x cols images and the given labels. The header fields
 * are the given ones (so tests can lie); 'img_magic'/'lab_magic' likewise;
 * 'cut' bytes are dropped from the end of the image file. */
static void write_idx(const char *dir, const char *pre, uint32_t img_magic, uint32_t n, uint32_t rows, uint32_t cols,
                      int real_n, int real_rows, int real_cols, uint32_t lab_magic, uint32_t nl,
                      const unsigned char *labels, int real_nl, size_t cut, int gz) {
  size_t ilen = 16 + (size_t)real_n * real_rows * real_cols;
  unsigned char *im = malloc(ilen), *lb = malloc(8 + (size_t)real_nl);
  assert_non_null(im);
  assert_non_null(lb);
  put_be32(im, img_magic);
  put_be32(im + 4, n);
  put_be32(im + 8, rows);
  put_be32(im + 12, cols);
  for (int k = 0; k < real_n; k++)
    for (int y = 0; y < real_rows; y++)
      for (int x = 0; x < real_cols; x++) im[16 + (k * real_rows + y) * real_cols + x] = idx_pixel(k, y, x);
  put_be32(lb, lab_magic);
  put_be32(lb + 4, nl);
  memcpy(lb + 8, labels, (size_t)real_nl);
  char name[64];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", pre);
  write_bytes(dir, name, im, ilen - cut, gz);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", pre);
  write_bytes(dir, name, lb, 8 + (size_t)real_nl, gz);
  free(im);
  free(lb);
}

static const unsigned char idx_labels[5] = {3, 1, 4, 1, 9};

/* Writes a valid 5-image 3x4 IDX pair with prefix 'pre'. */
static void write_good_idx(const char *dir, const char *pre, int gz) {
  write_idx(dir, pre, 0x803, 5, 3, 4, 5, 3, 4, 0x801, 5, idx_labels, 5, 0, gz);
}

/* Opens "<kind>:<dir>" for 'split', expecting success. */
static rt_dataset *open_ok(const char *kind, const char *dir, rt_split split) {
  char spec[4200];
  snprintf(spec, sizeof spec, "%s:%s", kind, dir);
  ir_diag *d = ir_diag_create();
  rt_dataset *ds = NULL;
  attnc_status st = rt_dataset_open(spec, split, &ds, d);
  if (st != ATTNC_OK) print_error("%s\n", ir_diag_text(d));
  assert_int_equal(st, ATTNC_OK);
  assert_non_null(ds);
  ir_diag_destroy(d);
  return ds;
}

/* Opens "<kind>:<dir>" for 'split', expecting failure with a message that
 * contains 'want' and 'file' (when not NULL). */
static void open_fails(const char *kind, const char *dir, rt_split split, const char *file, const char *want) {
  char spec[4200];
  snprintf(spec, sizeof spec, "%s:%s", kind, dir);
  ir_diag *d = ir_diag_create();
  rt_dataset *ds = (rt_dataset *)&ds;
  attnc_status st = rt_dataset_open(spec, split, &ds, d);
  assert_int_not_equal(st, ATTNC_OK);
  assert_null(ds);
  const char *text = ir_diag_text(d);
  if (!strstr(text, want) || (file && !strstr(text, file)))
    print_error("message '%s' lacks '%s' or '%s'\n", text, want, file ? file : "");
  assert_non_null(strstr(text, want));
  if (file) assert_non_null(strstr(text, file));
  ir_diag_destroy(d);
}

/* Plain and gzip'd IDX files read back with their pixels and labels. */
static void test_idx_plain_and_gz(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  write_good_idx(dir, "train", 0);
  write_good_idx(dir, "t10k", 1);
  for (int s = 0; s < 2; s++) {
    rt_dataset *ds = open_ok("mnist", dir, s ? RT_SPLIT_TEST : RT_SPLIT_TRAIN);
    assert_string_equal(ds->name, "mnist");
    assert_int_equal(ds->count, 5);
    assert_int_equal(ds->channels, 1);
    assert_int_equal(ds->height, 3);
    assert_int_equal(ds->width, 4);
    assert_int_equal(ds->classes, 10);
    assert_float_equal(ds->mean[0], 0.1307, 1e-6);
    assert_float_equal(ds->std[0], 0.3081, 1e-6);
    for (int k = 0; k < 5; k++) {
      assert_int_equal(ds->labels[k], idx_labels[k]);
      for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++) assert_int_equal(ds->pixels[k * 12 + y * 4 + x], idx_pixel(k, y, x));
    }
    rt_dataset_destroy(ds);
  }
  tc_rmtree(dir);
  free(dir);
}

/* The Debian dataset-fashion-mnist files: 60000/10000 28x28 images, first labels. */
static void test_fashion_installed(void **state) {
  (void)state;
  if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) skip();
  ir_diag *d = ir_diag_create();
  rt_dataset *tr = NULL, *te = NULL;
  assert_int_equal(rt_dataset_open("fashion-mnist", RT_SPLIT_TRAIN, &tr, d), ATTNC_OK);
  assert_int_equal(rt_dataset_open("fashion-mnist:/usr/share/datasets/fashion-mnist", RT_SPLIT_TEST, &te, d), ATTNC_OK);
  assert_int_equal(tr->count, 60000);
  assert_int_equal(te->count, 10000);
  assert_int_equal(tr->height, 28);
  assert_int_equal(tr->width, 28);
  assert_int_equal(te->channels, 1);
  assert_string_equal(tr->name, "fashion-mnist");
  assert_float_equal(tr->mean[0], 0.2860, 1e-6);
  assert_float_equal(tr->std[0], 0.3530, 1e-6);
  assert_string_equal(te->class_names[0], "T-shirt/top");
  assert_string_equal(te->class_names[9], "Ankle boot");
  /* Expected values from Python's gzip module on the same files. */
  const int64_t first_train[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, first_test[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  for (int i = 0; i < 10; i++) {
    assert_int_equal(tr->labels[i], first_train[i]);
    assert_int_equal(te->labels[i], first_test[i]);
  }
  long sum = 0;
  for (int i = 0; i < 784; i++) sum += tr->pixels[i];
  assert_int_equal(sum, 76247);
  assert_int_equal(tr->pixels[784 + 14 * 28 + 14], 204);
  sum = 0;
  for (int i = 0; i < 784; i++) sum += te->pixels[i];
  assert_int_equal(sum, 33456);
  rt_dataset_destroy(tr);
  rt_dataset_destroy(te);
  ir_diag_destroy(d);
}

/* The pixel byte of a CIFAR/STL test image: sample k, channel c, row y, column x. */
static unsigned char rgb_pixel(int k, int c, int y, int x) {
  return (unsigned char)(k * 31 + c * 101 + y * 5 + x * 11);
}

/* Writes a CIFAR file of 'n' records (first sample number k0) with 'head'
 * label bytes per record taken from labels[2*i], labels[2*i+1]. */
static void write_cifar(const char *dir, const char *name, int n, int k0, int head, const unsigned char *labels) {
  size_t rec = (size_t)head + 3072;
  unsigned char *b = malloc(rec * (size_t)n + 1);
  assert_non_null(b);
  for (int i = 0; i < n; i++) {
    unsigned char *p = b + rec * (size_t)i;
    for (int h = 0; h < head; h++) p[h] = labels[2 * i + (head == 1 ? 1 : h)];
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) p[head + c * 1024 + y * 32 + x] = rgb_pixel(k0 + i, c, y, x);
  }
  write_bytes(dir, name, b, rec * (size_t)n, 0);
  free(b);
}

/* CIFAR-10 train = data_batch_1..5 in order; test = test_batch. */
static void test_cifar10(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  const int per[5] = {1, 2, 1, 1, 3};
  unsigned char labels[2 * 8];
  for (int i = 0; i < 8; i++) labels[2 * i] = 0, labels[2 * i + 1] = (unsigned char)((i * 3) % 10);
  int k = 0;
  for (int f = 0; f < 5; f++) {
    char name[32];
    snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
    write_cifar(dir, name, per[f], k, 1, labels + 2 * k);
    k += per[f];
  }
  write_cifar(dir, "test_batch.bin", 2, 50, 1, labels);
  rt_dataset *ds = open_ok("cifar10", dir, RT_SPLIT_TRAIN);
  assert_int_equal(ds->count, 8);
  assert_int_equal(ds->channels, 3);
  assert_int_equal(ds->height, 32);
  assert_int_equal(ds->classes, 10);
  assert_float_equal(ds->mean[2], 0.4465, 1e-6);
  assert_float_equal(ds->std[1], 0.2435, 1e-6);
  assert_string_equal(ds->class_names[0], "airplane");
  assert_string_equal(ds->class_names[9], "truck");
  for (int i = 0; i < 8; i++) {
    assert_int_equal(ds->labels[i], (i * 3) % 10);
    assert_int_equal(ds->pixels[i * 3072 + 2 * 1024 + 31 * 32 + 5], rgb_pixel(i, 2, 31, 5));
    assert_int_equal(ds->pixels[i * 3072 + 1 * 1024 + 7 * 32 + 30], rgb_pixel(i, 1, 7, 30));
  }
  rt_dataset_destroy(ds);
  ds = open_ok("cifar10", dir, RT_SPLIT_TEST);
  assert_int_equal(ds->count, 2);
  assert_int_equal(ds->labels[1], 3);
  assert_int_equal(ds->pixels[3072 + 17], rgb_pixel(51, 0, 0, 17));
  rt_dataset_destroy(ds);
  tc_rmtree(dir);
  free(dir);
}

/* CIFAR-100 uses the fine label (second byte) and has 100 classes. */
static void test_cifar100(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  const unsigned char labels[6] = {19, 99, 0, 42, 7, 0}; /* coarse, fine pairs */
  write_cifar(dir, "train.bin", 3, 0, 2, labels);
  write_cifar(dir, "test.bin", 1, 9, 2, labels + 2);
  rt_dataset *ds = open_ok("cifar100", dir, RT_SPLIT_TRAIN);
  assert_int_equal(ds->count, 3);
  assert_int_equal(ds->classes, 100);
  assert_int_equal(ds->labels[0], 99);
  assert_int_equal(ds->labels[1], 42);
  assert_int_equal(ds->labels[2], 0);
  assert_int_equal(ds->pixels[2 * 3072 + 1024 + 33], rgb_pixel(2, 1, 1, 1));
  assert_float_equal(ds->mean[0], 0.5071, 1e-6);
  assert_null(ds->class_names); /* no fine_label_names.txt */
  rt_dataset_destroy(ds);
  /* the names file of the distribution, one per line; a short one is ignored */
  char names[100 * 8] = "";
  for (int i = 0; i < 100; i++) snprintf(names + strlen(names), sizeof names - strlen(names), "c%d\n", i);
  write_bytes(dir, "fine_label_names.txt", names, strlen(names), 0);
  ds = open_ok("cifar100", dir, RT_SPLIT_TEST);
  assert_int_equal(ds->count, 1);
  assert_int_equal(ds->labels[0], 42);
  assert_string_equal(ds->class_names[42], "c42");
  assert_string_equal(ds->class_names[99], "c99");
  rt_dataset_destroy(ds);
  write_bytes(dir, "fine_label_names.txt", "apple\nfish\n", 11, 0);
  ds = open_ok("cifar100", dir, RT_SPLIT_TEST);
  assert_null(ds->class_names);
  rt_dataset_destroy(ds);
  tc_rmtree(dir);
  free(dir);
}

/* Writes STL-10 X (each channel column-major, as the format stores it) and y files. */
static void write_stl(const char *dir, const char *pre, int n, const unsigned char *labels, int nlabels) {
  size_t per = 3 * 96 * 96;
  unsigned char *x = malloc(per * (size_t)n);
  assert_non_null(x);
  for (int k = 0; k < n; k++)
    for (int c = 0; c < 3; c++)
      for (int col = 0; col < 96; col++)
        for (int row = 0; row < 96; row++)
          x[per * (size_t)k + (size_t)c * 9216 + (size_t)col * 96 + (size_t)row] = rgb_pixel(k, c, row, col);
  char name[32];
  snprintf(name, sizeof name, "%s_X.bin", pre);
  write_bytes(dir, name, x, per * (size_t)n, 0);
  snprintf(name, sizeof name, "%s_y.bin", pre);
  write_bytes(dir, name, labels, (size_t)nlabels, 0);
  free(x);
}

/* STL-10 images come out CHW row-major, labels 1..10 as 0..9. */
static void test_stl10(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  const unsigned char labels[2] = {10, 1};
  write_stl(dir, "train", 2, labels, 2);
  write_stl(dir, "test", 1, labels + 1, 1);
  rt_dataset *ds = open_ok("stl10", dir, RT_SPLIT_TRAIN);
  assert_int_equal(ds->count, 2);
  assert_int_equal(ds->height, 96);
  assert_int_equal(ds->width, 96);
  assert_int_equal(ds->labels[0], 9);
  assert_int_equal(ds->labels[1], 0);
  const int pts[][3] = {{0, 0, 1}, {0, 1, 0}, {2, 95, 3}, {1, 10, 80}, {2, 50, 51}};
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
      int c = pts[i][0], y = pts[i][1], x = pts[i][2];
      assert_int_equal(ds->pixels[(size_t)k * 27648 + (size_t)c * 9216 + (size_t)y * 96 + (size_t)x],
                       rgb_pixel(k, c, y, x));
    }
  assert_float_equal(ds->std[2], 0.2713, 1e-6);
  rt_dataset_destroy(ds);
  ds = open_ok("stl10", dir, RT_SPLIT_TEST);
  assert_int_equal(ds->count, 1);
  assert_int_equal(ds->labels[0], 0);
  rt_dataset_destroy(ds);
  tc_rmtree(dir);
  free(dir);
}

/* Every kind of broken IDX file is an error naming the file. */
static void test_idx_corrupt(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  char img[4200], lab[4200];
  snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", dir);
  snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", dir);
  unsigned char bad[5] = {3, 1, 4, 10, 9};
  /* missing files */
  open_fails("mnist", dir, RT_SPLIT_TRAIN, img, "not found");
  /* bad magic */
  write_idx(dir, "train", 0x802, 5, 3, 4, 5, 3, 4, 0x801, 5, idx_labels, 5, 0, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, img, "magic 0x00000802, expected 0x00000803");
  write_idx(dir, "train", 0x803, 5, 3, 4, 5, 3, 4, 0x803, 5, idx_labels, 5, 0, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, lab, "magic 0x00000803, expected 0x00000801");
  /* truncated pixels */
  write_idx(dir, "train", 0x803, 5, 3, 4, 5, 3, 4, 0x801, 5, idx_labels, 5, 1, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, img, "header says 5 images of 3 x 4 = 60 pixel bytes, file has 59");
  /* header shorter than 16 bytes */
  write_idx(dir, "train", 0x803, 5, 3, 4, 0, 3, 4, 0x801, 5, idx_labels, 5, 6, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, img, "10 bytes, shorter than its 16-byte header");
  /* wrong dims: zero rows; header 28x28 over 3x4 data */
  write_idx(dir, "train", 0x803, 5, 0, 4, 5, 3, 4, 0x801, 5, idx_labels, 5, 0, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, img, "bad IDX dimensions 5 x 0 x 4");
  write_idx(dir, "train", 0x803, 5, 28, 28, 5, 3, 4, 0x801, 5, idx_labels, 5, 0, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, img, "header says 5 images of 28 x 28 = 3920 pixel bytes, file has 60");
  /* a hostile count: 2^32-1 images claimed over 60 bytes (no huge allocation, no crash) */
  write_idx(dir, "train", 0x803, 0xffffffffu, 3, 4, 5, 3, 4, 0x801, 5, idx_labels, 5, 0, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, img, "header says 4294967295 images");
  /* count mismatch between images and labels; label count vs label bytes */
  write_idx(dir, "train", 0x803, 5, 3, 4, 5, 3, 4, 0x801, 4, idx_labels, 4, 0, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, lab, "4 labels but");
  write_idx(dir, "train", 0x803, 5, 3, 4, 5, 3, 4, 0x801, 5, idx_labels, 4, 0, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, lab, "header says 5 labels, file has 4 label bytes");
  /* label out of range */
  write_idx(dir, "train", 0x803, 5, 3, 4, 5, 3, 4, 0x801, 5, bad, 5, 0, 0);
  open_fails("mnist", dir, RT_SPLIT_TRAIN, lab, "label 10 of sample 3 is out of range 0..9");
  tc_rmtree(dir);
  free(dir);
}

/* A cut gzip stream and a gzip header over garbage are errors naming the file. */
static void test_gzip_corrupt(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  write_good_idx(dir, "t10k", 1);
  char gzpath[4200];
  snprintf(gzpath, sizeof gzpath, "%s/t10k-images-idx3-ubyte.gz", dir);
  size_t n = 0;
  char *whole = tc_read_file(gzpath, &n);
  assert_non_null(whole);
  assert_true(n > 30);
  rt_dataset *ds = open_ok("fashion-mnist", dir, RT_SPLIT_TEST);
  rt_dataset_destroy(ds);
  /* cut in the middle of the deflate data, then only the 8-byte trailer missing */
  assert_int_equal(tc_write_file(gzpath, whole, n / 2), 0);
  open_fails("fashion-mnist", dir, RT_SPLIT_TEST, gzpath, "truncated gzip data");
  assert_int_equal(tc_write_file(gzpath, whole, n - 8), 0);
  open_fails("fashion-mnist", dir, RT_SPLIT_TEST, gzpath, "truncated gzip data");
  /* a gzip header followed by garbage */
  unsigned char junk[64] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  for (int i = 10; i < 64; i++) junk[i] = (unsigned char)(i * 37 + 5);
  assert_int_equal(tc_write_file(gzpath, junk, sizeof junk), 0);
  open_fails("fashion-mnist", dir, RT_SPLIT_TEST, gzpath, "gzip data");
  free(whole);
  tc_rmtree(dir);
  free(dir);
}

/* Broken CIFAR and STL-10 files are errors naming the file. */
static void test_cifar_stl_corrupt(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  char path[4200];
  unsigned char labels[4] = {0, 3, 0, 10};
  open_fails("cifar10", dir, RT_SPLIT_TEST, "test_batch.bin", "cannot open");
  write_cifar(dir, "test_batch.bin", 2, 0, 1, labels);
  snprintf(path, sizeof path, "%s/test_batch.bin", dir);
  open_fails("cifar10", dir, RT_SPLIT_TEST, path, "label 10 of record 1 is out of range 0..9");
  size_t n = 0;
  char *whole = tc_read_file(path, &n);
  assert_int_equal(tc_write_file(path, whole, n - 1), 0);
  open_fails("cifar10", dir, RT_SPLIT_TEST, path, "size 6145 is not a positive multiple of the 3073-byte CIFAR-10");
  free(whole);
  assert_int_equal(tc_write_file(path, "", 0), 0);
  open_fails("cifar10", dir, RT_SPLIT_TEST, path, "size 0 is not a positive multiple");
  /* CIFAR-100: fine label 100, coarse 20 */
  unsigned char l100[2] = {1, 100}, c100[2] = {20, 5};
  write_cifar(dir, "test.bin", 1, 0, 2, l100);
  snprintf(path, sizeof path, "%s/test.bin", dir);
  open_fails("cifar100", dir, RT_SPLIT_TEST, path, "label 100 of record 0 is out of range 0..99");
  write_cifar(dir, "test.bin", 1, 0, 2, c100);
  open_fails("cifar100", dir, RT_SPLIT_TEST, path, "coarse label 20 of record 0");
  /* STL-10: label count mismatch, label 0, X size */
  unsigned char sl[3] = {1, 0, 2};
  write_stl(dir, "test", 2, sl, 3);
  snprintf(path, sizeof path, "%s/test_y.bin", dir);
  open_fails("stl10", dir, RT_SPLIT_TEST, path, "3 labels but");
  write_stl(dir, "test", 2, sl, 2);
  open_fails("stl10", dir, RT_SPLIT_TEST, path, "label 0 of sample 1 is out of range 1..10");
  snprintf(path, sizeof path, "%s/test_X.bin", dir);
  assert_int_equal(tc_write_file(path, "abc", 3), 0);
  open_fails("stl10", dir, RT_SPLIT_TEST, path, "size 3 is not a positive multiple of 27648");
  tc_rmtree(dir);
  free(dir);
}

/* Unknown names and a missing directory are rejected before any file is read. */
static void test_bad_spec(void **state) {
  (void)state;
  open_fails("imagenet", "/tmp", RT_SPLIT_TRAIN, NULL, "unknown name");
  ir_diag *d = ir_diag_create();
  rt_dataset *ds = NULL;
  assert_int_equal(rt_dataset_open("mnist", RT_SPLIT_TRAIN, &ds, d), ATTNC_EINVAL);
  assert_non_null(strstr(ir_diag_text(d), "mnist:DIR"));
  assert_null(ds);
  ir_diag_destroy(d);
}

/* Random bytes in every file of every format: always an error, never a crash. */
static void test_garbage_never_crashes(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  const char *files[] = {
      "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "train.bin",        "data_batch_1.bin", "data_batch_2.bin",
      "data_batch_3.bin",        "data_batch_4.bin",        "data_batch_5.bin", "train_X.bin",      "train_y.bin"};
  const char *kinds[] = {"mnist", "cifar10", "cifar100", "stl10"};
  uint64_t s = 12345;
  unsigned char buf[300];
  for (int round = 0; round < 20; round++) {
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      size_t n = (size_t)(s >> 33) % sizeof buf;
      for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (unsigned char)(s >> 56);
      }
      if (round % 2 && n >= 4) buf[0] = 0, buf[1] = 0, buf[2] = 8, buf[3] = f == 1 ? 1 : 3; /* plausible IDX magic */
      write_bytes(dir, files[f], buf, n, round % 3 == 0);
      if (round % 3 == 0) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, files[f]);
        unlink(p);
      }
    }
    for (size_t k = 0; k < 4; k++) {
      char spec[4200];
      snprintf(spec, sizeof spec, "%s:%s", kinds[k], dir);
      ir_diag *d = ir_diag_create();
      rt_dataset *ds = NULL;
      assert_int_not_equal(rt_dataset_open(spec, RT_SPLIT_TRAIN, &ds, d), ATTNC_OK);
      assert_true(ir_diag_count(d) > 0);
      ir_diag_destroy(d);
    }
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
      char p[4200];
      snprintf(p, sizeof p, "%s/%s.gz", dir, files[f]);
      unlink(p);
    }
  }
  tc_rmtree(dir);
  free(dir);
}

/* A data set of 'n' 1x2x2 samples whose pixels all equal the sample index
 * and whose label is (index * 7 + 3) % 10. */
static rt_dataset *make_indexed(int64_t n) {
  rt_dataset *ds = calloc(1, sizeof *ds);
  assert_non_null(ds);
  strcpy(ds->name, "mnist");
  ds->count = n;
  ds->channels = 1;
  ds->height = ds->width = 2;
  ds->classes = 10;
  ds->pixels = malloc((size_t)n * 4);
  ds->labels = malloc((size_t)n * sizeof(int64_t));
  for (int64_t i = 0; i < n; i++) {
    memset(ds->pixels + i * 4, (int)i, 4);
    ds->labels[i] = (i * 7 + 3) % 10;
  }
  return ds;
}

/* Runs a holdout of 'n' of 200 with 'seed'; fills which[i] = 1 if sample i went to held. */
static void holdout_200(int64_t n, uint64_t seed, unsigned char which[200]) {
  rt_dataset *tr = make_indexed(200), *held = NULL;
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_dataset_holdout(tr, n, seed, &held, d), ATTNC_OK);
  assert_int_equal(held->count, n);
  assert_int_equal(tr->count, 200 - n);
  assert_int_equal(held->height, 2);
  assert_int_equal(held->classes, 10);
  memset(which, 0, 200);
  int last = -1;
  for (int64_t i = 0; i < held->count; i++) {
    int k = held->pixels[i * 4 + 3];
    assert_true(k > last); /* original order kept */
    last = k;
    assert_int_equal(held->labels[i], (k * 7 + 3) % 10);
    which[k] = 1;
  }
  last = -1;
  for (int64_t i = 0; i < tr->count; i++) {
    int k = tr->pixels[i * 4];
    assert_true(k > last);
    last = k;
    assert_int_equal(tr->pixels[i * 4 + 3], k);
    assert_int_equal(tr->labels[i], (k * 7 + 3) % 10);
    assert_int_equal(which[k], 0); /* disjoint */
    which[k] = 2;
  }
  for (int k = 0; k < 200; k++) assert_int_not_equal(which[k], 0); /* together: everything */
  rt_dataset_destroy(tr);
  rt_dataset_destroy(held);
  ir_diag_destroy(d);
}

/* Holdout sizes, disjointness, determinism and dependence on the seed. */
static void test_holdout(void **state) {
  (void)state;
  unsigned char a[200], b[200], c[200];
  holdout_200(37, 5, a);
  holdout_200(37, 5, b);
  holdout_200(37, 6, c);
  assert_memory_equal(a, b, 200);
  assert_memory_not_equal(a, c, 200);
  int low = 0;
  for (int k = 0; k < 100; k++) low += a[k] == 1;
  assert_true(low > 5 && low < 32); /* not simply the first or last 37 */
  holdout_200(0, 1, a);
  holdout_200(200, 1, a);
  rt_dataset *tr = make_indexed(10), *held = (rt_dataset *)&tr;
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_dataset_holdout(tr, 11, 1, &held, d), ATTNC_EINVAL);
  assert_null(held);
  assert_int_equal(rt_dataset_holdout(tr, -1, 1, &held, d), ATTNC_EINVAL);
  assert_int_equal(tr->count, 10);
  assert_non_null(strstr(ir_diag_text(d), "holdout of 11 samples"));
  rt_dataset_destroy(tr);
  ir_diag_destroy(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idx_plain_and_gz),
      cmocka_unit_test(test_fashion_installed),
      cmocka_unit_test(test_cifar10),
      cmocka_unit_test(test_cifar100),
      cmocka_unit_test(test_stl10),
      cmocka_unit_test(test_idx_corrupt),
      cmocka_unit_test(test_gzip_corrupt),
      cmocka_unit_test(test_cifar_stl_corrupt),
      cmocka_unit_test(test_bad_spec),
      cmocka_unit_test(test_garbage_never_crashes),
      cmocka_unit_test(test_holdout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
