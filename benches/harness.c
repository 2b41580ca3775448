/* Times one generated library through its generic C API, batch as exported.
 *
 *   harness LIB PREFIX [RUNS_PER_SAMPLE SAMPLES]
 *
 * Built against the library's generated header, which defines the C API
 * (`cc -O2 -include LIB_DIR/PREFIX.h benches/harness.c -o harness -ldl`).
 *
 * Inputs are filled with a fixed pattern (values do not change the work).
 * Prints one line: "median_us <median microseconds per run>".
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor_bytes.h"

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: harness LIB PREFIX [RUNS SAMPLES]\n"); return 2; }
  int runs = argc > 3 ? atoi(argv[3]) : 200, samples = argc > 4 ? atoi(argv[4]) : 30;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
  char symbol[256];
  snprintf(symbol, sizeof symbol, "%s_api", argv[2]);
  const AotcApi *(*get_api)(void) = (const AotcApi *(*)(void))dlsym(lib, symbol);
  if (!get_api) { fprintf(stderr, "no %s in %s\n", symbol, argv[1]); return 1; }
  const AotcApi *api = get_api();
  AotcModel *m;
  if (api->create(&m)) { fprintf(stderr, "%s\n", api->last_error(NULL)); return 1; }
  int ni = api->num_inputs(m), no = api->num_outputs(m);
  const void **in = calloc(ni, sizeof *in); size_t *in_bytes = calloc(ni, sizeof *in_bytes);
  void **out = calloc(no, sizeof *out); size_t *out_bytes = calloc(no, sizeof *out_bytes);
  for (int i = 0; i < ni; i++) {
    AotcTensorInfo info; api->input_info(m, i, &info);
    in_bytes[i] = bytes_of(&info);
    unsigned char *p = malloc(in_bytes[i]);
    for (size_t k = 0; k < in_bytes[i]; k++) p[k] = (unsigned char)((k * 37) % 61);
    if (info.dtype == 0) for (size_t k = 0; k < in_bytes[i] / 4; k++) ((float *)p)[k] = (float)((k * 37) % 61) / 61.0f - 0.5f;
    in[i] = p;
  }
  for (int i = 0; i < no; i++) {
    AotcTensorInfo info; api->output_info(m, i, &info);
    out_bytes[i] = bytes_of(&info);
    out[i] = malloc(out_bytes[i]);
  }
  for (int i = 0; i < runs; i++) api->run(m, in, in_bytes, (void *const *)out, out_bytes);
  double *t = calloc(samples, sizeof *t);
  for (int s = 0; s < samples; s++) {
    double start = now_us();
    for (int i = 0; i < runs; i++)
      if (api->run(m, in, in_bytes, (void *const *)out, out_bytes)) { fprintf(stderr, "%s\n", api->last_error(m)); return 1; }
    t[s] = (now_us() - start) / runs;
  }
  qsort(t, samples, sizeof *t, compare);
  printf("median_us %.3f\n", t[samples / 2]);
  api->free(m);
  return 0;
}
