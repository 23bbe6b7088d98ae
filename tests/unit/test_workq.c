/* Unit tests: the blocking-work pool (common/workq) runs every queued job, in parallel, and
 * drains before it refuses new ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common/workq.h"

static atomic_int ran;

static void count_job(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void slow_job(void *arg)
{
    sleep_ms(*(const long *)arg);
    atomic_fetch_add(&ran, 1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_every_pushed_job_runs_before_free_returns(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    struct workq *q = workq_new(3);
    for (int i = 0; i < 1000; i++)
        assert_true(workq_push(q, count_job, NULL));
    workq_free(q);
    assert_int_equal(atomic_load(&ran), 1000);
}

static void test_jobs_run_on_separate_threads_at_once(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    static const long ms = 200;
    struct workq *q = workq_new(4);
    double t0 = now_ms();
    for (int i = 0; i < 4; i++)
        assert_true(workq_push(q, slow_job, (void *)&ms));
    workq_drain(q);
    double took = now_ms() - t0;
    assert_int_equal(atomic_load(&ran), 4);
    /* Four 200 ms jobs on four threads: about 200 ms, far from the 800 ms of one thread. */
    assert_true(took < 600);
    workq_free(q);
}

static void test_drain_runs_queued_jobs_then_push_refuses(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    static const long ms = 20;
    struct workq *q = workq_new(1);
    for (int i = 0; i < 5; i++)
        assert_true(workq_push(q, slow_job, (void *)&ms));
    workq_drain(q); /* the four still queued behind the first run too */
    assert_int_equal(atomic_load(&ran), 5);
    assert_false(workq_push(q, count_job, NULL));
    assert_int_equal(atomic_load(&ran), 5);
    workq_drain(q); /* a second drain is harmless */
    workq_free(q);
}

static void test_zero_threads_means_one(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    struct workq *q = workq_new(0);
    assert_true(workq_push(q, count_job, NULL));
    workq_free(q);
    assert_int_equal(atomic_load(&ran), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_pushed_job_runs_before_free_returns),
        cmocka_unit_test(test_jobs_run_on_separate_threads_at_once),
        cmocka_unit_test(test_drain_runs_queued_jobs_then_push_refuses),
        cmocka_unit_test(test_zero_threads_means_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
