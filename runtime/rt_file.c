/* Writing files atomically (temporary file, fsync, rename). */
#include "rt_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes all 'n' bytes of 'data' to 'fd'; returns 0 or -1 (errno set). */
int rt_file_write_all(int fd, const void *data, size_t n) {
  const char *c = data;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Opens a new temporary file beside 'path'; its name goes to 'tmp'. */
static int open_temp(const char *path, char *tmp, size_t size) {
  static unsigned counter;
  for (int tries = 0; tries < 100; tries++) {
    unsigned k = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    snprintf(tmp, size, "%s.tmp.%ld.%u", path, (long)getpid(), k);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

/* Flushes the directory holding 'path' so the rename is durable (best effort). */
static void sync_parent_dir(const char *path) {
  char *copy = strdup(path);
  if (!copy) return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(copy);
}

/* Replaces 'path' atomically with what 'fill' writes. */
attnc_status rt_file_write_atomic(const char *path, rt_file_fill fill, void *ctx, ir_diag *d) {
  size_t tlen = strlen(path) + 64;
  char *tmp = malloc(tlen);
  if (!tmp) {
    ir_diag_error(d, path, 0, "out of memory");
    return ATTNC_ENOMEM;
  }
  attnc_status st = ATTNC_OK;
  int fd = open_temp(path, tmp, tlen);
  if (fd < 0) {
    ir_diag_error(d, path, 0, "cannot create a temporary file beside it: %s", strerror(errno));
    st = ATTNC_EIO;
  } else {
    int failed = fill(fd, ctx) || fsync(fd);
    int err = errno;
    if (close(fd) && !failed) {
      failed = 1;
      err = errno;
    }
    if (!failed && rename(tmp, path)) {
      failed = 1;
      err = errno;
    }
    if (failed) {
      ir_diag_error(d, path, 0, "write failed: %s", strerror(err));
      unlink(tmp);
      st = ATTNC_EIO;
    } else {
      sync_parent_dir(path);
    }
  }
  free(tmp);
  return st;
}
