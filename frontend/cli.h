/* The attnc command-line program: the command table (main.c), the shared
 * option parser and error conventions (cli_args.c), graph and tensor loading
 * shared by commands (cli_load.c), and one cli_<cmd>.c file per command.
 *
 * Adding a command: write frontend/cli_<cmd>.c defining
 * `int cli_<cmd>(int argc, char **argv)` (argv[0] is the command name; build
 * a cli_spec, call cli_parse, do the work, return an exit code), declare it
 * below, and add one row to the table in main.c.
 *
 * Exit codes: 0 success (and --help), 1 the library reported an error
 * (parse, verify, runtime: its diagnostics are printed), 2 usage error (bad
 * command, option or value; a missing or unreadable file), printed as one
 * line "attnc: <command>: <message>" on stderr. */
#ifndef ATTNC_CLI_H
#define ATTNC_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "fe.h"
#include "ir.h"
#include "ir_tensor.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };
#define CLI_HELP_SHOWN (-1) /* cli_parse printed --help: exit 0 */

/* ---- commands (one file each) ---- */
int cli_dump(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_summary(int argc, char **argv);
int cli_gradcheck(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_infer(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_gradcam(int argc, char **argv);

/* ---- option parsing (cli_args.c) ---- */

/* Parses the value of a custom option into 'dst'; returns 0, or -1 after
 * writing a short reason into err. */
typedef int (*cli_parse_fn)(void *dst, const char *value, char *err, size_t errsize);

/* One option of a command. Its kind follows from the fields:
 *   flag:   metavar NULL, parse NULL, dst an int* set to 1;
 *   string: metavar set, parse NULL, dst a const char** (last one wins);
 *   custom: metavar set, parse set, dst passed to parse (may accumulate). */
typedef struct {
  const char *name;    /* "--format" or "-D" */
  const char *metavar; /* "text|dot", shown in help */
  const char *help;    /* one line */
  void *dst;
  cli_parse_fn parse;
} cli_opt;

/* A command's interface: its help text, options and positional arguments. */
typedef struct {
  const char *name;     /* "dump" */
  const char *usage;    /* "attnc dump FILE.ir|MODEL.lua [options]" */
  const char *about;    /* what it does, a few lines */
  const char *examples; /* example command lines, one per line */
  const cli_opt *opts;
  int nopts;
  const char *posname; /* name of the positional arguments in errors ("FILE") */
  int npos;            /* exact number of positional arguments */
  const char **pos;    /* receives them */
} cli_spec;

/* Parses argv[1..argc) (argv[0] is the command) against 'spec'. "--help"
 * and "-h" print the command's help to stdout. Returns 0, CLI_HELP_SHOWN, or
 * CLI_EXIT_USAGE after printing one error line. */
int cli_parse(const cli_spec *spec, int argc, char **argv);
/* Prints the help of 'spec' (usage, about, options, examples) to 'f'. */
void cli_print_help(const cli_spec *spec, FILE *f);
/* Prints "attnc: <cmd>: <message>" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the diagnostics of 'd' on stderr (or a generic line naming 'cmd'
 * if there are none); returns CLI_EXIT_FAIL. */
int cli_diag_fail(const char *cmd, ir_diag *d);

/* Model options shared by every command that lowers a MODEL.lua. */
#define CLI_MAX_DEFINES 64
typedef struct {
  int ndefines;
  char *keys[CLI_MAX_DEFINES], *values[CLI_MAX_DEFINES]; /* owned */
  int64_t shape[3];                                      /* 0: not given */
  int64_t batch;                                         /* 0: not given */
  int train;
} cli_model;

/* Option rows for the model options; 'm' is a cli_model*. */
#define CLI_OPT_DEFINE(m) \
  {"-D", "key=value", "set a model option declared by the spec (repeatable)", (m), cli_parse_define}
#define CLI_OPT_SHAPE(m) \
  {"--shape", "CxHxW", "input shape per sample (default: the spec's input_shape)", (m), \
   cli_parse_shape}
#define CLI_OPT_BATCH(m) {"--batch", "N", "batch size (default 1)", (m), cli_parse_batch}
#define CLI_OPT_TRAIN(m) \
  {"--train", NULL, "training graph: batch statistics, loss, new running statistics", \
   &(m)->train, NULL}

/* The --data values rt_dataset_open takes, for the options' help. */
#define CLI_DATA_SPECS "fashion-mnist[:DIR] | mnist:DIR | cifar10:DIR | cifar100:DIR | stl10:DIR | folder:DIR[:SIZE[:RESIZE]]"

/* --threads N for commands that run compiled code; 'dst' is an int*. */
#define CLI_OPT_THREADS(dst) \
  {"--threads", "N", "worker threads (default: every core)", (dst), cli_parse_threads}
int cli_parse_threads(void *dst, const char *value, char *err, size_t errsize);
/* Parses all of 's' as a decimal integer from 'lo' to 'hi' into *out;
 * returns 0, or -1 (the caller words the error). */
int cli_parse_int(const char *s, long long lo, long long hi, long long *out);
/* --no-fuse: compile one kernel per node (pass_fuse off), for comparison. */
#define CLI_OPT_NO_FUSE(dst) \
  {"--no-fuse", NULL, "one kernel per node: turn fusion off (for comparison)", (dst), NULL}

/* Parsers of the model options (dst is a cli_model*). */
int cli_parse_define(void *dst, const char *value, char *err, size_t errsize);
/* Sets option key[0..keylen) to 'value' in 'm' (the last setting wins);
 * returns 0, or -1 after writing a short reason into err. */
int cli_model_set(cli_model *m, const char *key, size_t keylen, const char *value, char *err,
                  size_t errsize);
int cli_parse_shape(void *dst, const char *value, char *err, size_t errsize);
int cli_parse_batch(void *dst, const char *value, char *err, size_t errsize);
/* Fills *req for lowering 'path' with the options of 'm' (req points into m). */
void cli_model_request(const cli_model *m, const char *path, fe_request *req);
/* Returns 1 if any model option was given. */
int cli_model_given(const cli_model *m);
/* Frees the strings held by 'm'. */
void cli_model_free(cli_model *m);

/* ---- loading (cli_load.c) ---- */

/* Returns 1 if 'path' names a Lua model spec (ends in ".lua"). */
int cli_is_model(const char *path);
/* Checks that 'path' can be opened for reading; else prints a usage error
 * and returns CLI_EXIT_USAGE. */
int cli_check_readable(const char *cmd, const char *path);
/* Loads 'path' into a verified graph *out: IR text is parsed and verified
 * (every error reported), a MODEL.lua is lowered with 'req' (NULL for IR).
 * Returns an exit code after printing any error. */
int cli_load_graph(const char *cmd, const char *path, const fe_request *req, ir_graph **out);
/* Reads the safetensors file 'path' into *out; returns an exit code. */
int cli_read_tensors(const char *cmd, const char *path, ir_bundle **out);
/* Applies compilation stage 'stage' (NULL or "ir": the graph as loaded) to
 * *g. Returns an exit code (CLI_EXIT_USAGE for an unknown stage). */
int cli_apply_stage(const char *cmd, const char *stage, int fuse, ir_graph **g);

/* ---- model loading for train/eval/infer (cli_train.c) ---- */

/* Lowers MODEL.lua 'path' with the options of 'm' at input 'shape' (C,H,W)
 * and 'batch' in 'mode'. Adds -D in_channels=C and (classes > 0) -D
 * classes=K to 'm' when the user gave none and the spec declares them (they
 * stay in 'm'). Returns an exit code after printing any error. */
int cli_train_lower(const char *cmd, cli_model *m, const char *path, fe_mode mode, int64_t batch,
                    const int64_t shape[3], int classes, ir_graph **out);
/* Adds to 'm' every -D option recorded in a checkpoint's options JSON
 * ("defines") that 'm' does not have. */
void cli_train_defines_from(cli_model *m, const char *options_json);
/* The same for the checkpoint file 'path' (a state_dict without options
 * adds none). A file rt_ckpt_load rejects is reported; returns an exit code. */
int cli_defines_from_checkpoint(const char *cmd, const char *path, cli_model *m);

#endif
