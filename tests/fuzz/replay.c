/* The driver that runs a fuzz target without libFuzzer (gcc builds, ctest):
 * feeds it every file named on the command line, and every file in every
 * directory named there, once each. Exit status 0 when all ran and there
 * was at least one. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common.h"
#include "util_text.h"

/* Runs the target on the bytes of file 'path'; returns 0, or -1 if unreadable. */
static int run_file(const char *path) {
  size_t len;
  char *buf = textutil_read_file(path, &len);
  if (!buf) return -1;
  LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
  free(buf);
  return 0;
}

/* Runs every regular file of directory 'dir' (sorted by name); returns the
 * count, or -1 if the directory or one of its files is unreadable. */
static int run_dir(const char *dir) {
  struct dirent **list;
  int n = scandir(dir, &list, NULL, alphasort), ran = 0;
  if (n < 0) return -1;
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
    struct stat st;
    if (list[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
      ran = ran < 0 || run_file(path) != 0 ? -1 : ran + 1;
    free(list[i]);
  }
  free(list);
  return ran;
}

int main(int argc, char **argv) {
  int total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    int n = stat(argv[i], &st) != 0 ? -1 : S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
    if (n < 0) {
      fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[i]);
      return 1;
    }
    total += n;
  }
  printf("%s: ran %d inputs\n", argv[0], total);
  return total > 0 ? 0 : 1; /* no input: the test would check nothing */
}
