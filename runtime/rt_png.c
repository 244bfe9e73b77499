/* PNG writing through libpng's simplified API (png_image), encoded in
 * memory and then written atomically. */
#include "rt_png.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "rt_file.h"

/* Encoded bytes waiting to be written (an rt_file_fill context). */
struct encoded {
  void *data;
  size_t size;
};

/* Writes the encoded bytes to 'fd'. */
static int write_encoded(int fd, void *ctx) {
  const struct encoded *e = ctx;
  return rt_file_write_all(fd, e->data, e->size);
}

/* Encodes 'rgb' as PNG and writes it to 'path'. */
attnc_status rt_png_write_rgb(const char *path, const uint8_t *rgb, int64_t width, int64_t height, ir_diag *d) {
  if (width < 1 || height < 1 || width > 65535 || height > 65535) {
    ir_diag_error(d, path, 0, "picture of %lldx%lld pixels: each side must be 1 to 65535", (long long)width,
                  (long long)height);
    return ATTNC_EINVAL;
  }
  png_image image;
  memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = (png_uint_32)width;
  image.height = (png_uint_32)height;
  image.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  struct encoded e = {NULL, 0};
  /* The first call measures, the second encodes. */
  if (!png_image_write_to_memory(&image, NULL, &size, 0, rgb, 0, NULL) || !(e.data = malloc(size)) ||
      !png_image_write_to_memory(&image, e.data, &size, 0, rgb, 0, NULL)) {
    ir_diag_error(d, path, 0, "PNG encoding failed: %s", image.message[0] ? image.message : "out of memory");
    png_image_free(&image);
    free(e.data);
    return ATTNC_ENOMEM;
  }
  e.size = size;
  attnc_status st = rt_file_write_atomic(path, write_encoded, &e, d);
  free(e.data);
  return st;
}
