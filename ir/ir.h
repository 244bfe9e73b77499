/* The attnc IR: a typed tensor graph in SSA form.
 *
 * A graph is a list of nodes in program order; every node defines exactly one
 * value, named by its index (%id). Operands refer to earlier nodes. Sources
 * (input, param, buffer, const) carry their type; every other node's type is
 * computed by shape inference (ir_infer.c). Outputs name nodes.
 */
#ifndef ATTNC_IR_H
#define ATTNC_IR_H

#include <stddef.h>
#include <stdint.h>

#include "ir_diag.h"

#define IR_MAX_RANK 8
#define IR_MAX_ATTRS 6
#define IR_MAX_INTS 16

typedef enum { IR_F32, IR_F64, IR_I64 } ir_dtype;

/* A tensor type: dtype and static shape (rank 0 is a scalar). */
typedef struct {
  ir_dtype dtype;
  int rank;
  int64_t dims[IR_MAX_RANK];
} ir_type;

enum {
  IR_OPF_SOURCE = 1 << 0,      /* no operands; type given */
  IR_OPF_UNARY = 1 << 1,       /* elementwise, one operand */
  IR_OPF_BINARY = 1 << 2,      /* elementwise, two broadcast operands */
  IR_OPF_ELEMENTWISE = 1 << 3, /* elementwise, any arity, broadcast */
  IR_OPF_REDUCTION = 1 << 4,   /* reduce over attribute 'axes' */
  IR_OPF_DIFF = 1 << 5,        /* has a gradient rule */
  IR_OPF_NOGRAD = 1 << 6,      /* piecewise constant: zero gradient */
  IR_OPF_BACKWARD = 1 << 7,    /* produced by autodiff only */
};

typedef enum {
#define IR_OP(name, mi, ma, fl, at) IR_OP_##name,
#include "ops.def"
#undef IR_OP
  IR_OP_COUNT
} ir_opcode;

typedef enum { IR_ATTR_INT, IR_ATTR_INTS, IR_ATTR_FLOAT, IR_ATTR_STR } ir_attr_kind;

/* One attribute slot of an op, from the op table. */
typedef struct {
  char name[24];
  ir_attr_kind kind;
  int has_default;
  int n;                       /* ints: count of the default */
  int64_t ints[IR_MAX_INTS];   /* int/ints default */
  double f;                    /* float default */
} ir_attr_spec;

/* What the op table says about one op. */
typedef struct {
  const char *name;
  int min_in, max_in; /* max_in -1: variadic */
  unsigned flags;
  int nattrs;
  ir_attr_spec attrs[IR_MAX_ATTRS];
} ir_op_info;

/* An attribute value on a node, in the slot order of its op. */
typedef struct {
  int set;
  int n;                     /* ints: count */
  int64_t ints[IR_MAX_INTS]; /* int: ints[0] */
  double f;
  char *s; /* owned */
} ir_attr;

/* Where a node came from: a Lua spec file:line (file NULL when unknown) and
 * the dotted module scope that created it ("layers.3.att", NULL at top). */
typedef struct {
  const char *file;  /* interned by the graph */
  int line;
  const char *scope; /* interned by the graph */
} ir_loc;

typedef struct ir_node {
  int id;
  ir_opcode op;
  int nin;
  int *in; /* operand node ids, owned */
  ir_type type;
  ir_attr attrs[IR_MAX_ATTRS];
  ir_loc loc;
} ir_node;

typedef struct {
  char *name; /* owned */
  int node;
} ir_output;

typedef struct ir_graph {
  char *name;
  int nnodes, cap;
  ir_node **nodes;
  int noutputs, outcap;
  ir_output *outputs;
  int nfiles;
  char **files; /* interned strings: location files and scopes */
} ir_graph;

/* ---- op table (ir_ops.c) ---- */

/* Returns the table row of 'op'. */
const ir_op_info *ir_op_info_get(ir_opcode op);
/* 1 if 'op' is elementwise (unary, binary or any-arity broadcast). */
int ir_op_elementwise(ir_opcode op);
/* 1 if 'op' is a source (input, param, buffer, const). */
int ir_op_source(ir_opcode op);
/* Returns the op named 'name', or -1. */
int ir_op_lookup(const char *name);
/* Returns the slot of attribute 'name' of 'op', or -1. */
int ir_op_attr_index(ir_opcode op, const char *name);

/* ---- types (ir_type.c) ---- */

const char *ir_dtype_name(ir_dtype t);
/* Parses "f32"/"f64"/"i64" into *out; returns 0, or -1 if unknown. */
int ir_dtype_parse(const char *s, ir_dtype *out);
size_t ir_dtype_size(ir_dtype t);
/* Returns the number of elements of 't' (1 for a scalar). */
int64_t ir_type_numel(const ir_type *t);
int ir_type_equal(const ir_type *a, const ir_type *b);
/* Makes a type from a dims array. */
ir_type ir_type_make(ir_dtype dt, int rank, const int64_t *dims);
/* Writes "f32[4,3,32,32]" into buf (always NUL-terminated). */
void ir_type_format(const ir_type *t, char *buf, size_t size);

/* ---- graphs (ir_graph.c) ---- */

/* Creates an empty graph named 'name'. */
ir_graph *ir_graph_create(const char *name);
/* Frees 'g' and all its nodes. */
void ir_graph_destroy(ir_graph *g);
/* Returns a location whose file name and scope are interned in 'g'. */
ir_loc ir_graph_loc(ir_graph *g, const char *file, int line, const char *scope);
/* Returns 's' interned in 'g' (NULL stays NULL). */
const char *ir_graph_intern(ir_graph *g, const char *s);
/* Appends a node of 'op' with operands 'in' (copied); its attributes start
 * at their defaults and its type zeroed. Returns the node (owned by g). */
ir_node *ir_graph_append(ir_graph *g, ir_opcode op, const int *in, int nin, ir_loc loc);
/* Appends a source node (input/param/buffer with a name, const with a value). */
ir_node *ir_graph_source(ir_graph *g, ir_opcode op, const char *name, double value,
                         ir_type type, ir_loc loc);
/* Adds output 'name' = node 'id'. */
void ir_graph_add_output(ir_graph *g, const char *name, int id);
/* Returns the first source node of kind 'op' named 'name', or NULL. */
ir_node *ir_graph_find_source(const ir_graph *g, ir_opcode op, const char *name);
/* Returns a deep copy of 'g'. */
ir_graph *ir_graph_clone(const ir_graph *g);
/* Appends a copy of node 'n' (of any graph: op, type, attributes,
 * location) with operands 'in'. Returns the copy. */
ir_node *ir_graph_copy_node(ir_graph *g, const ir_node *n, const int *in);
/* Moves the contents of 'from' into 'g' (whose old contents are freed)
 * and destroys 'from': how a pass that rebuilds a graph replaces it. */
void ir_graph_take(ir_graph *g, ir_graph *from);

/* ---- node attributes (ir_graph.c): setters return 0, or -1 for an attribute
 * the op does not have or of another kind. ---- */
int ir_set_int(ir_node *n, const char *name, int64_t v);
int ir_set_ints(ir_node *n, const char *name, const int64_t *v, int count);
int ir_set_float(ir_node *n, const char *name, double v);
int ir_set_str(ir_node *n, const char *name, const char *v);
/* Getters return the attribute (or its default when unset). */
int64_t ir_get_int(const ir_node *n, const char *name);
const int64_t *ir_get_ints(const ir_node *n, const char *name, int *count);
double ir_get_float(const ir_node *n, const char *name);
const char *ir_get_str(const ir_node *n, const char *name);
/* Name of a source node (input/param/buffer), or NULL. */
const char *ir_node_name(const ir_node *n);

/* ---- shape inference (ir_infer.c) ---- */

/* Computes the result type of non-source node 'n' from its operands and
 * attributes into *out. Returns 0, or -1 after reporting why to 'd' (naming
 * the op, the operands and their shapes, and the node's location). */
int ir_infer_type(const ir_graph *g, const ir_node *n, ir_type *out, ir_diag *d);
/* Infers and stores n->type; for sources, keeps the given type. */
int ir_infer_node(ir_graph *g, ir_node *n, ir_diag *d);
/* Numpy broadcast of a and b into *out; returns 0, or -1 if incompatible. */
int ir_broadcast_shapes(const ir_type *a, const ir_type *b, ir_type *out);

/* ---- verifier (ir_verify.c) ---- */

/* Checks arity, attributes, types, shapes and SSA dominance of every node and
 * every output. Reports every problem found to 'd'; returns their count. */
int ir_verify(const ir_graph *g, ir_diag *d);

/* ---- text form (ir_print.c, ir_parse.c) and Graphviz (ir_dot.c) ---- */

/* Returns the text form of 'g' (caller frees). */
char *ir_print(const ir_graph *g);
/* Parses text into a graph; 'file' names the text in errors, which have the
 * form "file:line:col: message". Returns NULL on error. */
ir_graph *ir_parse(const char *text, const char *file, ir_diag *d);
/* Returns Graphviz dot text of 'g' (caller frees). */
char *ir_dot(const ir_graph *g);

#endif
