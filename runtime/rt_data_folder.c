/* Image-folder data sets: one folder per class of PNG (libpng) and JPEG
 * (libjpeg) files, decoded in parallel, resized and centre-cropped as
 * torchvision's Resize + CenterCrop do to PIL images (rt_image.c) to one square
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
#include <unistd.h>

#include "rt_image.h"

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

/* Reads 'path' into RGB bytes for the data set's samples. */
attnc_status rt_data_decode_image(const char *path, int64_t *w, int64_t *h, uint8_t **rgb, ir_diag *d) {
  folder_image im = {0, 0, NULL};
  char *err = decode(path, &im);
  *rgb = NULL;
  if (err) {
    ir_diag_error(d, path, 0, "%s", err);
    free(err);
    return ATTNC_EPARSE;
  }
  *w = im.w, *h = im.h, *rgb = im.rgb;
  return ATTNC_OK;
}

/* ---- the data set ---- */

/* Appends 'path' (taken) with 'label' to *files; error or NULL. */
static char *add_file(folder_file **files, int64_t *n, int64_t *cap, char *path, int64_t label) {
  if (!path) return message("out of memory listing the images");
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 1024;
    folder_file *nf = realloc(*files, (size_t)*cap * sizeof **files);
    if (!nf) {
      char *m = message("out of memory listing %s", path);
      free(path);
      return m;
    }
    *files = nf;
  }
  (*files)[*n].path = path;
  (*files)[(*n)++].label = label;
  return NULL;
}

/* Adds the images of class folder 'dir' and of its subfolders (as
 * torchvision's ImageFolder: Tiny ImageNet keeps them in <class>/images/),
 * names in byte order, to *files with 'label'; error or NULL. */
static char *collect_class(const char *dir, int64_t label, int depth, folder_file **files, int64_t *n, int64_t *cap) {
  char **names = NULL;
  int nn = 0;
  if (list_dir(dir, &names, &nn)) return message("%s: cannot read the folder: %s", dir, strerror(errno));
  char *err = NULL;
  for (int k = 0; !err && k < nn; k++) {
    char *p = join(dir, names[k]);
    if (p && is_dir(p)) {
      if (depth < 8) err = collect_class(p, label, depth + 1, files, n, cap);
      free(p);
    } else if (p && is_image_name(names[k])) {
      err = add_file(files, n, cap, p, label);
    } else {
      free(p);
      if (!p) err = message("out of memory listing %s", dir);
    }
  }
  free_names(names, nn);
  return err;
}

/* The label of class 'name', or -1. */
static int64_t class_label(char **classes, int nclasses, const char *name) {
  for (int k = 0; k < nclasses; k++)
    if (!strcmp(classes[k], name)) return k;
  return -1;
}

/* Tiny ImageNet's validation layout: root/images/<file> labelled by
 * root/val_annotations.txt ("<file>\t<class>\t..." per line), in the file's
 * order. Error or NULL. */
static char *collect_annotated(const char *root, const char *list, char **classes, int nclasses, folder_file **files,
                               int64_t *n) {
  FILE *f = fopen(list, "r");
  if (!f) return message("%s: cannot open: %s", list, strerror(errno));
  char line[1024], *images = join(root, "images"), *err = images ? NULL : message("out of memory");
  int64_t cap = 0;
  for (int lineno = 1; !err && fgets(line, sizeof line, f); lineno++) {
    if (!strchr(line, '\n') && !feof(f)) {
      err = message("%s:%d: line longer than %zu bytes", list, lineno, sizeof line - 2);
      break;
    }
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    char *tab = strchr(line, '\t'), *cls = tab ? tab + 1 : NULL;
    if (cls) cls[strcspn(cls, "\t")] = 0;
    if (tab) *tab = 0;
    int64_t label = cls ? class_label(classes, nclasses, cls) : -1;
    if (!cls || strchr(line, '/') || !is_image_name(line))
      err = message("%s:%d: expected '<image file>\\t<class>'", list, lineno);
    else if (label < 0)
      err = message("%s:%d: class '%s' is not one of the training classes", list, lineno, cls);
    else
      err = add_file(files, n, &cap, join(images, line), label);
  }
  fclose(f);
  free(images);
  if (!err && *n == 0) err = message("%s: no images listed", list);
  return err;
}

/* Collects the image files of split folder 'root' whose class folders are
 * among 'classes' (or the files its val_annotations.txt lists); returns an
 * error message or NULL. */
static char *collect(const char *root, char **classes, int nclasses, int train, folder_file **files, int64_t *n) {
  char **sub = NULL;
  int nsub = 0;
  int64_t cap = 0;
  *files = NULL;
  *n = 0;
  char *list = join(root, "val_annotations.txt");
  struct stat st;
  if (!train && list && stat(list, &st) == 0 && S_ISREG(st.st_mode)) {
    char *err = collect_annotated(root, list, classes, nclasses, files, n);
    free(list);
    return err;
  }
  free(list);
  if (list_dir(root, &sub, &nsub)) return message("%s: cannot read the folder: %s", root, strerror(errno));
  char *err = NULL;
  for (int i = 0; i < nsub && !err; i++) {
    char *cdir = join(root, sub[i]);
    if (!cdir || !is_dir(cdir)) {
      free(cdir);
      continue; /* files beside the class folders (a README, labels) */
    }
    int64_t label = class_label(classes, nclasses, sub[i]), before = *n;
    if (label < 0) err = message("%s: class folder '%s' is not one of the training classes", root, sub[i]);
    else err = collect_class(cdir, label, 0, files, n, &cap);
    if (!err && train && *n == before) err = message("%s: no .png, .jpg or .jpeg images", cdir);
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

/* The number after the last colon of arg[0..n) when all digits (-1 if
 * not in 1..FOLDER_MAX_SIZE), with *colon at that colon; else 0. */
static int last_number(const char *arg, size_t n, size_t *colon) {
  size_t i = n;
  while (i > 0 && arg[i - 1] >= '0' && arg[i - 1] <= '9') i--;
  if (i == n || i == 0 || arg[i - 1] != ':') return 0;
  *colon = i - 1;
  int v = n - i > 4 ? -1 : atoi(arg + i);
  return v < 1 || v > FOLDER_MAX_SIZE ? -1 : v;
}

/* Splits "DIR[:SIZE[:RESIZE]]" into a malloc'd DIR, SIZE (0 if not given)
 * and RESIZE (SIZE if not given). */
static char *parse_arg(const char *arg, int *size, int *resize) {
  size_t n = strlen(arg), c1 = n, c2 = n;
  int last = last_number(arg, n, &c1), before = last ? last_number(arg, c1, &c2) : 0;
  *size = before ? before : last;
  *resize = last;
  return strndup(arg, before ? c2 : last ? c1 : n);
}

/* Bytes of memory that decoded images may take: half the machine's. */
static double memory_budget(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? 0.5 * (double)pages * (double)page : 4e9;
}

/* Gives 'ds' its size (SIZE, or the first image's), resize and labels;
 * error or NULL. */
static char *set_shape(rt_dataset *ds, const folder_file *files, int64_t n, int size, int resize) {
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
  ds->resize = size ? resize : 0;
  free(first.rgb);
  ds->count = n;
  ds->labels = malloc((size_t)n * sizeof(int64_t));
  if (!ds->labels) return message("out of memory");
  for (int64_t i = 0; i < n; i++) ds->labels[i] = files[i].label;
  return NULL;
}

/* Writes the stored view of image file 'path' of folder set 'ds' to 'dst'
 * (3 x height x width CHW bytes): the centre view when ds->resize, else the
 * image as it is, which must have the set's size. Error or NULL. */
static char *stored_view(const rt_dataset *ds, const char *path, uint8_t *dst) {
  folder_image im = {0, 0, NULL};
  char *err = decode(path, &im);
  rt_image view = rt_image_hwc(im.rgb, 3, im.w, im.h);
  if (!err && ds->resize && rt_image_center(&view, ds->resize, ds->height, dst)) err = message("out of memory resizing");
  if (!err && !ds->resize && (im.w != ds->width || im.h != ds->height))
    err = message("%dx%d pixels, but the data set's images are %lldx%lld: give one size as folder:DIR:SIZE", im.w,
                  im.h, (long long)ds->width, (long long)ds->height);
  if (!err && !ds->resize)
    for (int64_t p = 0; p < ds->height * ds->width; p++)
      for (int c = 0; c < 3; c++) dst[c * ds->height * ds->width + p] = im.rgb[p * 3 + c];
  free(im.rgb);
  return err;
}

/* Writes sample k's stored view, decoded from its file. */
attnc_status rt_data_folder_view(const rt_dataset *ds, int64_t k, uint8_t *dst, ir_diag *d) {
  char *err = stored_view(ds, ds->paths[k], dst);
  if (!err) return ATTNC_OK;
  ir_diag_error(d, ds->paths[k], 0, "%s", err);
  free(err);
  return ATTNC_EPARSE;
}

/* Decodes every file into 'ds->pixels' (allocated here); error or NULL. */
static char *decode_all(rt_dataset *ds, const folder_file *files, int64_t n) {
  size_t per = (size_t)(3 * ds->height * ds->width);
  ds->pixels = malloc((size_t)n * per);
  char **errs = calloc((size_t)n, sizeof *errs);
  if (!ds->pixels || !errs) {
    free(errs);
    return message("%s: out of memory for %lld images of 3x%lldx%lld", ds->name, (long long)n,
                   (long long)ds->height, (long long)ds->width);
  }
  char *err = NULL;
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t i = 0; i < n; i++) errs[i] = stored_view(ds, files[i].path, ds->pixels + (size_t)i * per);
  for (int64_t i = 0; i < n && !err; i++)
    if (errs[i]) err = message("%s: %s", files[i].path, errs[i]);
  for (int64_t i = 0; i < n; i++) free(errs[i]);
  free(errs);
  return err;
}

/* Makes 'ds' read its samples from 'files' (their paths taken); error or NULL. */
static char *keep_files(rt_dataset *ds, folder_file *files, int64_t n) {
  ds->paths = malloc((size_t)n * sizeof *ds->paths);
  if (!ds->paths) return message("out of memory");
  for (int64_t i = 0; i < n; i++) ds->paths[i] = files[i].path, files[i].path = NULL;
  return NULL;
}

/* Reads the image folder data set 'arg' into 'ds'. */
attnc_status rt_data_read_folder(rt_dataset *ds, const char *arg, rt_split split, int from_files, ir_diag *d) {
  int size, resize, nclasses = 0;
  char *dir = parse_arg(arg, &size, &resize), *train = dir ? join(dir, "train") : NULL, *root = NULL, **classes = NULL;
  folder_file *files = NULL;
  int64_t n = 0;
  char *err = !dir || !train ? message("out of memory") : NULL;
  if (!err && (size < 0 || resize < 0)) err = message("folder:%s: sizes must be 1 to %d", arg, FOLDER_MAX_SIZE);
  if (!err && resize < size)
    err = message("folder:%s: the resize (%d) is smaller than the crop (%d): give SIZE[:RESIZE] with RESIZE >= SIZE", arg,
                  resize, size);
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
    err = set_shape(ds, files, n, size, resize);
  }
  if (!err && !from_files && (double)n * 3 * (double)ds->height * (double)ds->width > memory_budget()) from_files = 1;
  if (!err) err = from_files ? keep_files(ds, files, n) : decode_all(ds, files, n);
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
