/* Writing files atomically: the whole contents go to a temporary file
 * beside the target, which is synced and renamed over it, so a reader sees
 * the old file or the new one, never a part (safetensors, checkpoints,
 * pictures). */
#ifndef ATTNC_RT_FILE_H
#define ATTNC_RT_FILE_H

#include <stddef.h>

#include "ir_diag.h"

/* Writes the contents of a file to descriptor 'fd'; returns 0, or -1 with
 * errno set. */
typedef int (*rt_file_fill)(int fd, void *ctx);

/* Creates 'path' (or replaces it) atomically with what 'fill' writes. On
 * failure the old file is untouched, no temporary file is left, and 'd'
 * says why, naming 'path'. */
attnc_status rt_file_write_atomic(const char *path, rt_file_fill fill, void *ctx, ir_diag *d);
/* Writes 'n' bytes to 'fd' (all of them, retrying short writes); returns 0,
 * or -1 with errno set. */
int rt_file_write_all(int fd, const void *data, size_t n);

#endif
