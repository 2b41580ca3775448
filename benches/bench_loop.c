/* Times a generated library's `run` in a C loop, so that the side-by-side
 * harness (benches/side_by_side.py, through ctypes) measures the bare call
 * on preallocated buffers and no Python per run.
 *
 *   double aotc_bench_loop(run, model, inputs, input_bytes, outputs, output_bytes, runs)
 *
 * returns the seconds per run (CLOCK_MONOTONIC), or -1 if a run fails.
 *
 *   double aotc_bench_round_trip_ns(rounds)
 *
 * returns the mean nanoseconds for a cache line to go from one core to
 * another and back (two threads pinned to the first two CPUs the process
 * may use pass a counter back and forth), or -1 with fewer than two CPUs.
 * On the 2-vCPU VMs aotc is developed on it is ~60 ns at times and
 * 110-350 ns at others (the host places the vCPUs apart), and every
 * runtime's 2-thread times depend on it: the harness prints it per row.
 *
 *   int aotc_bench_first_two_cpus(int cpus[2]); void aotc_bench_pin(cpu)
 *
 * the first two CPUs the process may use (0 when it may use fewer), and
 * pinning the calling thread to one (for benches/cross_core.c too).
 *
 *   int aotc_bench_placement(before_ns, after_ns)
 *
 * where the two CPUs were while something ran between two round trips:
 * 0 near (sharing a last-level cache), 1 far, -1 neither (the placement
 * changed, a thread shared its CPU, or there is one CPU). The rule of
 * tools/placement.py, which the Python tools use, for benches/ab.c and
 * benches/cross_core.c.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

typedef struct AotcModel AotcModel;
typedef int (*RunFn)(AotcModel *, const void *const *, const size_t *, void *const *, const size_t *);

double aotc_bench_loop(RunFn run, AotcModel *model, const void *const *inputs, const size_t *input_bytes,
                       void *const *outputs, const size_t *output_bytes, int runs) {
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int i = 0; i < runs; i++)
    if (run(model, inputs, input_bytes, outputs, output_bytes)) return -1.0;
  clock_gettime(CLOCK_MONOTONIC, &end);
  return ((end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) * 1e-9) / runs;
}

static _Alignas(64) atomic_long ball;

struct Partner {
  int cpu;
  long rounds;
};

void aotc_bench_pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int aotc_bench_first_two_cpus(int cpus[2]) {
  cpu_set_t allowed;
  int found = 0;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
      if (CPU_ISSET(c, &allowed)) cpus[found++] = c;
  return found == 2;
}

static void *partner(void *arg) {
  struct Partner *p = arg;
  aotc_bench_pin(p->cpu);
  for (long i = 0; i < p->rounds; i++) {
    while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i + 1) {
    }
    atomic_store_explicit(&ball, 2 * i + 2, memory_order_release);
  }
  return NULL;
}

double aotc_bench_round_trip_ns(long rounds) {
  cpu_set_t allowed;
  int cpus[2];
  if (sched_getaffinity(0, sizeof allowed, &allowed) || !aotc_bench_first_two_cpus(cpus)) return -1.0;
  struct Partner p = {cpus[1], rounds};
  pthread_t thread;
  atomic_store(&ball, 0);
  if (pthread_create(&thread, NULL, partner, &p)) return -1.0;
  aotc_bench_pin(cpus[0]);
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < rounds; i++) {
    atomic_store_explicit(&ball, 2 * i + 1, memory_order_release);
    while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i + 2) {
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  pthread_join(thread, NULL);
  sched_setaffinity(0, sizeof allowed, &allowed);
  return ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / rounds;
}

/* tools/placement.py's thresholds (ns) */
#define NEAR_NS 150.0
#define FAR_NS 200.0
#define FAR_MAX_NS 1000.0

int aotc_bench_placement(double before, double after) {
  double lo = before < after ? before : after, hi = before < after ? after : before;
  if (lo >= 0 && hi < NEAR_NS) return 0;
  if (lo >= FAR_NS && hi <= FAR_MAX_NS) return 1;
  return -1;
}
