/* Diagnostics: a context that collects errors so a stage can report several
 * at once, and the status codes every library function returns. */
#ifndef ATTNC_IR_DIAG_H
#define ATTNC_IR_DIAG_H

#include <stdarg.h>

/* Status of a library call. Library code never exits or prints on its own. */
typedef enum {
  ATTNC_OK = 0,
  ATTNC_EINVAL,   /* bad argument or option */
  ATTNC_EPARSE,   /* malformed text, spec or file */
  ATTNC_EVERIFY,  /* graph fails the verifier */
  ATTNC_EIO,      /* file system */
  ATTNC_ENOMEM,   /* allocation failed or a cap was hit */
  ATTNC_ERUNTIME, /* execution failed */
} attnc_status;

typedef struct ir_diag ir_diag;

/* Creates an empty diagnostic context. */
ir_diag *ir_diag_create(void);
/* Frees 'd' and its messages. */
void ir_diag_destroy(ir_diag *d);
/* Records an error at file:line (file may be NULL: no location prefix).
 * The stored message reads "file:line: message". */
void ir_diag_error(ir_diag *d, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ir_diag_verror(ir_diag *d, const char *file, int line, const char *fmt, va_list ap);
/* Returns the number of errors recorded. */
int ir_diag_count(const ir_diag *d);
/* Returns message i (0-based), or NULL. */
const char *ir_diag_message(const ir_diag *d, int i);
/* Returns all messages, one per line (owned by d, valid until the next call). */
const char *ir_diag_text(ir_diag *d);
/* Forgets all errors. */
void ir_diag_clear(ir_diag *d);

#endif
