/* Image-folder data sets (ImageNet subsets such as Imagenette or Tiny
 * ImageNet, or any folder of PNG and JPEG files sorted into one folder per
 * class), read by rt_dataset_open for the spec "folder:DIR[:SIZE[:RESIZE]]". */
#ifndef ATTNC_RT_DATA_FOLDER_H
#define ATTNC_RT_DATA_FOLDER_H

#include "rt_data.h"

/* Fills 'ds' (name, normalization set by the caller) with the 'split' of
 * the image folder 'arg' ("DIR", "DIR:SIZE" or "DIR:SIZE:RESIZE"): DIR/train/<class>/...,
 * and DIR/val/<class>/... (or DIR/test/...) for the test split, or the
 * files DIR/val/val_annotations.txt lists in DIR/val/images (Tiny
 * ImageNet). Images in subfolders of a class folder belong to the class.
 * Classes are the sorted folder names of DIR/train; every image becomes 3 x
 * SIZE x SIZE (shorter side resized to RESIZE, default SIZE, and the centre
 * SIZE x SIZE kept); without SIZE
 * every image must have one size. With 'from_files', or when the decoded
 * images would take more than half the machine's memory, only the file
 * names are kept (ds->paths) and each sample is decoded when it is read;
 * otherwise every image is decoded now and a file that is not a readable
 * PNG or JPEG is an error naming it. */
attnc_status rt_data_read_folder(rt_dataset *ds, const char *arg, rt_split split, int from_files, ir_diag *d);
/* Writes sample k of folder set 'ds', read from its files (ds->paths), as
 * its stored view: 3 x height x width CHW bytes, resized and centre-cropped
 * as at opening. A file that cannot be read now, or (without SIZE) has
 * another size, is ATTNC_EPARSE naming it. */
attnc_status rt_data_folder_view(const rt_dataset *ds, int64_t k, uint8_t *dst, ir_diag *d);
/* Decodes the PNG or JPEG file 'path' (told by its first bytes) into
 * *rgb, *w x *h interleaved RGB bytes (malloc'd; gray and palette images
 * expanded). An unreadable or corrupt file is ATTNC_EPARSE naming it. */
attnc_status rt_data_decode_image(const char *path, int64_t *w, int64_t *h, uint8_t **rgb, ir_diag *d);

#endif
