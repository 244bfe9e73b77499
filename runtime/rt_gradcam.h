/* Grad-CAM (Selvaraju et al., ICCV 2017): where in the image a network
 * found the evidence for a class. For a feature map A [N,K,h,w] of one
 * layer and the logit y_c of class c, alpha_k = mean over (h,w) of
 * dy_c/dA_k and the map is ReLU(sum_k alpha_k A_k). The gradient comes from
 * autodiff on the IR, like every other gradient: the eval graph gets a zero
 * "probe" added to A, and the probe's gradient is dy_c/dA. */
#ifndef ATTNC_RT_GRADCAM_H
#define ATTNC_RT_GRADCAM_H

#include <stdint.h>

#include "cg.h"
#include "ir.h"
#include "ir_tensor.h"

/* The feature map a Grad-CAM explains. */
typedef struct {
  char layer[256]; /* module scope of the node ("layers.8"; "(root)" at top) */
  char op[32];     /* its op ("relu") */
  ir_type type;    /* its type, f32[N,K,h,w] */
} rt_gradcam_target;

/* Builds from eval graph 'eval' (input "input" [N,C,H,W], output "logits"
 * [N,classes]) the Grad-CAM graph *out (caller destroys): extra input
 * "gradcam.onehot" f32[N,classes] (the classes to explain), outputs
 * "logits", "gradcam.features" (A) and "grad.gradcam.probe" (the gradient of
 * sum(logits*onehot) with respect to A). A is the last 4-D float value the
 * logits depend on whose module scope is 'layer' or inside it; NULL layer:
 * the last one with more than one pixel. An unknown layer is an error that
 * lists the layers there are. *t describes A. */
attnc_status rt_gradcam_graph(const ir_graph *eval, const char *layer, ir_graph **out, rt_gradcam_target *t,
                              ir_diag *d);

/* The forward part of rt_gradcam_graph: 'eval' with the zero param
 * "gradcam.probe" added to A (its users read the sum), outputs "logits",
 * "gradcam.features" and the scalar "gradcam.score" = sum(logits*onehot).
 * The probe's gradient is the gradient with respect to A (what
 * finite-difference checks perturb). */
attnc_status rt_gradcam_forward(const ir_graph *eval, const char *layer, ir_graph **out, rt_gradcam_target *t,
                                ir_diag *d);

/* A compiled Grad-CAM program with its weights. */
typedef struct rt_gradcam rt_gradcam;

/* Compiles the Grad-CAM graph of 'eval' for 'layer' (as rt_gradcam_graph)
 * with options 'co' and loads 'weights' (every param and buffer of 'eval').
 * On success *out is owned by the caller (rt_gradcam_destroy). */
attnc_status rt_gradcam_create(const ir_graph *eval, const char *layer, const ir_bundle *weights,
                               const cg_options *co, rt_gradcam **out, ir_diag *d);
void rt_gradcam_destroy(rt_gradcam *gc);
/* The feature map 'gc' explains. */
const rt_gradcam_target *rt_gradcam_target_of(const rt_gradcam *gc);

/* What one run found, per sample (arrays owned, rt_gradcam_result_free). */
typedef struct {
  int64_t n, classes, channels, h, w; /* batch, classes, and A's [K,h,w] */
  float *logits;                      /* [n, classes] */
  int64_t *predicted;                 /* [n]: argmax of the logits (the lower class on ties) */
  int64_t *explained;                 /* [n]: the class each map explains */
  float *alpha;                       /* [n, channels]: the channel weights */
  float *cam;                         /* [n, h, w]: ReLU(sum_k alpha_k A_k), not normalized */
} rt_gradcam_result;

/* Runs 'gc' on 'input' (f32 [N,C,H,W] of the graph's shape, normalized as
 * in training) and explains for sample i class want[i], or its predicted
 * class where want[i] < 0 (want NULL: every sample's prediction). A class
 * outside [0, classes) is an error. Fills *r. */
attnc_status rt_gradcam_run(rt_gradcam *gc, const float *input, const int64_t *want, rt_gradcam_result *r,
                            ir_diag *d);
void rt_gradcam_result_free(rt_gradcam_result *r);

/* Resizes map 'src' [h,w] to 'dst' [H,W] bilinearly, sampling at pixel
 * centres (PyTorch's interpolate(align_corners=False), OpenCV's resize). */
void rt_gradcam_resize(const float *src, int64_t h, int64_t w, float *dst, int64_t H, int64_t W);

/* Draws the picture of one sample: 'pixels' (8-bit, CHW, C = 1 or 3) on
 * the left, the same image under the heat map of 'cam' [H,W] (scaled to
 * its maximum; jet colours; 'opacity' in [0,1]) on the right, each pixel
 * drawn as a scale x scale square. Writes 2*W*scale by H*scale RGB pixels
 * into 'rgb' at row stride 'stride' bytes. */
void rt_gradcam_draw(const uint8_t *pixels, int64_t channels, int64_t H, int64_t W, const float *cam,
                     double opacity, int scale, uint8_t *rgb, int64_t stride);

#endif
