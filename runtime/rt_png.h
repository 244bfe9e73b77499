/* PNG pictures (libpng's simplified API): what attnc gradcam draws. */
#ifndef ATTNC_RT_PNG_H
#define ATTNC_RT_PNG_H

#include <stdint.h>

#include "ir_diag.h"

/* Writes the 8-bit RGB picture 'rgb' (rows top to bottom, 3 bytes a pixel,
 * width*height pixels) to 'path' as PNG, atomically (rt_file.h). */
attnc_status rt_png_write_rgb(const char *path, const uint8_t *rgb, int64_t width, int64_t height, ir_diag *d);

#endif
