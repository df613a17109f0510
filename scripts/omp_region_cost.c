/* What one OpenMP parallel region costs under the wait policy in the environment (docs/perf/threads.md, "2 threads:
   where the step's time goes"): a serial gap (the Python between two kernels), then a region of 2 threads whose
   halves each take BODY us of arithmetic; the region's wall time above the ideal BODY us is the cost of waking the
   worker and of the end barrier. Build and run:

       gcc -O2 -fopenmp scripts/omp_region_cost.c -o /tmp/omp_region_cost
       for p in "OMP_WAIT_POLICY=passive" "GOMP_SPINCOUNT=10000" "OMP_WAIT_POLICY=active"; do
           env $p /tmp/omp_region_cost 100 2000; done
*/
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static volatile double sink;
static double per_us = 1000; /* loop iterations per microsecond, calibrated in main */

static void work(double us) { /* a fixed amount of arithmetic, not a wait on the clock: it needs its core */
    double s = 0;
    for (long i = 0, n = (long)(us * per_us); i < n; i++) s += i * 1e-9;
    sink = s;
}

int main(int argc, char** argv) {
    double body = argc > 1 ? atof(argv[1]) : 100;
    int reps = argc > 2 ? atoi(argv[2]) : 2000;
    double best = 1e9;
    for (int k = 0; k < 20; k++) {
        double t0 = now();
        work(1000);
        if (now() - t0 < best) best = now() - t0;
    }
    per_us *= 1000e-6 / best;
    const double gaps[] = {20, 200, 2000};
    for (int g = 0; g < 3; g++) {
        double total = 0, least = 1e9;
        for (int r = 0; r < reps; r++) {
            work(gaps[g]);
            double t0 = now();
#pragma omp parallel num_threads(2)
            work(body);
            double d = now() - t0;
            total += d;
            least = d < least ? d : least;
        }
        printf("gap %5.0f us, halves of %4.0f us: region %6.1f us mean (%.1f above the halves), best %6.1f\n",
               gaps[g], body, total / reps * 1e6, total / reps * 1e6 - body, least * 1e6);
    }
    return 0;
}
