/* Helpers shared by the fuzz targets of tests/fuzz. */
#ifndef ATTNC_FUZZ_COMMON_H
#define ATTNC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "ir.h"

/* The libFuzzer entry point each target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses data[0..size) as IR text named "fuzz.ir" and verifies it. Returns
 * the graph if both succeed (caller destroys), else NULL; *text gets the
 * NUL-terminated copy of the input (caller frees; NULL if out of memory). */
ir_graph *fuzz_parse_verified(const uint8_t *data, size_t size, char **text, ir_diag *d);

/* Writes into path[64] the name of this process's temporary file under /tmp
 * ending in 'suffix' (".lua", ".ckpt", ...; a directory with ""). */
void fuzz_temp_path(const char *suffix, char path[64]);
/* Writes data[0..size) to file 'path'. Returns 0, or -1. */
int fuzz_write_file(const char *path, const uint8_t *data, size_t size);
/* fuzz_temp_path, then fuzz_write_file. Returns 0, or -1. */
int fuzz_write_temp(const uint8_t *data, size_t size, const char *suffix, char path[64]);

#endif
