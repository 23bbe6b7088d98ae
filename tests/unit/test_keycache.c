/* Unit tests: the TC3 signing-key cache answers exactly what sign_tc3_signing_key derives, for
 * many more keys than it has slots, across key rotation, and from several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cloudapi/keycache.h"
#include "cloudapi/sign.h"

static const char *const dates[] = {"2026-11-22", "2026-11-23", "2026-11-24"};
static const char *const services[] = {"cdb", "mongodb", "127"};

static void expect_derived(struct keycache *kc, const char *secret, const char *date,
                           const char *service)
{
    unsigned char want[32], got[32];
    sign_tc3_signing_key(secret, date, service, want);
    keycache_tc3_signing_key(kc, secret, date, service, got);
    assert_memory_equal(got, want, 32);
}

static void test_cached_keys_equal_derived_keys_past_the_table_size(void **state)
{
    (void)state;
    struct keycache *kc = keycache_new();
    char secret[64];
    for (int round = 0; round < 2; round++) /* the second round meets hits and overwritten slots */
        for (int a = 0; a < 300; a++)
            for (size_t d = 0; d < 3; d++)
                for (size_t s = 0; s < 3; s++) {
                    snprintf(secret, sizeof secret, "secretkey-%04d-abcdefghijklmnop", a);
                    expect_derived(kc, secret, dates[d], services[s]);
                }
    keycache_free(kc);
}

static void test_a_rotated_secret_key_gets_its_own_signing_key(void **state)
{
    (void)state;
    struct keycache *kc = keycache_new();
    unsigned char old_key[32], new_key[32];
    keycache_tc3_signing_key(kc, "old-secret", "2026-11-23", "cdb", old_key);
    keycache_tc3_signing_key(kc, "new-secret", "2026-11-23", "cdb", new_key);
    assert_memory_not_equal(old_key, new_key, 32);
    expect_derived(kc, "new-secret", "2026-11-23", "cdb");
    expect_derived(kc, "old-secret", "2026-11-23", "cdb");
    /* strings that concatenate alike are different entries */
    expect_derived(kc, "ab", "2026-11-23", "cdb");
    expect_derived(kc, "a", "b2026-11-23", "cdb");
    keycache_free(kc);
}

static void test_long_strings_and_no_cache_still_derive(void **state)
{
    (void)state;
    char long_secret[200];
    memset(long_secret, 'k', sizeof long_secret - 1);
    long_secret[sizeof long_secret - 1] = '\0';
    struct keycache *kc = keycache_new();
    expect_derived(kc, long_secret, "2026-11-23", "cdb");
    expect_derived(kc, long_secret, "2026-11-23", "cdb");
    expect_derived(kc, "secret", "2026-11-23",
                   "a-service-name-longer-than-any-slot-holds-xxxxxxxxxxxxxxxxxxxxx");
    keycache_free(kc);
    expect_derived(NULL, "secret", "2026-11-23", "cdb");
    keycache_free(NULL);
}

struct hammer {
    struct keycache *kc;
    int seed;
    int bad;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    char secret[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(secret, sizeof secret, "secret-%d", (i * 7 + h->seed) % 500);
        const char *date = dates[i % 3], *service = services[(i / 3) % 3];
        unsigned char want[32], got[32];
        sign_tc3_signing_key(secret, date, service, want);
        keycache_tc3_signing_key(h->kc, secret, date, service, got);
        h->bad += memcmp(got, want, 32) != 0;
    }
    return NULL;
}

static void test_threads_sharing_the_cache_never_see_a_torn_key(void **state)
{
    (void)state;
    struct keycache *kc = keycache_new();
    struct hammer h[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){.kc = kc, .seed = i * 13};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].bad, 0);
    }
    keycache_free(kc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cached_keys_equal_derived_keys_past_the_table_size),
        cmocka_unit_test(test_a_rotated_secret_key_gets_its_own_signing_key),
        cmocka_unit_test(test_long_strings_and_no_cache_still_derive),
        cmocka_unit_test(test_threads_sharing_the_cache_never_see_a_torn_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
