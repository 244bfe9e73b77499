/* loader.c — the training data path of an image folder on its own: the
 * background loader's thread decoding each JPEG/PNG from its file, taking
 * a RandomResizedCrop (or the centre view), flipping and normalizing, as
 * `attnc train --data folder:DIR:SIZE` runs it beside the training step.
 * Prints one JSON object: images per second of that one thread, and the
 * time to decode the whole split into memory on every core instead (what
 * opening a folder does when it fits in memory and no resized-crop is asked).
 *
 * Built with the project (build/bench/loader); bench/loader.sh runs it
 * beside torchvision's ImageFolder + DataLoader on the same folder:
 *
 *   build/bench/loader DIR:SIZE [BATCHES] [BATCH] [center]
 *
 * Defaults: 8 batches of 128 after one warm-up batch, resized-crop + flip. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_data.h"
#include "rt_loader.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: loader DIR:SIZE [BATCHES] [BATCH] [center]\n");
    return 2;
  }
  char spec[4200];
  snprintf(spec, sizeof spec, "folder:%s", argv[1]);
  int batches = argc > 2 ? atoi(argv[2]) : 8, batch = argc > 3 ? atoi(argv[3]) : 128;
  int center = argc > 4 && !strcmp(argv[4], "center");
  ir_diag *d = ir_diag_create();
  rt_dataset *files = NULL, *mem = NULL;
  if (rt_dataset_open_as(spec, RT_SPLIT_TRAIN, 1, &files, d) != ATTNC_OK) {
    fputs(ir_diag_text(d), stderr);
    return 1;
  }
  rt_loader_options o = {.batch = batch, .shuffle = 1, .seed = 1, .resized_crop = center ? 0 : 0.08, .flip = !center};
  rt_loader *l = NULL;
  if (rt_loader_create(files, &o, &l, d) != ATTNC_OK || rt_loader_batches(l) < batches + 1) {
    fprintf(stderr, "loader: %s (or fewer than %d batches)\n", ir_diag_text(d), batches + 1);
    return 1;
  }
  size_t per = (size_t)(files->channels * files->height * files->width);
  float *images = malloc((size_t)batch * per * sizeof(float));
  int64_t *labels = malloc((size_t)batch * sizeof(int64_t));
  rt_loader_start(l, 0, 0);
  if (rt_loader_next(l, images, labels) < 0) { /* warm-up: the permutation, the page cache */
    fprintf(stderr, "%s\n", rt_loader_error(l));
    return 1;
  }
  double t0 = now_s();
  for (int b = 0; b < batches; b++)
    if (rt_loader_next(l, images, labels) < 0) {
      fprintf(stderr, "%s\n", rt_loader_error(l));
      return 1;
    }
  double dt = now_s() - t0;
  rt_loader_destroy(l);
  double t1 = now_s();
  if (rt_dataset_open_as(spec, RT_SPLIT_TRAIN, 0, &mem, d) != ATTNC_OK) {
    fputs(ir_diag_text(d), stderr);
    return 1;
  }
  double open_s = now_s() - t1;
  printf("{\"images\": %lld, \"size\": %lld, \"transform\": \"%s\", \"loader_images_per_s\": %.1f, "
         "\"loader_ms_per_image\": %.3f, \"decode_all_s\": %.2f, \"decode_all_images_per_s\": %.1f}\n",
         (long long)files->count, (long long)files->height, center ? "center" : "resized-crop+flip",
         batches * batch / dt, 1e3 * dt / (batches * batch), open_s, (double)mem->count / open_s);
  free(images);
  free(labels);
  rt_dataset_destroy(files);
  rt_dataset_destroy(mem);
  ir_diag_destroy(d);
  return 0;
}
