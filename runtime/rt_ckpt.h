/* Training checkpoints: a safetensors file holding the training state
 * (parameters, buffers, optimizer state) plus "attnc.*" metadata (epoch,
 * batch, step, seed, model path, options, spec hash), written atomically. */
#ifndef ATTNC_RT_CKPT_H
#define ATTNC_RT_CKPT_H

#include <stdint.h>

#include "ir_tensor.h"

typedef struct {
  int64_t epoch;             /* epochs completed */
  int64_t batch;             /* batches of the current epoch completed (0 at an epoch boundary) */
  int64_t step;              /* optimizer steps so far */
  uint64_t seed;             /* data order / augmentation seed */
  char model[1024];          /* model file path as given */
  char options[4096];        /* "-D" options and training options, as JSON text */
  char spec_hash[80];        /* hash of the model file's bytes (FNV-1a 64, hex), no git involved */
} rt_ckpt_info;

/* Writes 'state' (tensors: params by their state_dict names, buffers such as
 * running_mean/var, optimizer state "optim.<p>.momentum") plus 'info' as
 * metadata ("attnc.format" = "1", "attnc.epoch", "attnc.batch", "attnc.step",
 * "attnc.seed", "attnc.model", "attnc.options", "attnc.spec_hash"; 'state's
 * own metadata is kept) to 'path' atomically (temporary file, fsync, rename:
 * rt_safetensors_write does this). An existing file at 'path' survives a
 * failed write. Returns ATTNC_OK, ATTNC_EINVAL, ATTNC_EIO or ATTNC_ENOMEM. */
attnc_status rt_ckpt_save(const char *path, const ir_bundle *state, const rt_ckpt_info *info, ir_diag *d);

/* Reads a checkpoint (or a plain safetensors file of weights, e.g. from
 * PyTorch: then info is zeroed and state holds only what the file has) into
 * a new bundle *state (caller destroys) and *info. Malformed "attnc.*"
 * metadata (non-numeric or negative counts, unknown format, too long text)
 * is an ATTNC_EPARSE error naming the file and the key; then *state is NULL.
 * Returns ATTNC_OK, ATTNC_EIO, ATTNC_EPARSE or ATTNC_ENOMEM. */
attnc_status rt_ckpt_load(const char *path, ir_bundle **state, rt_ckpt_info *info, ir_diag *d);

/* FNV-1a 64 of the bytes of the file 'path', as 16 lowercase hex digits into
 * out[17] (NUL-terminated). Returns ATTNC_OK or ATTNC_EIO. */
attnc_status rt_file_hash(const char *path, char out[17], ir_diag *d);

#endif
