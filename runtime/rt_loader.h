/* Mini-batches of a data set for training: seeded shuffle per epoch,
 * pad-and-random-crop or RandomResizedCrop, random horizontal flip and
 * per-channel normalization, prepared by a background thread (double
 * buffering; it also decodes the images of data sets read from files)
 * while the caller trains. */
#ifndef ATTNC_RT_LOADER_H
#define ATTNC_RT_LOADER_H

#include <stdint.h>

#include "ir_diag.h"
#include "rt_data.h"

typedef struct {
  int64_t batch;        /* samples per batch */
  int shuffle;          /* 1: a new seeded permutation every epoch */
  uint64_t seed;
  int pad_crop;         /* 0 off; else pad by this many pixels (zeros) and crop back at a random offset
                           (padding is pixel value 0 before normalization, as torchvision's
                           RandomCrop(padding) followed by Normalize) */
  double resized_crop;  /* 0 off; else RandomResizedCrop with this smallest area fraction (torchvision's
                           default 0.08; aspect ratios 3/4..4/3) of the original image, resized to the
                           data set's size; excludes pad_crop */
  int flip;             /* random horizontal flip with p = 0.5 */
  int drop_last;        /* 1: drop the last partial batch */
} rt_loader_options;

/* A loader's functions are called from one thread (the training loop); the
 * worker thread is internal. */
typedef struct rt_loader rt_loader;

/* Batches of 'ds' (not owned; must outlive the loader), prepared by a background thread.
 * 'o' is copied. Starts no work until rt_loader_start. ATTNC_EINVAL for a
 * batch < 1, a negative pad_crop, pad_crop >= the image side, resized_crop
 * outside [0, 1] or with pad_crop, more than 3 channels or a std <= 0. *out owned by the caller. */
attnc_status rt_loader_create(const rt_dataset *ds, const rt_loader_options *o, rt_loader **out, ir_diag *d);
/* Stops and joins the background thread and frees 'l' (NULL is fine). */
void rt_loader_destroy(rt_loader *l);
/* Batches per epoch. */
int64_t rt_loader_batches(const rt_loader *l);
/* Starts epoch 'epoch' at batch 'first' (0 normally; > 0 when resuming). The order and every random
 * augmentation choice depend only on (seed, epoch, position in the epoch): a resumed epoch yields
 * exactly the batches the uninterrupted one would have. May be called at any time: work in flight
 * for the previous epoch is discarded. */
void rt_loader_start(rt_loader *l, int64_t epoch, int64_t first);
/* Blocks until the next batch is ready and copies it out: images float32 [batch,C,H,W] normalized
 * with ds->mean/std ((byte / 255 - mean[c]) / std[c], computed in double, rounded to float; the
 * crop comes first, then the flip, as in torchvision), labels int64 [batch]. Returns the number
 * of samples (< batch only for the last batch when drop_last is 0; the rest of the arrays is
 * zero-filled), 0 at the end of the epoch (and before any rt_loader_start), -1 when a sample could
 * not be read (a file of a data set read from files): rt_loader_error tells which. */
int64_t rt_loader_next(rt_loader *l, float *images, int64_t *labels);
/* The message of the read error that made rt_loader_next return -1 ("" if none). */
const char *rt_loader_error(const rt_loader *l);

#endif
