/* Random identifiers from OpenSSL's CSPRNG, and the shape checks for each product's task id. */
#include "common/ids.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void random_bytes(unsigned char *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1) {
        fprintf(stderr, "asyncd: the system random generator failed\n");
        abort();
    }
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

void ids_uuid(char out[IDS_UUID_LEN + 1])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, IDS_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

void ids_cdb_task(char out[IDS_CDB_TASK_LEN + 1])
{
    char hex[33];
    ids_hex(hex, 16);
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
