/* Data set readers: IDX (MNIST, Fashion-MNIST; plain or gzip'd), CIFAR-10 and
 * CIFAR-100 binary, STL-10 binary (image folders: rt_data_folder.c); the
 * held-out split. Every file is read
 * whole through zlib (which passes plain files through), then its header and
 * size are checked before any sample is copied. */
#include "rt_data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "rt_data_folder.h"
#include "rt_image.h"
#include "rt_init.h"

#define DATA_MAX_FILE ((size_t)1 << 30) /* refuse (decompressed) files larger than 1 GiB */
#define DATA_MAX_SIDE 4096              /* largest image side accepted from an IDX header */
#define FASHION_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

/* A whole file in memory. */
typedef struct {
  unsigned char *data;
  size_t len;
} data_blob;

/* What each data set is: name, geometry of its binary formats, classes and
 * normalization constants. */
typedef struct {
  const char *name;
  int classes;
  float mean[3], std[3];
} data_kind;

static const data_kind data_kinds[] = {
    {"fashion-mnist", 10, {0.2860f}, {0.3530f}},
    {"mnist", 10, {0.1307f}, {0.3081f}},
    {"cifar10", 10, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}},
    {"cifar100", 100, {0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}},
    {"stl10", 10, {0.4467f, 0.4398f, 0.4066f}, {0.2603f, 0.2566f, 0.2713f}},
    {"folder", 0, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}, /* ImageNet's; classes from the folders */
};

/* Returns malloc'd "dir/name" (NULL when out of memory). */
static char *data_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* Reads the whole (decompressed, if gzip'd) content of 'path' into *b.
 * The buffer grows with the data actually read, so a lying header or a
 * compression bomb costs at most DATA_MAX_FILE. */
static attnc_status data_read_file(const char *path, data_blob *b, ir_diag *d) {
  b->data = NULL;
  b->len = 0;
  gzFile f = gzopen(path, "rb");
  if (!f) {
    ir_diag_error(d, path, 0, "cannot open: %s", errno ? strerror(errno) : "out of memory");
    return ATTNC_EIO;
  }
  gzbuffer(f, 1 << 17);
  size_t cap = 0;
  attnc_status st = ATTNC_OK;
  for (;;) {
    if (b->len == cap) {
      if (cap >= DATA_MAX_FILE) {
        ir_diag_error(d, path, 0, "larger than %zu bytes (decompressed): not a data set file", DATA_MAX_FILE);
        st = ATTNC_EPARSE;
        break;
      }
      size_t ncap = cap ? cap * 2 : (size_t)1 << 16;
      if (ncap > DATA_MAX_FILE) ncap = DATA_MAX_FILE;
      unsigned char *nd = realloc(b->data, ncap);
      if (!nd) {
        ir_diag_error(d, path, 0, "out of memory reading %zu bytes", ncap);
        st = ATTNC_ENOMEM;
        break;
      }
      b->data = nd;
      cap = ncap;
    }
    size_t want = cap - b->len;
    if (want > (size_t)1 << 30) want = (size_t)1 << 30;
    int got = gzread(f, b->data + b->len, (unsigned)want);
    if (got < 0) break;
    if (got == 0) break;
    b->len += (size_t)got;
  }
  if (st == ATTNC_OK) {
    int err = Z_OK;
    const char *msg = gzerror(f, &err);
    if (err == Z_BUF_ERROR) {
      ir_diag_error(d, path, 0, "truncated gzip data (unexpected end of file after %zu bytes)", b->len);
      st = ATTNC_EPARSE;
    } else if (err == Z_ERRNO) {
      ir_diag_error(d, path, 0, "read error: %s", strerror(errno));
      st = ATTNC_EIO;
    } else if (err != Z_OK && err != Z_STREAM_END) {
      ir_diag_error(d, path, 0, "corrupt gzip data (zlib: %s)", msg ? msg : "?");
      st = ATTNC_EPARSE;
    }
  }
  gzclose(f);
  if (st != ATTNC_OK) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
  }
  return st;
}

/* Reads "dir/base" or, when that does not exist, "dir/base.gz". *used gets
 * the malloc'd path actually read (for messages). */
static attnc_status data_read_maybe_gz(const char *dir, const char *base, data_blob *b, char **used, ir_diag *d) {
  char *plain = data_path(dir, base);
  size_t n = strlen(base) + 4;
  char *gzname = malloc(n);
  char *gz = NULL;
  if (gzname) {
    snprintf(gzname, n, "%s.gz", base);
    gz = data_path(dir, gzname);
  }
  free(gzname);
  *used = NULL;
  if (!plain || !gz) {
    free(plain);
    free(gz);
    ir_diag_error(d, NULL, 0, "out of memory");
    return ATTNC_ENOMEM;
  }
  FILE *probe = fopen(plain, "rb");
  if (probe) {
    fclose(probe);
    free(gz);
    *used = plain;
  } else if ((probe = fopen(gz, "rb"))) {
    fclose(probe);
    free(plain);
    *used = gz;
  } else {
    ir_diag_error(d, plain, 0, "not found (nor %s.gz): %s", base, strerror(errno));
    free(plain);
    free(gz);
    return ATTNC_EIO;
  }
  return data_read_file(*used, b, d);
}

/* Big-endian 32-bit integer at p. */
static uint32_t data_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reports an IDX file whose header is too short or whose magic is not 'magic'. */
static void data_bad_magic(ir_diag *d, const char *path, const char *what, uint32_t magic, const data_blob *b,
                           size_t header) {
  if (b->len < header)
    ir_diag_error(d, path, 0, "not an IDX %s file: %zu bytes, shorter than its %zu-byte header", what, b->len, header);
  else
    ir_diag_error(d, path, 0, "not an IDX %s file: magic 0x%08x, expected 0x%08x (unsigned bytes, %u dims)", what,
                  data_be32(b->data), magic, magic & 0xffu);
}

/* Allocates the arrays of 'ds' for 'count' samples of the set geometry. */
static attnc_status data_alloc(rt_dataset *ds, int64_t count, ir_diag *d) {
  size_t per = (size_t)(ds->channels * ds->height * ds->width);
  ds->count = count;
  ds->pixels = malloc(count ? (size_t)count * per : 1);
  ds->labels = malloc(count ? (size_t)count * sizeof(int64_t) : 1);
  if (!ds->pixels || !ds->labels) {
    ir_diag_error(d, NULL, 0, "%s: out of memory for %lld samples", ds->name, (long long)count);
    return ATTNC_ENOMEM;
  }
  return ATTNC_OK;
}

/* Reads an IDX image file and its label file ("train" or "t10k" prefix). */
static attnc_status data_read_idx(rt_dataset *ds, const char *dir, rt_split split, ir_diag *d) {
  const char *pre = split == RT_SPLIT_TRAIN ? "train" : "t10k";
  char iname[64], lname[64];
  snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", pre);
  snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", pre);
  data_blob im = {0}, lb = {0};
  char *ipath = NULL, *lpath = NULL;
  attnc_status st = data_read_maybe_gz(dir, iname, &im, &ipath, d);
  if (st == ATTNC_OK) st = data_read_maybe_gz(dir, lname, &lb, &lpath, d);
  uint32_t n = 0, rows = 0, cols = 0, nl = 0;
  if (st == ATTNC_OK) {
    if (im.len < 16 || data_be32(im.data) != 0x00000803u) {
      data_bad_magic(d, ipath, "image", 0x803, &im, 16);
      st = ATTNC_EPARSE;
    } else {
      n = data_be32(im.data + 4);
      rows = data_be32(im.data + 8);
      cols = data_be32(im.data + 12);
      if (rows < 1 || cols < 1 || rows > DATA_MAX_SIDE || cols > DATA_MAX_SIDE || n < 1) {
        ir_diag_error(d, ipath, 0, "bad IDX dimensions %u x %u x %u (count x rows x cols; each 1..%d)", n, rows, cols,
                      DATA_MAX_SIDE);
        st = ATTNC_EPARSE;
      } else if ((uint64_t)(im.len - 16) != (uint64_t)n * rows * cols) {
        ir_diag_error(d, ipath, 0, "header says %u images of %u x %u = %llu pixel bytes, file has %zu", n, rows, cols,
                      (unsigned long long)n * rows * cols, im.len - 16);
        st = ATTNC_EPARSE;
      }
    }
  }
  if (st == ATTNC_OK) {
    if (lb.len < 8 || data_be32(lb.data) != 0x00000801u) {
      data_bad_magic(d, lpath, "label", 0x801, &lb, 8);
      st = ATTNC_EPARSE;
    } else if ((nl = data_be32(lb.data + 4)) != n) {
      ir_diag_error(d, lpath, 0, "%u labels but %s has %u images", nl, ipath, n);
      st = ATTNC_EPARSE;
    } else if (lb.len - 8 != (size_t)nl) {
      ir_diag_error(d, lpath, 0, "header says %u labels, file has %zu label bytes", nl, lb.len - 8);
      st = ATTNC_EPARSE;
    }
  }
  if (st == ATTNC_OK) {
    ds->channels = 1;
    ds->height = rows;
    ds->width = cols;
    st = data_alloc(ds, n, d);
  }
  for (uint32_t i = 0; st == ATTNC_OK && i < n; i++) {
    if (lb.data[8 + i] >= ds->classes) {
      ir_diag_error(d, lpath, 0, "label %u of sample %u is out of range 0..%d", lb.data[8 + i], i, ds->classes - 1);
      st = ATTNC_EPARSE;
    }
    ds->labels[i] = lb.data[8 + i];
  }
  if (st == ATTNC_OK) memcpy(ds->pixels, im.data + 16, (size_t)n * rows * cols);
  free(im.data);
  free(lb.data);
  free(ipath);
  free(lpath);
  return st;
}

/* Reads CIFAR-10 (label byte + 3072) or CIFAR-100 (coarse, fine + 3072)
 * record files: data_batch_1..5.bin / test_batch.bin or train.bin / test.bin. */
static attnc_status data_read_cifar(rt_dataset *ds, const char *dir, rt_split split, ir_diag *d) {
  int c100 = ds->classes == 100;
  const char *names10[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                           "data_batch_5.bin"};
  const char *test10[] = {"test_batch.bin"}, *train100[] = {"train.bin"}, *test100[] = {"test.bin"};
  const char **names =
      c100 ? (split == RT_SPLIT_TRAIN ? train100 : test100) : (split == RT_SPLIT_TRAIN ? names10 : test10);
  int nfiles = !c100 && split == RT_SPLIT_TRAIN ? 5 : 1;
  size_t head = c100 ? 2 : 1, rec = head + 3072;
  ds->channels = 3;
  ds->height = ds->width = 32;
  data_blob blobs[5] = {{0}};
  char *paths[5] = {0};
  attnc_status st = ATTNC_OK;
  size_t total = 0;
  for (int f = 0; f < nfiles && st == ATTNC_OK; f++) {
    paths[f] = data_path(dir, names[f]);
    if (!paths[f]) {
      ir_diag_error(d, NULL, 0, "out of memory");
      st = ATTNC_ENOMEM;
      break;
    }
    st = data_read_file(paths[f], &blobs[f], d);
    if (st == ATTNC_OK && (blobs[f].len == 0 || blobs[f].len % rec != 0)) {
      ir_diag_error(d, paths[f], 0, "size %zu is not a positive multiple of the %zu-byte %s record", blobs[f].len, rec,
                    c100 ? "CIFAR-100" : "CIFAR-10");
      st = ATTNC_EPARSE;
    }
    total += blobs[f].len / rec;
  }
  if (st == ATTNC_OK) st = data_alloc(ds, (int64_t)total, d);
  size_t k = 0;
  for (int f = 0; f < nfiles && st == ATTNC_OK; f++) {
    for (size_t r = 0; r < blobs[f].len / rec && st == ATTNC_OK; r++, k++) {
      const unsigned char *p = blobs[f].data + r * rec;
      unsigned label = p[head - 1];
      if (c100 && p[0] >= 20) {
        ir_diag_error(d, paths[f], 0, "coarse label %u of record %zu is out of range 0..19", p[0], r);
        st = ATTNC_EPARSE;
      } else if (label >= (unsigned)ds->classes) {
        ir_diag_error(d, paths[f], 0, "label %u of record %zu is out of range 0..%d", label, r, ds->classes - 1);
        st = ATTNC_EPARSE;
      }
      ds->labels[k] = label;
      memcpy(ds->pixels + k * 3072, p + head, 3072);
    }
  }
  for (int f = 0; f < nfiles; f++) {
    free(blobs[f].data);
    free(paths[f]);
  }
  return st;
}

/* Reads STL-10 {train,test}_X.bin (3x96x96 per image, each channel stored
 * column-major: transposed here to CHW row-major) and _y.bin (labels 1..10). */
static attnc_status data_read_stl(rt_dataset *ds, const char *dir, rt_split split, ir_diag *d) {
  const int side = 96;
  const size_t per = 3 * 96 * 96;
  ds->channels = 3;
  ds->height = ds->width = side;
  char *xpath = data_path(dir, split == RT_SPLIT_TRAIN ? "train_X.bin" : "test_X.bin");
  char *ypath = data_path(dir, split == RT_SPLIT_TRAIN ? "train_y.bin" : "test_y.bin");
  data_blob x = {0}, y = {0};
  attnc_status st = xpath && ypath ? ATTNC_OK : ATTNC_ENOMEM;
  if (st != ATTNC_OK) ir_diag_error(d, NULL, 0, "out of memory");
  if (st == ATTNC_OK) st = data_read_file(xpath, &x, d);
  if (st == ATTNC_OK) st = data_read_file(ypath, &y, d);
  if (st == ATTNC_OK && (x.len == 0 || x.len % per != 0)) {
    ir_diag_error(d, xpath, 0, "size %zu is not a positive multiple of %zu (3 x 96 x 96 bytes per image)", x.len, per);
    st = ATTNC_EPARSE;
  }
  if (st == ATTNC_OK && y.len != x.len / per) {
    ir_diag_error(d, ypath, 0, "%zu labels but %s has %zu images", y.len, xpath, x.len / per);
    st = ATTNC_EPARSE;
  }
  if (st == ATTNC_OK) st = data_alloc(ds, (int64_t)y.len, d);
  for (size_t i = 0; st == ATTNC_OK && i < y.len; i++) {
    if (y.data[i] < 1 || y.data[i] > 10) {
      ir_diag_error(d, ypath, 0, "label %u of sample %zu is out of range 1..10", y.data[i], i);
      st = ATTNC_EPARSE;
      break;
    }
    ds->labels[i] = y.data[i] - 1;
    const unsigned char *src = x.data + i * per;
    unsigned char *dst = ds->pixels + i * per;
    for (int c = 0; c < 3; c++)
      for (int col = 0; col < side; col++)
        for (int row = 0; row < side; row++) dst[(c * side + row) * side + col] = src[(c * side + col) * side + row];
  }
  free(x.data);
  free(y.data);
  free(xpath);
  free(ypath);
  return st;
}

/* The usual class names of the data sets that ship without a names file. */
static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static const char *const cifar10_names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};

/* Gives 'ds' the class names 'names' (copied); best effort, as names only
 * label output. */
static void data_set_names(rt_dataset *ds, const char *const *names) {
  ds->class_names = calloc((size_t)ds->classes, sizeof *ds->class_names);
  for (int i = 0; ds->class_names && i < ds->classes; i++) ds->class_names[i] = strdup(names[i]);
}

/* Names the classes of 'ds' from the text file dir/name (one per line, as
 * CIFAR-100's fine_label_names.txt and STL-10's class_names.txt), when it
 * exists and has one line per class. */
static void data_names_from_file(rt_dataset *ds, const char *dir, const char *name) {
  char *path = data_path(dir, name);
  FILE *f = path ? fopen(path, "r") : NULL;
  free(path);
  if (!f) return;
  char **names = calloc((size_t)ds->classes, sizeof *names), line[256];
  int n = 0;
  while (names && n <= ds->classes && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    if (n < ds->classes) names[n] = strdup(line);
    n++;
  }
  fclose(f);
  if (names && n == ds->classes) data_set_names(ds, (const char *const *)names);
  for (int i = 0; names && i < ds->classes; i++) free(names[i]);
  free(names);
}

/* Reads the data set named by 'spec'. */
attnc_status rt_dataset_open(const char *spec, rt_split split, rt_dataset **out, ir_diag *d) {
  return rt_dataset_open_as(spec, split, 0, out, d);
}

/* Reads the data set named by 'spec', a folder set from its files if asked. */
attnc_status rt_dataset_open_as(const char *spec, rt_split split, int from_files, rt_dataset **out, ir_diag *d) {
  *out = NULL;
  const char *colon = strchr(spec, ':');
  size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
  const data_kind *kind = NULL;
  for (size_t i = 0; i < sizeof data_kinds / sizeof data_kinds[0]; i++)
    if (strlen(data_kinds[i].name) == nlen && !strncmp(spec, data_kinds[i].name, nlen)) kind = &data_kinds[i];
  if (!kind) {
    ir_diag_error(d, NULL, 0,
                  "data set '%s': unknown name (expected fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR, "
                  "stl10:DIR or folder:DIR[:SIZE[:RESIZE]])",
                  spec);
    return ATTNC_EINVAL;
  }
  const char *dir = colon ? colon + 1 : NULL;
  if (!dir && !strcmp(kind->name, "fashion-mnist")) dir = FASHION_DEFAULT_DIR;
  if (!dir || !*dir) {
    ir_diag_error(d, NULL, 0, "data set '%s': give the directory of its files as %s:DIR", spec, kind->name);
    return ATTNC_EINVAL;
  }
  rt_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) {
    ir_diag_error(d, NULL, 0, "out of memory");
    return ATTNC_ENOMEM;
  }
  snprintf(ds->name, sizeof ds->name, "%s", kind->name);
  ds->classes = kind->classes;
  memcpy(ds->mean, kind->mean, sizeof ds->mean);
  memcpy(ds->std, kind->std, sizeof ds->std);
  attnc_status st;
  if (kind->classes == 100 || !strcmp(kind->name, "cifar10"))
    st = data_read_cifar(ds, dir, split, d);
  else if (!strcmp(kind->name, "stl10"))
    st = data_read_stl(ds, dir, split, d);
  else if (!strcmp(kind->name, "folder"))
    st = rt_data_read_folder(ds, dir, split, from_files, d);
  else
    st = data_read_idx(ds, dir, split, d);
  if (st != ATTNC_OK) {
    rt_dataset_destroy(ds);
    return st;
  }
  if (!strcmp(kind->name, "fashion-mnist")) data_set_names(ds, fashion_names);
  else if (!strcmp(kind->name, "cifar10")) data_set_names(ds, cifar10_names);
  else if (!strcmp(kind->name, "cifar100")) data_names_from_file(ds, dir, "fine_label_names.txt");
  else if (!strcmp(kind->name, "stl10")) data_names_from_file(ds, dir, "class_names.txt");
  *out = ds;
  return ATTNC_OK;
}

/* Writes sample k, the stored view or a random resized crop. */
attnc_status rt_dataset_sample(const rt_dataset *ds, int64_t k, const rt_random_crop *crop, uint8_t *dst,
                               ir_diag *d) {
  int64_t C = ds->channels, H = ds->height, W = ds->width;
  size_t per = (size_t)(C * H * W);
  if (!crop) {
    if (ds->paths) return rt_data_folder_view(ds, k, dst, d);
    memcpy(dst, ds->pixels + (size_t)k * per, per);
    return ATTNC_OK;
  }
  uint8_t *rgb = NULL;
  rt_image src;
  if (ds->paths) {
    int64_t w, h;
    attnc_status st = rt_data_decode_image(ds->paths[k], &w, &h, &rgb, d);
    if (st != ATTNC_OK) return st;
    src = rt_image_hwc(rgb, C, w, h);
  } else {
    src = rt_image_chw(ds->pixels + (size_t)k * per, C, W, H);
  }
  rt_box b = rt_image_random_box(src.width, src.height, crop->min_scale, crop->seed);
  int bad = rt_image_resize(&src, b, W, H, 0, 0, W, H, dst);
  free(rgb);
  if (bad) {
    ir_diag_error(d, ds->paths ? ds->paths[k] : NULL, 0, "out of memory resizing sample %lld", (long long)k);
    return ATTNC_ENOMEM;
  }
  return ATTNC_OK;
}

/* Pixel 'v' of channel 'c' as the network's input. */
float rt_dataset_normalized(const rt_dataset *ds, int64_t c, uint8_t v) {
  return (float)(((double)v / 255.0 - ds->mean[c]) / ds->std[c]);
}

/* Frees 'ds'. */
void rt_dataset_destroy(rt_dataset *ds) {
  if (!ds) return;
  for (int i = 0; ds->class_names && i < ds->classes; i++) free(ds->class_names[i]);
  free(ds->class_names);
  for (int64_t i = 0; ds->paths && i < ds->count; i++) free(ds->paths[i]);
  free(ds->paths);
  free(ds->pixels);
  free(ds->labels);
  free(ds);
}

/* Moves a seeded random choice of 'n' samples of 'train' into *held. */
attnc_status rt_dataset_holdout(rt_dataset *train, int64_t n, uint64_t seed, rt_dataset **held, ir_diag *d) {
  *held = NULL;
  if (n < 0 || n > train->count) {
    ir_diag_error(d, NULL, 0, "holdout of %lld samples: the training set has %lld", (long long)n,
                  (long long)train->count);
    return ATTNC_EINVAL;
  }
  rt_dataset *h = calloc(1, sizeof *h);
  int64_t count = train->count;
  int64_t *idx = malloc((size_t)(count ? count : 1) * sizeof *idx);
  unsigned char *chosen = calloc((size_t)(count ? count : 1), 1);
  attnc_status st = h && idx && chosen ? ATTNC_OK : ATTNC_ENOMEM;
  if (st == ATTNC_OK) {
    *h = *train;
    h->pixels = NULL;
    h->labels = NULL;
    h->class_names = NULL;
    h->paths = NULL;
    if (!train->paths) {
      st = data_alloc(h, n, d);
    } else {
      h->count = n;
      h->labels = malloc((size_t)(n ? n : 1) * sizeof *h->labels);
      h->paths = calloc((size_t)(n ? n : 1), sizeof *h->paths);
      if (!h->labels || !h->paths) {
        ir_diag_error(d, NULL, 0, "out of memory");
        st = ATTNC_ENOMEM;
      }
    }
  } else {
    ir_diag_error(d, NULL, 0, "out of memory");
  }
  if (st != ATTNC_OK) {
    free(idx);
    free(chosen);
    rt_dataset_destroy(h);
    return st;
  }
  /* Partial Fisher-Yates: the first n entries of idx are the held-out choice. */
  rt_rng r;
  rt_rng_seed(&r, seed ^ 0x686f6c646f7574ull);
  for (int64_t i = 0; i < count; i++) idx[i] = i;
  for (int64_t i = 0; i < n; i++) {
    int64_t j = i + (int64_t)(rt_rng_next(&r) % (uint64_t)(count - i));
    int64_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
    chosen[idx[i]] = 1;
  }
  size_t per = (size_t)(train->channels * train->height * train->width);
  int64_t kh = 0, kt = 0;
  for (int64_t i = 0; i < count; i++) {
    if (chosen[i]) {
      if (train->paths) h->paths[kh] = train->paths[i];
      else memcpy(h->pixels + (size_t)kh * per, train->pixels + (size_t)i * per, per);
      h->labels[kh++] = train->labels[i];
    } else {
      if (train->paths) train->paths[kt] = train->paths[i];
      else if (kt != i) memmove(train->pixels + (size_t)kt * per, train->pixels + (size_t)i * per, per);
      train->labels[kt++] = train->labels[i];
    }
  }
  train->count = kt;
  free(idx);
  free(chosen);
  *held = h;
  return ATTNC_OK;
}
