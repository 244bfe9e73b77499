/* Image-folder data sets (ImageNet subsets such as Imagenette, or any
 * folder of PNG and JPEG files sorted into one folder per class), read by
 * rt_dataset_open for the spec "folder:DIR[:SIZE]". */
#ifndef ATTNC_RT_DATA_FOLDER_H
#define ATTNC_RT_DATA_FOLDER_H

#include "rt_data.h"

/* Fills 'ds' (name, normalization set by the caller) with the 'split' of
 * the image folder 'arg' ("DIR" or "DIR:SIZE"): DIR/train/<class>/<image>,
 * and DIR/val/<class>/<image> (or DIR/test/...) for the test split. Classes
 * are the sorted folder names of DIR/train; every image becomes 3 x SIZE x
 * SIZE (shorter side resized to SIZE, centre crop); without SIZE every
 * image must have one size. A file that is not a readable PNG or JPEG is an
 * error naming it. */
attnc_status rt_data_read_folder(rt_dataset *ds, const char *arg, rt_split split, ir_diag *d);

#endif
