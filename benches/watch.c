/* A generated library's run time over a while, batch by batch, with where
 * the cores were (the cache-line round trip between the first two CPUs,
 * bench_loop.c) after each batch.
 *
 *   watch LIB PREFIX THREADS SECONDS [RUNS]
 *
 * Runs batches of RUNS runs (default 10) for SECONDS (two batches at
 * least, so that THREADS 0 runs both counts however busy the machine is)
 * and prints a line per batch: its start (s), the thread count, the runs,
 * ms per run and the round trip (ns). THREADS 0 alternates 1 and 2 threads batch by batch, so that a
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
 * Inputs are a fixed pattern (values do not change the work). With
 * AOTC_ADAPTIVE_THREADS=0 every 2-thread run uses both threads (else a run
 * may take the calling thread alone where that is faster: the README's
 * Threads section).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "open_lib.h"

double aotc_bench_round_trip_ns(long rounds);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: watch LIB PREFIX THREADS SECONDS [RUNS]\n");
    return 2;
  }
  int threads = atoi(argv[3]), runs = argc > 5 ? atoi(argv[5]) : 10;
  double seconds = atof(argv[4]);
  if (threads < 0 || runs < 1) {
    fprintf(stderr, "watch: THREADS must be at least 0 and RUNS at least 1\n");
    return 2;
  }
  Lib lib;
  open_lib(&lib, "watch", argv[1], argv[2], threads > 0 ? threads : 1);
  printf("# start_s threads runs ms_per_run round_trip_ns\n");
  double start = now();
  for (long batch = 0; batch < 2 || now() - start < seconds; batch++) {
    int t = threads > 0 ? threads : 1 + (int)(batch % 2);
    if (lib.api->set_num_threads(lib.model, t) != AOTC_OK) {
      fprintf(stderr, "watch: cannot set %d threads\n", t);
      return 1;
    }
    double begin = now();
    for (int r = 0; r < runs; r++)
      if (lib.api->run(lib.model, (const void *const *)lib.in, lib.in_bytes, lib.out, lib.out_bytes) != AOTC_OK) {
        fprintf(stderr, "watch: run failed: %s\n", lib.api->last_error(lib.model));
        return 1;
      }
    double ms = (now() - begin) * 1e3 / runs;
    printf("%.3f %d %d %.3f %.0f\n", begin - start, t, runs, ms, aotc_bench_round_trip_ns(20000));
    fflush(stdout);
  }
  lib.api->free(lib.model);
  return 0;
}
