/* Image-folder data sets: one folder per class of PNG (libpng) and JPEG
 * (libjpeg) files, decoded in parallel, resized (area averaging when
 * shrinking, bilinear when enlarging) and centre-cropped to one square
 * size, as ImageNet subsets are prepared. */
#include "rt_data_folder.h"

#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jpeglib.h> /* after stdio.h, which it needs */

#define FOLDER_MAX_PIXELS ((int64_t)1 << 26) /* refuse images over 64 Mpixels (decompression bombs) */
#define FOLDER_MAX_SIZE 4096                 /* largest :SIZE */
#define FOLDER_MAX_CLASSES 100000

/* One image file and its class. */
typedef struct {
  char *path;
  int64_t label;
} folder_file;

/* A decoded image: 8-bit RGB, rows top to bottom. */
typedef struct {
  int w, h;
  unsigned char *rgb;
} folder_image;

/* Returns malloc'd "a/b". */
static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", a, b);
  return p;
}

/* Returns a malloc'd message made from a printf format. */
static char *message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *message(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return strdup(buf);
}

/* 1 if 'path' is a directory. */
static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Byte order of entry names, independent of the locale. */
static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

/* Lists the names in 'dir' (no hidden ones) in byte order into a malloc'd
 * array *names of *n malloc'd strings; -1 if it cannot be read. */
static int list_dir(const char *dir, char ***names, int *n) {
  struct dirent **ents = NULL;
  int m = scandir(dir, &ents, NULL, by_name);
  *names = NULL;
  *n = 0;
  if (m < 0) return -1;
  char **out = malloc((size_t)(m ? m : 1) * sizeof *out);
  for (int i = 0; i < m; i++) {
    if (out && ents[i]->d_name[0] != '.') out[(*n)++] = strdup(ents[i]->d_name);
    free(ents[i]);
  }
  free(ents);
  *names = out;
  return out ? 0 : -1;
}

static void free_names(char **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* 1 if 'name' ends in .png, .jpg or .jpeg (any case). */
static int is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* ---- decoding ---- */

/* Reads a PNG file into *im; NULL or a malloc'd error message. */
static char *decode_png(const char *path, folder_image *im) {
  png_image p;
  memset(&p, 0, sizeof p);
  p.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&p, path)) return message("not a readable PNG file (%s)", p.message);
  if ((int64_t)p.width * p.height > FOLDER_MAX_PIXELS) {
    png_image_free(&p);
    return message("image of %ux%u pixels is too large", p.width, p.height);
  }
  p.format = PNG_FORMAT_RGB;
  im->w = (int)p.width, im->h = (int)p.height;
  im->rgb = malloc(PNG_IMAGE_SIZE(p));
  if (!im->rgb) {
    png_image_free(&p);
    return message("out of memory for an image of %dx%d pixels", im->w, im->h);
  }
  png_color white = {255, 255, 255}; /* transparent pixels are drawn on white */
  if (!png_image_finish_read(&p, &white, im->rgb, 0, NULL)) {
    free(im->rgb);
    im->rgb = NULL;
    return message("corrupt PNG data (%s)", p.message);
  }
  return NULL;
}

/* libjpeg's error manager, extended to jump back instead of exiting. */
typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char text[JMSG_LENGTH_MAX];
  int warned;
} jpeg_errors;

/* Fatal libjpeg errors: keep the message and jump back. */
static void jpeg_fail(j_common_ptr c) {
  jpeg_errors *e = (jpeg_errors *)c->err;
  c->err->format_message(c, e->text);
  longjmp(e->jump, 1);
}

/* libjpeg warnings (corrupt data it decodes anyway): kept, and an error. */
static void jpeg_warn(j_common_ptr c, int level) {
  jpeg_errors *e = (jpeg_errors *)c->err;
  if (level < 0 && !e->warned) {
    c->err->format_message(c, e->text);
    e->warned = 1;
  }
}

/* Reads a JPEG file into *im; NULL or a malloc'd error message. */
static char *decode_jpeg(const char *path, folder_image *im) {
  FILE *f = fopen(path, "rb");
  if (!f) return message("cannot open: %s", strerror(errno));
  struct jpeg_decompress_struct c;
  jpeg_errors e;
  memset(&e, 0, sizeof e);
  c.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = jpeg_fail;
  e.pub.emit_message = jpeg_warn;
  unsigned char *volatile rgb = NULL;
  if (setjmp(e.jump)) {
    jpeg_destroy_decompress(&c);
    fclose(f);
    free(rgb);
    return message("corrupt JPEG data (%s)", e.text);
  }
  jpeg_create_decompress(&c);
  jpeg_stdio_src(&c, f);
  jpeg_read_header(&c, TRUE);
  if ((int64_t)c.image_width * c.image_height > FOLDER_MAX_PIXELS) {
    jpeg_destroy_decompress(&c);
    fclose(f);
    return message("image of %ux%u pixels is too large", c.image_width, c.image_height);
  }
  c.out_color_space = JCS_RGB;
  jpeg_start_decompress(&c);
  size_t row = (size_t)c.output_width * 3;
  rgb = malloc(row * c.output_height);
  if (!rgb) {
    snprintf(e.text, sizeof e.text, "out of memory for %ux%u pixels", c.output_width, c.output_height);
    longjmp(e.jump, 1);
  }
  while (c.output_scanline < c.output_height) {
    JSAMPROW line = rgb + row * c.output_scanline;
    jpeg_read_scanlines(&c, &line, 1);
  }
  jpeg_finish_decompress(&c);
  im->w = (int)c.output_width, im->h = (int)c.output_height;
  jpeg_destroy_decompress(&c);
  fclose(f);
  if (e.warned) {
    free(rgb);
    return message("corrupt JPEG data (%s)", e.text);
  }
  im->rgb = rgb;
  return NULL;
}

/* Reads 'path' (PNG or JPEG, told by its first bytes) into *im. */
static char *decode(const char *path, folder_image *im) {
  unsigned char head[4] = {0};
  FILE *f = fopen(path, "rb");
  if (!f) return message("cannot open: %s", strerror(errno));
  size_t got = fread(head, 1, sizeof head, f);
  fclose(f);
  if (got == 4 && head[0] == 0x89 && !memcmp(head + 1, "PNG", 3)) return decode_png(path, im);
  if (got >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) return decode_jpeg(path, im);
  return message("neither a PNG nor a JPEG file");
}

/* ---- resizing ---- */

/* The source taps of one output coordinate along an axis. */
typedef struct {
  int first, count;
  float *w;
} axis_taps;

/* Taps for out coordinates offset..offset+n-1 of an axis of 'in' pixels
 * resized to 'full': the overlapped source pixels (area averaging) when
 * shrinking, two neighbours at the pixel centre when enlarging. */
static axis_taps *make_taps(int in, int full, int offset, int n) {
  axis_taps *t = calloc((size_t)n, sizeof *t);
  if (!t) return NULL;
  double scale = (double)in / full;
  for (int i = 0; i < n; i++) {
    int o = i + offset;
    if (full <= in) {
      double lo = o * scale, hi = (o + 1) * scale;
      int a = (int)lo, b = (int)(hi - 1e-9);
      if (b >= in) b = in - 1;
      t[i].first = a, t[i].count = b - a + 1;
      t[i].w = malloc((size_t)t[i].count * sizeof(float));
      for (int k = a; t[i].w && k <= b; k++) {
        double l = k > lo ? k : lo, r = k + 1 < hi ? k + 1 : hi;
        t[i].w[k - a] = (float)((r - l) / scale);
      }
    } else {
      double s = (o + 0.5) * scale - 0.5;
      if (s < 0) s = 0;
      int a = (int)s, b = a + 1 < in ? a + 1 : a;
      t[i].first = a, t[i].count = 2;
      t[i].w = malloc(2 * sizeof(float));
      if (t[i].w) t[i].w[0] = (float)(1 - (s - a)), t[i].w[1] = (float)(s - a);
      if (b == a && t[i].w) t[i].w[0] = 1, t[i].w[1] = 0, t[i].count = 1;
    }
    if (!t[i].w) {
      for (int k = 0; k <= i; k++) free(t[k].w);
      free(t);
      return NULL;
    }
  }
  return t;
}

static void free_taps(axis_taps *t, int n) {
  for (int i = 0; t && i < n; i++) free(t[i].w);
  free(t);
}

/* Writes image 'im' as 3 x size x size (CHW) into 'dst': shorter side
 * resized to 'size', centre crop. Returns 0, or -1 when out of memory. */
static int resize_crop(const folder_image *im, int size, unsigned char *dst) {
  int short_side = im->w < im->h ? im->w : im->h;
  int fw = (int)((int64_t)im->w * size / short_side), fh = (int)((int64_t)im->h * size / short_side);
  if (fw < size) fw = size;
  if (fh < size) fh = size;
  axis_taps *tx = make_taps(im->w, fw, (fw - size) / 2, size), *ty = make_taps(im->h, fh, (fh - size) / 2, size);
  float *rows = malloc((size_t)im->h * (size_t)size * 3 * sizeof(float));
  int ok = tx && ty && rows;
  for (int y = 0; ok && y < im->h; y++) /* horizontal pass: h x size x 3 */
    for (int x = 0; x < size; x++)
      for (int c = 0; c < 3; c++) {
        float s = 0;
        for (int k = 0; k < tx[x].count; k++) s += tx[x].w[k] * im->rgb[((size_t)y * im->w + tx[x].first + k) * 3 + c];
        rows[((size_t)y * size + x) * 3 + c] = s;
      }
  for (int y = 0; ok && y < size; y++) /* vertical pass into CHW */
    for (int x = 0; x < size; x++)
      for (int c = 0; c < 3; c++) {
        float s = 0;
        for (int k = 0; k < ty[y].count; k++) s += ty[y].w[k] * rows[((size_t)(ty[y].first + k) * size + x) * 3 + c];
        int v = (int)(s + 0.5f);
        dst[((size_t)c * size + y) * size + x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
  free(rows);
  free_taps(tx, size);
  free_taps(ty, size);
  return ok ? 0 : -1;
}

/* ---- the data set ---- */

/* Collects the image files of split folder 'root' whose class folders are
 * among 'classes'; returns an error message or NULL. */
static char *collect(const char *root, char **classes, int nclasses, int train, folder_file **files, int64_t *n) {
  char **sub = NULL;
  int nsub = 0;
  int64_t cap = 0;
  *files = NULL;
  *n = 0;
  if (list_dir(root, &sub, &nsub)) return message("%s: cannot read the folder: %s", root, strerror(errno));
  char *err = NULL;
  for (int i = 0; i < nsub && !err; i++) {
    char *cdir = join(root, sub[i]);
    if (!cdir || !is_dir(cdir)) {
      free(cdir);
      continue; /* files beside the class folders (a README, labels) */
    }
    int label = -1;
    for (int k = 0; k < nclasses && label < 0; k++)
      if (!strcmp(classes[k], sub[i])) label = k;
    char **names = NULL;
    int nn = 0, images = 0;
    if (label < 0) err = message("%s: class folder '%s' is not one of the training classes", root, sub[i]);
    else if (list_dir(cdir, &names, &nn)) err = message("%s: cannot read the folder: %s", cdir, strerror(errno));
    for (int k = 0; !err && k < nn; k++) {
      if (!is_image_name(names[k])) continue;
      if (*n == cap) {
        cap = cap ? 2 * cap : 1024;
        folder_file *nf = realloc(*files, (size_t)cap * sizeof **files);
        if (!nf) {
          err = message("out of memory listing %s", cdir);
          break;
        }
        *files = nf;
      }
      (*files)[*n].path = join(cdir, names[k]);
      (*files)[*n].label = label;
      if (!(*files)[(*n)++].path) err = message("out of memory listing %s", cdir);
      images++;
    }
    if (!err && train && images == 0) err = message("%s: no .png, .jpg or .jpeg images", cdir);
    free_names(names, nn);
    free(cdir);
  }
  free_names(sub, nsub);
  if (!err && *n == 0) err = message("%s: no class folders with images", root);
  return err;
}

/* The sorted class folder names of 'train' into *classes; error or NULL. */
static char *find_classes(const char *train, char ***classes, int *n) {
  char **sub = NULL;
  int nsub = 0;
  *classes = NULL;
  *n = 0;
  if (!is_dir(train)) return message("%s: not found (the training images go in DIR/train/<class>/)", train);
  if (list_dir(train, &sub, &nsub)) return message("%s: cannot read the folder: %s", train, strerror(errno));
  char **out = malloc((size_t)(nsub ? nsub : 1) * sizeof *out);
  for (int i = 0; out && i < nsub; i++) {
    char *p = join(train, sub[i]);
    if (p && is_dir(p)) out[(*n)++] = strdup(sub[i]);
    free(p);
  }
  free_names(sub, nsub);
  if (!out) return message("out of memory");
  *classes = out;
  if (*n == 0) return message("%s: no class folders", train);
  if (*n > FOLDER_MAX_CLASSES) return message("%s: %d class folders (at most %d)", train, *n, FOLDER_MAX_CLASSES);
  return NULL;
}

/* Splits "DIR[:SIZE]" into a malloc'd DIR and SIZE (0 if not given). */
static char *parse_arg(const char *arg, int *size) {
  const char *colon = strrchr(arg, ':');
  *size = 0;
  if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
    *size = atoi(colon + 1) > FOLDER_MAX_SIZE ? -1 : atoi(colon + 1);
    return strndup(arg, (size_t)(colon - arg));
  }
  return strdup(arg);
}

/* Decodes every file into 'ds' (allocated here); error or NULL. */
static char *decode_all(rt_dataset *ds, const folder_file *files, int64_t n, int size) {
  folder_image first = {0, 0, NULL};
  char *err = size ? NULL : decode(files[0].path, &first);
  if (err) {
    char *m = message("%s: %s", files[0].path, err);
    free(err);
    return m;
  }
  ds->channels = 3;
  ds->height = size ? size : first.h;
  ds->width = size ? size : first.w;
  free(first.rgb);
  size_t per = (size_t)(3 * ds->height * ds->width);
  ds->count = n;
  ds->pixels = malloc((size_t)n * per);
  ds->labels = malloc((size_t)n * sizeof(int64_t));
  char **errs = calloc((size_t)n, sizeof *errs);
  if (!ds->pixels || !ds->labels || !errs) {
    free(errs);
    return message("%s: out of memory for %lld images of 3x%lldx%lld", ds->name, (long long)n,
                   (long long)ds->height, (long long)ds->width);
  }
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t i = 0; i < n; i++) {
    folder_image im = {0, 0, NULL};
    ds->labels[i] = files[i].label;
    unsigned char *dst = ds->pixels + (size_t)i * per;
    errs[i] = decode(files[i].path, &im);
    if (!errs[i] && size && resize_crop(&im, size, dst)) errs[i] = message("out of memory resizing");
    if (!errs[i] && !size && (im.w != ds->width || im.h != ds->height))
      errs[i] = message("%dx%d pixels, but %s has %lldx%lld: give one size as folder:DIR:SIZE", im.w, im.h,
                        files[0].path, (long long)ds->width, (long long)ds->height);
    if (!errs[i] && !size)
      for (int64_t p = 0; p < ds->height * ds->width; p++)
        for (int c = 0; c < 3; c++) dst[c * ds->height * ds->width + p] = im.rgb[p * 3 + c];
    free(im.rgb);
  }
  for (int64_t i = 0; i < n && !err; i++)
    if (errs[i]) err = message("%s: %s", files[i].path, errs[i]);
  for (int64_t i = 0; i < n; i++) free(errs[i]);
  free(errs);
  return err;
}

/* Reads the image folder data set 'arg' into 'ds'. */
attnc_status rt_data_read_folder(rt_dataset *ds, const char *arg, rt_split split, ir_diag *d) {
  int size, nclasses = 0;
  char *dir = parse_arg(arg, &size), *train = dir ? join(dir, "train") : NULL, *root = NULL, **classes = NULL;
  folder_file *files = NULL;
  int64_t n = 0;
  char *err = !dir || !train ? message("out of memory") : NULL;
  if (!err && size < 0) err = message("folder:%s: the size must be at most %d", arg, FOLDER_MAX_SIZE);
  if (!err) err = find_classes(train, &classes, &nclasses);
  if (!err && split == RT_SPLIT_TRAIN) root = strdup(train);
  if (!err && split == RT_SPLIT_TEST) {
    root = join(dir, "val");
    if (root && !is_dir(root)) {
      free(root);
      root = join(dir, "test");
      if (root && !is_dir(root)) err = message("%s: neither %s/val nor %s/test holds the test images", dir, dir, dir);
    }
  }
  if (!err && !root) err = message("out of memory");
  if (!err) err = collect(root, classes, nclasses, split == RT_SPLIT_TRAIN, &files, &n);
  if (!err) {
    ds->classes = nclasses;
    ds->class_names = classes; /* the dataset owns them now */
    classes = NULL;
    nclasses = 0;
    err = decode_all(ds, files, n, size);
  }
  for (int64_t i = 0; i < n; i++) free(files[i].path);
  free(files);
  free_names(classes, nclasses);
  free(root);
  free(train);
  free(dir);
  if (!err) return ATTNC_OK;
  ir_diag_error(d, NULL, 0, "%s", err);
  free(err);
  return ATTNC_EPARSE;
}
