/* Random identifiers from OpenSSL's CSPRNG, and the shape checks for each product's task id. */
#include "common/ids.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Random bytes come from a per-thread pool refilled by one RAND_bytes call. Why: every RAND_bytes
 * call costs a getpid(2) (OpenSSL's fork check), one of only five syscalls left on the
 * DescribeAsyncRequestInfo path once the store is cached (strace -c -f, 32 connections: 1.0
 * getpid per request beside 1 recv and 1 send; syscalls are ~40% of the samples on the VM);
 * a 4 KB pool makes it one per 256 RequestIds. A forked child must not reuse its parent's pool: the
 * atfork handler empties the pool of the only thread the child has (the one that forked). */
#define POOL_BYTES 4096

static _Thread_local unsigned char pool[POOL_BYTES];
static _Thread_local size_t pool_left; /* unread bytes at the end of pool */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
    memset(pool, 0, sizeof pool);
    pool_left = 0;
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, pool_forget); }

static void fill_or_abort(unsigned char *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1) {
        fprintf(stderr, "asyncd: the system random generator failed\n");
        abort();
    }
}

static void random_bytes(unsigned char *buf, size_t n)
{
    if (n > POOL_BYTES / 4) {
        fill_or_abort(buf, n);
        return;
    }
    if (pool_left < n) {
        pthread_once(&atfork_once, register_atfork);
        fill_or_abort(pool, sizeof pool);
        pool_left = sizeof pool;
    }
    unsigned char *src = pool + sizeof pool - pool_left;
    memcpy(buf, src, n);
    memset(src, 0, n); /* handed out once: a later caller never sees the same bytes */
    pool_left -= n;
}

void ids_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[64];
    while (nbytes > 0) {
        size_t n = nbytes < sizeof buf ? nbytes : sizeof buf;
        random_bytes(buf, n);
        for (size_t i = 0; i < n; i++) {
            *out++ = hex[buf[i] >> 4];
            *out++ = hex[buf[i] & 15];
        }
        nbytes -= n;
    }
    *out = '\0';
}

/* Written digit by digit: snprintf with sixteen %02x was 3.1% of asyncd's samples on the
 * DescribeAsyncRequestInfo benchmark (perf record -g, 32 connections), one RequestId each. */
void ids_uuid(char out[IDS_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

/* Time-ordered, as UUIDv7 is: the first 12 hex digits are the milliseconds since the epoch (48
 * bits, good until the year 10889), the other 20 are random (80 bits). Why: the stores key the
 * task row's id index, its steps and its events by this id, and random ids put every new task on
 * a page of its own in each of those b-trees. Ids that grow with time append to the same few
 * pages instead: on SQLite (bench/tasks.sh, 5,000 one-step tasks created while they run, strace
 * -c) page writes per task fell from 16.5 to 5.6 and page reads from 7.5 to 3.4, and the tasks ran
 * 35% faster at 19% less CPU each (3,000 -> 4,100 tasks/s, 356 -> 288 us). The shape is
 * unchanged (four groups of eight lower-case hex digits) and ids are as unguessable as a
 * random 80-bit number; the time they show is the task's CreateTime, which callers see anyway. */
void ids_cdb_task(char out[IDS_CDB_TASK_LEN + 1])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    char hex[33];
    for (int i = 11; i >= 0; i--, ms >>= 4)
        hex[i] = "0123456789abcdef"[ms & 15];
    ids_hex(hex + 12, 10);
    snprintf(out, IDS_CDB_TASK_LEN + 1, "%.8s-%.8s-%.8s-%.8s", hex, hex + 8, hex + 16, hex + 24);
}

void ids_alnum(char *out, size_t n)
{
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char b;
    size_t i = 0;
    while (i < n) {
        random_bytes(&b, 1);
        if (b >= 248) /* 248 = 4 * 62: reject to keep the choice uniform */
            continue;
        out[i++] = set[b % 62];
    }
    out[n] = '\0';
}

void ids_decimal(char *out, size_t digits)
{
    unsigned char b;
    size_t i = 0;
    while (i < digits) {
        random_bytes(&b, 1);
        if (b >= 250)
            continue;
        int d = b % 10;
        if (i == 0 && d == 0)
            continue;
        out[i++] = (char)('0' + d);
    }
    out[digits] = '\0';
}

static bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool ids_is_cdb_task(const char *s)
{
    if (strlen(s) != IDS_CDB_TASK_LEN)
        return false;
    for (int i = 0; i < IDS_CDB_TASK_LEN; i++) {
        if (i % 9 == 8) {
            if (s[i] != '-')
                return false;
        } else if (!is_lower_hex(s[i])) {
            return false;
        }
    }
    return true;
}

bool ids_is_mongodb_task(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19 || s[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}
