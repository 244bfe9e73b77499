/* attnc: the command-line driver. A table of commands; each command lives in
 * its own frontend/cli_<cmd>.c (see cli.h for how to add one). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
  const char *name;
  const char *summary; /* one line for 'attnc --help' */
  int (*run)(int argc, char **argv);
} cli_command;

static const cli_command commands[] = {
    {"dump", "load a graph (FILE.ir or MODEL.lua), verify it, print it as text or dot", cli_dump},
    {"run", "run a graph on tensors from safetensors files, write its outputs", cli_run},
    {"show", "print the metadata and tensors of a safetensors file", cli_show},
    {"summary", "per-layer table of a model: shapes, parameters, MACs, activation memory", cli_summary},
    {"gradcheck", "check a model's gradients against finite differences in float64", cli_gradcheck},
    {"train", "train a model on a data set (SGD, schedules, checkpoints, resume)", cli_train},
    {"eval", "top-1/top-5/loss and per-class accuracy of trained weights on a test split", cli_eval},
    {"infer", "classify a batch of images from a safetensors file with trained weights", cli_infer},
    {"gradcam", "Grad-CAM pictures: where trained weights find the evidence for a class", cli_gradcam},
    {"bench", "compile a model once and time its training step or inference (ms, images/s, GFLOP/s)", cli_bench},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

/* Prints the top-level help to 'f'. */
static void print_help(FILE *f) {
  fprintf(f, "usage: attnc <command> [options] FILE\n\n"
             "attnc compiles convolutional networks with attention blocks, written as Lua\n"
             "model specs or IR text, to native code.\n\ncommands:\n");
  for (int i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n'attnc <command> --help' describes a command, its options and examples.\n"
             "Exit status: 0 success, 1 error in the input (parse, verify, run), 2 usage error.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    print_help(stdout);
    return CLI_EXIT_OK;
  }
  for (int i = 0; i < NCOMMANDS; i++)
    if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  return cli_usage_error(cmd, "unknown command (see attnc --help)");
}
