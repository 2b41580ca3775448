/* A generated library opened for the C benchmark tools (ab.c, watch.c):
 * its API table found by prefix, one model, and input buffers of a fixed
 * pattern (values do not change the work) and output buffers. Include after
 * the library's generated header, which defines the C API; errors end the
 * program with a message that starts with the tool's name. */
#ifndef AOTC_BENCH_OPEN_LIB_H
#define AOTC_BENCH_OPEN_LIB_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "tensor_bytes.h"

typedef const AotcApi *(*ApiFn)(void);

typedef struct {
  const AotcApi *api;
  AotcModel *model;
  int inputs, outputs;
  void **in, **out;
  size_t *in_bytes, *out_bytes;
} Lib;

static void open_lib(Lib *lib, const char *tool, const char *path, const char *prefix, int threads) {
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    fprintf(stderr, "%s: %s\n", tool, dlerror());
    exit(1);
  }
  char symbol[256];
  snprintf(symbol, sizeof symbol, "%s_api", prefix);
  ApiFn api = (ApiFn)dlsym(handle, symbol);
  if (!api) {
    fprintf(stderr, "%s: %s has no %s\n", tool, path, symbol);
    exit(1);
  }
  lib->api = api();
  if (lib->api->create(&lib->model) != AOTC_OK || lib->api->set_num_threads(lib->model, threads) != AOTC_OK) {
    fprintf(stderr, "%s: cannot create a %s model with %d threads: %s\n", tool, prefix, threads, lib->api->last_error(lib->model));
    exit(1);
  }
  lib->inputs = lib->api->num_inputs(lib->model);
  lib->outputs = lib->api->num_outputs(lib->model);
  lib->in = calloc(lib->inputs, sizeof(void *));
  lib->out = calloc(lib->outputs, sizeof(void *));
  lib->in_bytes = calloc(lib->inputs, sizeof(size_t));
  lib->out_bytes = calloc(lib->outputs, sizeof(size_t));
  for (int i = 0; i < lib->inputs; i++) {
    AotcTensorInfo info;
    lib->api->input_info(lib->model, i, &info);
    lib->in_bytes[i] = bytes_of(&info);
    unsigned char *p = malloc(lib->in_bytes[i] + 1);
    for (size_t j = 0; j < lib->in_bytes[i]; j++) p[j] = (unsigned char)(j % 7);
    lib->in[i] = p;
  }
  for (int i = 0; i < lib->outputs; i++) {
    AotcTensorInfo info;
    lib->api->output_info(lib->model, i, &info);
    lib->out_bytes[i] = bytes_of(&info);
    lib->out[i] = malloc(lib->out_bytes[i] + 1);
  }
}

#endif
