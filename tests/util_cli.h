/* Test helpers for files and processes: temporary directories, whole-file
 * I/O, and running the attnc binary with captured output (prefix tc_). */
#ifndef ATTNC_UTIL_CLI_H
#define ATTNC_UTIL_CLI_H

#include <stddef.h>

/* Result of one process run: exit code (-1 if it did not exit normally,
 * e.g. killed by a signal) and its whole stdout and stderr (owned). */
typedef struct {
  int code;
  char *out;
  char *err;
} tc_result;

/* Creates a fresh directory under $TMPDIR (or /tmp); returns its path
 * (caller frees, and removes it with tc_rmtree). NULL on failure. */
char *tc_tempdir(void);
/* Removes directory 'dir' and the regular files directly in it. */
void tc_rmtree(const char *dir);
/* Returns malloc'd "dir/name". */
char *tc_path(const char *dir, const char *name);
/* Writes 'n' bytes to 'path'; returns 0 or -1. */
int tc_write_file(const char *path, const void *data, size_t n);
/* Reads 'path' whole (NUL-terminated, size in *n if n); NULL on failure. */
char *tc_read_file(const char *path, size_t *n);
/* Runs the attnc binary ($ATTNC_BIN, else build/attnc) with the NULL-terminated
 * argument list 'args' (not including argv[0]), stdin from /dev/null.
 * Fills *r (free with tc_result_free). Returns 0, or -1 if it could not run. */
int tc_run_attnc(const char *const *args, tc_result *r);
/* Frees the buffers of 'r'. */
void tc_result_free(tc_result *r);
/* 1 if the safetensors files a and b hold the same tensor names (at least
 * one) with identical types and bytes; 0 otherwise or if either cannot be read. */
int tc_same_tensors(const char *a, const char *b);
/* Returns the number of lines in 's' (a last line without newline counts). */
int tc_count_lines(const char *s);

#endif
