/* Placeholder until the Lua front end lands: reports that specs cannot be
 * lowered yet. Replaced by the real implementation. */
#include "fe.h"

/* Reports that Lua specs are not supported yet. */
attnc_status fe_lower(const fe_request *req, ir_graph **out, ir_diag *d) {
  *out = NULL;
  ir_diag_error(d, req->path, 0, "Lua specs are not supported yet");
  return ATTNC_EINVAL;
}
