/* Fuzz target: the data set readers (IDX, CIFAR-10/100 and STL-10 binary,
 * image folders) on arbitrary files. The first byte picks the format, the
 * next two the length of the first file; the rest is the file (or the two
 * files). An image folder gets the rest as its one image (PNG or JPEG),
 * read at its own size or resized to 8x8, or kept as a file and read as
 * the loader reads it: centre view and a RandomResizedCrop to 8x8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "rt_data.h"

/* Writes 'n' bytes at 'p' to dir/name. */
static void put(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  fuzz_write_file(path, p, n);
}

/* Removes dir/name. */
static void drop(const char *dir, const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
}

/* Lays out one or two data files from 'data' and opens the set. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct {
    const char *set, *first, *second;
  } kinds[] = {
      {"fashion-mnist", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
      {"mnist", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
      {"cifar10", "test_batch.bin", NULL},
      {"cifar100", "test.bin", NULL},
      {"stl10", "test_X.bin", "test_y.bin"},
      {"folder", "test/c/x.jpg", NULL},
      {"folder", "test/c/x.jpg", NULL}, /* :8 */
      {"folder", "test/c/x.jpg", NULL}, /* :8, from the file */
  };
  if (size < 3) return 0;
  int k = data[0] % 8;
  size_t n1 = (size_t)data[1] | (size_t)data[2] << 8;
  data += 3;
  size -= 3;
  if (n1 > size || !kinds[k].second) n1 = size;
  char dir[64];
  fuzz_temp_path("", dir);
  mkdir(dir, 0700);
  static const char *const folders[] = {"train", "train/c", "test", "test/c"};
  for (int i = 0; k >= 5 && i < 4; i++) {
    char sub[128];
    snprintf(sub, sizeof sub, "%s/%s", dir, folders[i]);
    mkdir(sub, 0700);
  }
  put(dir, kinds[k].first, data, n1);
  if (kinds[k].second) put(dir, kinds[k].second, data + n1, size - n1);
  char spec[128];
  snprintf(spec, sizeof spec, "%s:%s%s", kinds[k].set, dir, k >= 6 ? ":8" : "");
  ir_diag *d = ir_diag_create();
  rt_dataset *ds = NULL;
  if (rt_dataset_open_as(spec, RT_SPLIT_TEST, k == 7, &ds, d) == ATTNC_OK) {
    if (k == 7) {
      uint8_t px[3 * 8 * 8];
      rt_random_crop crop = {0.08, size};
      if (!ds->paths || ds->pixels) {
        fprintf(stderr, "a set read from its files holds pixels\n");
        abort();
      }
      if ((rt_dataset_sample(ds, 0, NULL, px, d) == ATTNC_OK) != (rt_dataset_sample(ds, 0, &crop, px, d) == ATTNC_OK)) {
        fprintf(stderr, "the centre view and the crop disagree on whether the file reads\n");
        abort();
      }
    }
    for (int64_t i = 0; i < ds->count; i++)
      if (ds->labels[i] < 0 || ds->labels[i] >= ds->classes) {
        fprintf(stderr, "accepted label %lld of %d classes\n", (long long)ds->labels[i], ds->classes);
        abort();
      }
  } else if (ds) {
    fprintf(stderr, "failed open left a data set behind\n");
    abort();
  }
  rt_dataset_destroy(ds);
  ir_diag_destroy(d);
  drop(dir, kinds[k].first);
  if (kinds[k].second) drop(dir, kinds[k].second);
  for (int i = 3; k >= 5 && i >= 0; i--) {
    char sub[128];
    snprintf(sub, sizeof sub, "%s/%s", dir, folders[i]);
    rmdir(sub);
  }
  rmdir(dir);
  return 0;
}
