/* Image classification data sets read from their distribution files: IDX
 * (MNIST, Fashion-MNIST; plain or gzip'd), CIFAR-10 / CIFAR-100 binary and
 * STL-10 binary. Every header, size and label is validated; a wrong file is
 * an error naming the file, never a crash. */
#ifndef ATTNC_RT_DATA_H
#define ATTNC_RT_DATA_H

#include <stdint.h>

#include "ir_diag.h"

typedef enum { RT_SPLIT_TRAIN, RT_SPLIT_TEST } rt_split;

/* A data set held in memory: 8-bit pixels, CHW per sample, and int64 labels. */
typedef struct {
  char name[32];                  /* "fashion-mnist", "mnist", "cifar10", "cifar100", "stl10" */
  int64_t count, channels, height, width;
  int classes;
  uint8_t *pixels;                /* count * channels*height*width bytes, CHW per sample; NULL if paths */
  char **paths;                   /* read from files: sample k is decoded from paths[k] when read (folder sets) */
  int64_t resize;                 /* folder sets: shorter side resized to this, then the centre height x width
                                     (0: images kept at their size) */
  int64_t *labels;                /* count, each in [0, classes) */
  float mean[3], std[3];          /* the usual per-channel normalization for this data set (0..1 scale) */
  char **class_names;             /* 'classes' names (folder names; the files' or the usual ones), or NULL */
} rt_dataset;

/* Reads the 'split' part of the data set named by 'spec' into a new *out
 * (owned by the caller, freed with rt_dataset_destroy).
 * spec: "fashion-mnist[:DIR]" (bare = /usr/share/datasets/fashion-mnist), "mnist:DIR", "cifar10:DIR",
 * "folder:DIR[:SIZE[:RESIZE]]" (PNG/JPEG class folders, rt_data_folder.h),
 * "cifar100:DIR", "stl10:DIR". IDX files may be gzip'd (.gz) or not.
 * Files: IDX {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; CIFAR-10
 * data_batch_1..5.bin / test_batch.bin; CIFAR-100 train.bin / test.bin (fine
 * labels, 100 classes); STL-10 {train,test}_X.bin and {train,test}_y.bin.
 * On error *out is NULL and 'd' holds a message naming the file. */
attnc_status rt_dataset_open(const char *spec, rt_split split, rt_dataset **out, ir_diag *d);
/* rt_dataset_open, but with 'from_files' a folder set keeps only its file
 * names and decodes a sample when it is read (other sets ignore it). */
attnc_status rt_dataset_open_as(const char *spec, rt_split split, int from_files, rt_dataset **out, ir_diag *d);

/* RandomResizedCrop's parameters for rt_dataset_sample. */
typedef struct {
  double min_scale; /* smallest area fraction (torchvision's default 0.08) */
  uint64_t seed;    /* the box's random draws */
} rt_random_crop;

/* Writes sample k (0 <= k < count) as channels*height*width CHW bytes to
 * 'dst': the stored view (copied, or decoded from its file, resized and
 * centre-cropped as at opening), or with 'crop' a RandomResizedCrop of the
 * original (the file's whole image for sets read from files, else the
 * stored one) resized to height x width. Safe from several threads at once.
 * A file that cannot be read now is ATTNC_EPARSE naming it. */
attnc_status rt_dataset_sample(const rt_dataset *ds, int64_t k, const rt_random_crop *crop, uint8_t *dst,
                               ir_diag *d);
/* The network's input value of 8-bit pixel 'v' of channel 'c': scaled to
 * [0,1] and normalized with the data set's mean and std, as training sees it. */
float rt_dataset_normalized(const rt_dataset *ds, int64_t c, uint8_t v);
/* Frees 'ds' and its arrays (NULL is fine). */
void rt_dataset_destroy(rt_dataset *ds);
/* Moves 'n' samples (a seeded random choice) from *train into a new data set *held (validation).
 * The choice depends only on (train->count, n, seed); both sets keep the
 * samples' original relative order. 0 <= n <= train->count, else ATTNC_EINVAL.
 * *held is owned by the caller; 'train' shrinks in place. */
attnc_status rt_dataset_holdout(rt_dataset *train, int64_t n, uint64_t seed, rt_dataset **held, ir_diag *d);

#endif
