/* Test helpers for files and processes (see util_cli.h). */
#include "util_cli.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt_safetensors.h"

extern char **environ;

/* Creates a fresh temporary directory. */
char *tc_tempdir(void) {
  const char *base = getenv("TMPDIR");
  char *t = malloc(4096);
  if (!t) return NULL;
  snprintf(t, 4096, "%s/attnc-test-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(t)) {
    free(t);
    return NULL;
  }
  return t;
}

/* Removes 'dir' and the files in it. */
void tc_rmtree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *p = tc_path(dir, e->d_name);
    if (p) unlink(p);
    free(p);
  }
  closedir(d);
  rmdir(dir);
}

/* Returns "dir/name". */
char *tc_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* Writes 'n' bytes to 'path'. */
int tc_write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, n, f);
  return fclose(f) == 0 && w == n ? 0 : -1;
}

/* Reads 'path' whole. */
char *tc_read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    size_t r = fread(buf + len, 1, cap - len, f);
    len += r;
    if (len < cap) break;
    char *nb = realloc(buf, cap * 2 + 1);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  if (!buf) return NULL;
  buf[len] = 0;
  if (n) *n = len;
  return buf;
}

/* Runs attnc with 'args', capturing stdout and stderr through temp files. */
int tc_run_attnc(const char *const *args, tc_result *r) {
  memset(r, 0, sizeof *r);
  r->code = -1;
  const char *bin = getenv("ATTNC_BIN");
  if (!bin || !*bin) bin = "build/attnc";
  int nargs = 0;
  while (args[nargs]) nargs++;
  char **argv = calloc((size_t)nargs + 2, sizeof *argv);
  char *dir = tc_tempdir();
  char *outp = dir ? tc_path(dir, "stdout") : NULL, *errp = dir ? tc_path(dir, "stderr") : NULL;
  int rc = -1;
  if (argv && outp && errp) {
    argv[0] = (char *)bin;
    for (int i = 0; i < nargs; i++) argv[i + 1] = (char *)args[i];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int status;
    if (posix_spawn(&pid, bin, &fa, NULL, argv, environ) == 0 && waitpid(pid, &status, 0) == pid) {
      r->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      r->out = tc_read_file(outp, NULL);
      r->err = tc_read_file(errp, NULL);
      rc = r->out && r->err ? 0 : -1;
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  if (dir) tc_rmtree(dir);
  free(outp);
  free(errp);
  free(dir);
  free(argv);
  return rc;
}

/* Frees the buffers of 'r'. */
void tc_result_free(tc_result *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

/* Returns the number of lines in 's'. */
int tc_count_lines(const char *s) {
  int n = 0;
  for (; s && *s; s++)
    if (*s == '\n' || !s[1]) n++;
  return n;
}

/* Compares two safetensors files tensor by tensor. */
int tc_same_tensors(const char *a, const char *b) {
  ir_diag *d = ir_diag_create();
  ir_bundle *x = NULL, *y = NULL;
  int same = rt_safetensors_read(a, &x, d) == ATTNC_OK && rt_safetensors_read(b, &y, d) == ATTNC_OK;
  same = same && x->count == y->count && x->count > 0;
  for (int i = 0; same && i < x->count; i++) {
    const ir_tensor *s = x->tensors[i], *t = ir_bundle_get(y, x->names[i]);
    same = t && ir_type_equal(&s->type, &t->type) &&
           !memcmp(s->data, t->data, (size_t)ir_type_numel(&s->type) * ir_dtype_size(s->type.dtype));
  }
  ir_bundle_destroy(x);
  ir_bundle_destroy(y);
  ir_diag_destroy(d);
  return same;
}
