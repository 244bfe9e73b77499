/* safetensors files: named tensors with a JSON header, the format in which
 * inputs, weights and outputs move between attnc, PyTorch and Hugging Face.
 *
 * Layout: 8-byte little-endian header length n, n bytes of JSON mapping each
 * name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
 * to the data area) plus an optional "__metadata__" string map, then the raw
 * little-endian data. */
#ifndef ATTNC_RT_SAFETENSORS_H
#define ATTNC_RT_SAFETENSORS_H

#include <stddef.h>

#include "ir_tensor.h"

/* Largest header accepted when reading (HF's limit is the same). */
#define RT_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)

/* Reads the safetensors file 'path' into a new bundle *out (caller destroys),
 * in header order, with "__metadata__" as the bundle's metadata. F32, F64 and
 * I64 tensors are read as is; F16 and BF16 become f32; I32, I16, I8, U8 and
 * BOOL become i64. Every malformed header or data layout is rejected with a
 * message naming the file and, where it applies, the tensor. Returns ATTNC_OK,
 * ATTNC_EIO (cannot open or read), ATTNC_EPARSE (malformed) or ATTNC_ENOMEM. */
attnc_status rt_safetensors_read(const char *path, ir_bundle **out, ir_diag *d);

/* Same as rt_safetensors_read for a file already in memory ('buf', 'size'
 * bytes); 'name' names it in messages. */
attnc_status rt_safetensors_parse(const void *buf, size_t size, const char *name, ir_bundle **out,
                                  ir_diag *d);

/* Writes bundle 'b' (tensors in bundle order, metadata as "__metadata__") to
 * 'path' atomically: the data goes to a temporary file in the same directory,
 * is flushed to disk and renamed over 'path', so an existing file is either
 * kept or fully replaced. The header is padded with spaces to a multiple of 8
 * bytes. Returns ATTNC_OK, ATTNC_EINVAL (a tensor named "__metadata__"),
 * ATTNC_EIO or ATTNC_ENOMEM. */
attnc_status rt_safetensors_write(const char *path, const ir_bundle *b, ir_diag *d);

#endif
