/* The driver that runs a fuzz target without libFuzzer (gcc builds, ctest):
 * feeds it every file named on the command line, and every file in every
 * directory named there, once each. Exit status 0 when all ran. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

/* Runs the target on the bytes of file 'path'; returns 0, or -1 if unreadable. */
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0, got;
  do {
    if (len == cap) {
      cap = cap ? 2 * cap : 65536;
      uint8_t *nb = realloc(buf, cap);
      if (!nb) break;
      buf = nb;
    }
    got = fread(buf + len, 1, cap - len, f);
    len += got;
  } while (got > 0);
  fclose(f);
  LLVMFuzzerTestOneInput(buf ? buf : (const uint8_t *)"", len);
  free(buf);
  return 0;
}

/* Runs every regular file of directory 'dir' (sorted by name); returns the count, -1 if unreadable. */
static int run_dir(const char *dir) {
  struct dirent **list;
  int n = scandir(dir, &list, NULL, alphasort), ran = 0;
  if (n < 0) return -1;
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
    struct stat st;
    if (list[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode) && run_file(path) == 0) ran++;
    free(list[i]);
  }
  free(list);
  return ran;
}

int main(int argc, char **argv) {
  int total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    int n = stat(argv[i], &st) != 0 ? -1 : S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0;
    if (n < 0) {
      fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[i]);
      return 1;
    }
    total += n;
  }
  printf("%s: ran %d inputs\n", argv[0], total);
  return 0;
}
