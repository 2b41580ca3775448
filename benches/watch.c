/* A generated library's run time over a while, batch by batch, with where
 * the cores were (the cache-line round trip between the first two CPUs,
 * bench_loop.c) after each batch.
 *
 *   watch LIB PREFIX THREADS SECONDS [RUNS]
 *
 * Runs batches of RUNS runs (default 10) for SECONDS and prints a line per
 * batch: its start (s), the thread count, the runs, ms per run and the
 * round trip (ns). THREADS 0 alternates 1 and 2 threads batch by batch, so that a
 * 2-thread batch can be set against the 1-thread batches around it. On the
 * 2-vCPU VMs this is developed on, the host moves the vCPUs every few
 * seconds between sharing a last-level cache (round trip ~55-75 ns) and not
 * (~310-500 ns); `perf record` over a watch, with each sample put in its
 * batch, shows which kernels pay for the distance (see the README).
 *
 *   cc -O2 -c benches/bench_loop.c -o /tmp/bench_loop.o
 *   cc -O2 -include /tmp/a/liba.h benches/watch.c /tmp/bench_loop.o -o /tmp/watch -ldl -pthread
 *   /tmp/watch /tmp/a/liba.so a 0 60
 *
 * Inputs are a fixed pattern (values do not change the work).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tensor_bytes.h"

double aotc_bench_round_trip_ns(long rounds);

typedef const AotcApi *(*ApiFn)(void);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A buffer of `bytes` (at least one) filled with a fixed pattern. */
static void *pattern(size_t bytes) {
  unsigned char *p = malloc(bytes + 1);
  for (size_t j = 0; j < bytes; j++) p[j] = (unsigned char)(j % 7);
  return p;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: watch LIB PREFIX THREADS SECONDS [RUNS]\n");
    return 2;
  }
  void *handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    fprintf(stderr, "watch: %s\n", dlerror());
    return 1;
  }
  char symbol[256];
  snprintf(symbol, sizeof symbol, "%s_api", argv[2]);
  ApiFn api_fn = (ApiFn)dlsym(handle, symbol);
  if (!api_fn) {
    fprintf(stderr, "watch: %s has no %s\n", argv[1], symbol);
    return 1;
  }
  const AotcApi *api = api_fn();
  int threads = atoi(argv[3]), runs = argc > 5 ? atoi(argv[5]) : 10;
  double seconds = atof(argv[4]);
  AotcModel *model;
  if (api->create(&model) != AOTC_OK || runs < 1) {
    fprintf(stderr, "watch: cannot create a %s model\n", argv[2]);
    return 1;
  }
  int inputs = api->num_inputs(model), outputs = api->num_outputs(model);
  void **in = calloc(inputs + 1, sizeof(void *)), **out = calloc(outputs + 1, sizeof(void *));
  size_t *in_bytes = calloc(inputs + 1, sizeof(size_t)), *out_bytes = calloc(outputs + 1, sizeof(size_t));
  for (int i = 0; i < inputs; i++) {
    AotcTensorInfo info;
    api->input_info(model, i, &info);
    in_bytes[i] = bytes_of(&info);
    in[i] = pattern(in_bytes[i]);
  }
  for (int i = 0; i < outputs; i++) {
    AotcTensorInfo info;
    api->output_info(model, i, &info);
    out_bytes[i] = bytes_of(&info);
    out[i] = pattern(out_bytes[i]);
  }
  printf("# start_s threads runs ms_per_run round_trip_ns\n");
  double start = now();
  for (long batch = 0; now() - start < seconds; batch++) {
    int t = threads > 0 ? threads : 1 + (int)(batch % 2);
    if (api->set_num_threads(model, t) != AOTC_OK) {
      fprintf(stderr, "watch: cannot set %d threads\n", t);
      return 1;
    }
    double begin = now();
    for (int r = 0; r < runs; r++)
      if (api->run(model, (const void *const *)in, in_bytes, out, out_bytes) != AOTC_OK) {
        fprintf(stderr, "watch: run failed: %s\n", api->last_error(model));
        return 1;
      }
    double ms = (now() - begin) * 1e3 / runs;
    printf("%.3f %d %d %.3f %.0f\n", begin - start, t, runs, ms, aotc_bench_round_trip_ns(20000));
    fflush(stdout);
  }
  api->free(model);
  return 0;
}
