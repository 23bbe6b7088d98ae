/* Unit tests: secrets sealed at rest (secretbox), the key file, DSN redaction, the step secrets
 * of store_plan.h and a SQLite store that keeps SecretKeys and DSNs sealed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/secretbox.h"
#include "exec/mysql_conn.h"
#include "store/store.h"
#include "store/store_plan.h"

static const uint8_t key_a[SECRETBOX_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t key_b[SECRETBOX_KEY_LEN] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static int use_key_a(void **state)
{
    (void)state;
    secretbox_set_key(key_a);
    return 0;
}

static int forget_key(void **state)
{
    (void)state;
    secretbox_forget();
    return 0;
}

static char *seal(const char *plain)
{
    char *out = NULL;
    struct err e = {0};
    assert_int_equal(secretbox_seal(plain, &out, &e), 0);
    return out;
}

static void test_seal_then_open_gives_the_plaintext_back(void **state)
{
    (void)state;
    char *sealed = seal("Tenant-Pa55word!"), *plain = NULL;
    struct err e = {0};
    assert_true(secretbox_is_sealed(sealed));
    assert_null(strstr(sealed, "Tenant-Pa55word!"));
    /* prefix + base64 of 12 + 16 + 16 bytes */
    assert_int_equal(strlen(sealed), strlen(SECRETBOX_PREFIX) + 60);
    assert_int_equal(secretbox_open(sealed, &plain, &e), 0);
    assert_string_equal(plain, "Tenant-Pa55word!");
    free(sealed);
    free(plain);
}

static void test_each_seal_uses_a_fresh_nonce(void **state)
{
    (void)state;
    char *a = seal("same"), *b = seal("same");
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_open_refuses_a_tampered_value(void **state)
{
    (void)state;
    char *sealed = seal("secret value"), *plain = (char *)1;
    size_t at = strlen(SECRETBOX_PREFIX) + 20;
    sealed[at] = sealed[at] == 'A' ? 'B' : 'A';
    struct err e = {0};
    assert_int_equal(secretbox_open(sealed, &plain, &e), ERR_INTERNAL);
    assert_null(plain);
    free(sealed);
}

static void test_open_under_another_key_fails_naming_the_key_file(void **state)
{
    (void)state;
    char *sealed = seal("secret value"), *plain = NULL;
    secretbox_set_key(key_b);
    struct err e = {0};
    assert_int_equal(secretbox_open(sealed, &plain, &e), ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "another key"));
    assert_non_null(strstr(e.msg, "--secret-key-file"));
    free(sealed);
}

static void test_open_passes_plaintext_of_an_older_store_through(void **state)
{
    (void)state;
    char *plain = NULL;
    struct err e = {0};
    assert_int_equal(secretbox_open("mysql://admin:pw@127.0.0.1:3306", &plain, &e), 0);
    assert_string_equal(plain, "mysql://admin:pw@127.0.0.1:3306");
    free(plain);
    assert_int_equal(secretbox_open("enc:v1:not*base64", &plain, &e), ERR_INTERNAL);
}

static void test_without_a_key_seal_keeps_the_plaintext(void **state)
{
    (void)state;
    secretbox_forget();
    char *out = seal("plain");
    assert_string_equal(out, "plain");
    free(out);
    secretbox_set_key(key_a);
    out = seal("");
    assert_string_equal(out, "");
    free(out);
}

/* ---- the key file ---- */

static void temp_dir(char dir[64])
{
    snprintf(dir, 64, "/tmp/secretbox-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void test_first_load_creates_a_0600_key_that_the_next_load_reads(void **state)
{
    (void)state;
    char dir[64], path[128];
    temp_dir(dir);
    snprintf(path, sizeof path, "%s/secret.key", dir);
    struct err e = {0};
    assert_int_equal(secretbox_load(NULL, dir, &e), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65); /* 64 hex digits and a newline */
    char *sealed = seal("kept across restarts"), *plain = NULL;
    secretbox_forget();
    assert_int_equal(secretbox_load(NULL, dir, &e), 0);
    assert_int_equal(secretbox_open(sealed, &plain, &e), 0);
    assert_string_equal(plain, "kept across restarts");
    free(sealed);
    free(plain);
    unlink(path);
    rmdir(dir);
}

static void test_key_file_flag_must_exist_be_private_and_well_formed(void **state)
{
    (void)state;
    char dir[64], path[128];
    temp_dir(dir);
    snprintf(path, sizeof path, "%s/cluster.key", dir);
    struct err e = {0};
    assert_int_equal(secretbox_load(path, dir, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "cluster.key"));
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0644);
    assert_int_equal(secretbox_load(path, dir, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "chmod 600"));
    write_file(path, "too short\n", 0600);
    assert_int_equal(secretbox_load(path, dir, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "64 hex digits"));
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
    assert_int_equal(secretbox_load(path, dir, &e), 0);
    char sd[128];
    snprintf(sd, sizeof sd, "%s/secret.key", dir);
    assert_int_not_equal(access(sd, F_OK), 0); /* the flag's file, no default one made */
    unlink(path);
    rmdir(dir);
}

/* ---- redaction ---- */

static void test_redact_dsn_hides_only_the_password(void **state)
{
    (void)state;
    char out[256];
    secretbox_redact_dsn("mysql://admin:S3cr3t@127.0.0.1:3306?ssl-mode=REQUIRED", out, sizeof out);
    assert_string_equal(out, "mysql://admin:***@127.0.0.1:3306?ssl-mode=REQUIRED");
    secretbox_redact_dsn("mysql://admin:p@ss@db:3306", out, sizeof out);
    assert_string_equal(out, "mysql://admin:***@db:3306");
    secretbox_redact_dsn("mongodb://u:pw@h1:27017,h2:27017/admin", out, sizeof out);
    assert_string_equal(out, "mongodb://u:***@h1:27017,h2:27017/admin");
    secretbox_redact_dsn("mongodb://h1:27017", out, sizeof out);
    assert_string_equal(out, "mongodb://h1:27017");
    secretbox_redact_dsn("mysql://admin@db:3306", out, sizeof out);
    assert_string_equal(out, "mysql://admin@db:3306");
    secretbox_redact_dsn("", out, sizeof out);
    assert_string_equal(out, "");
}

/* ---- step secrets (store_plan.h) ---- */

static json_t *create_account_steps(void)
{
    return json_pack("[{s:s, s:{s:{s:s, s:s, s:[s, s, s, i]}}, s:{s:{s:s, s:[s, s]}}}]", "name",
                     "create", "do", "mysql", "sql",
                     "CREATE USER {0:str}@{1:str} IDENTIFIED BY {2:str} WITH "
                     "MAX_USER_CONNECTIONS {3:int}",
                     "done_if", "SELECT PASSWORD({2:str})", "args", "bob", "%", "Hunter2-Pass", 0,
                     "undo", "mysql", "sql", "DROP USER {0:str}@{1:str}", "args", "bob", "%");
}

static const char *do_arg(json_t *steps, size_t i)
{
    json_t *mysql = json_object_get(json_object_get(json_array_get(steps, 0), "do"), "mysql");
    return json_string_value(json_array_get(json_object_get(mysql, "args"), i));
}

static void test_steps_seal_only_the_password_args_and_open_them_again(void **state)
{
    (void)state;
    json_t *steps = create_account_steps(), *sealed = NULL;
    struct err e = {0};
    assert_int_equal(store_steps_seal(steps, &sealed, &e), 0);
    assert_string_equal(do_arg(steps, 2), "Hunter2-Pass"); /* the caller's copy is untouched */
    assert_true(secretbox_is_sealed(do_arg(sealed, 2)));
    assert_string_equal(do_arg(sealed, 0), "bob");
    char *text = json_dumps(sealed, JSON_COMPACT);
    assert_null(strstr(text, "Hunter2-Pass"));
    free(text);
    assert_int_equal(store_steps_open(sealed, &e), 0);
    assert_string_equal(do_arg(sealed, 2), "Hunter2-Pass");
    json_decref(steps);
    json_decref(sealed);
}

static void test_step_json_erased_replaces_secrets_by_stars(void **state)
{
    (void)state;
    json_t *steps = create_account_steps(), *sealed = NULL;
    struct err e = {0};
    assert_int_equal(store_steps_seal(steps, &sealed, &e), 0);
    char *do_json = json_dumps(json_object_get(json_array_get(sealed, 0), "do"), JSON_COMPACT);
    char *undo_json = json_dumps(json_object_get(json_array_get(sealed, 0), "undo"), JSON_COMPACT);
    char *erased = store_step_json_erased(do_json);
    assert_non_null(erased);
    assert_null(strstr(erased, SECRETBOX_PREFIX));
    assert_non_null(strstr(erased, "\"bob\",\"%\",\"***\",0"));
    assert_null(store_step_json_erased(erased)); /* nothing left */
    assert_null(store_step_json_erased(undo_json));
    assert_null(store_step_json_erased("{\"exec\":[\"/bin/true\"]}"));
    assert_null(store_step_json_erased(NULL));
    free(erased);
    free(do_json);
    free(undo_json);
    json_decref(steps);
    json_decref(sealed);
}

/* ---- a SQLite store keeps them sealed ---- */

/* Whether any text column of table in the database at path contains needle. */
static bool table_contains(const char *path, const char *sql, const char *needle)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    bool found = false;
    while (sqlite3_step(st) == SQLITE_ROW)
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *v = (const char *)sqlite3_column_text(st, i);
            found |= v && strstr(v, needle) != NULL;
        }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return found;
}

static void test_sqlite_store_seals_secret_keys_and_dsns(void **state)
{
    (void)state;
    char dir[64], db[128];
    temp_dir(dir);
    snprintf(db, sizeof db, "%s/asyncd.db", dir);
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(NULL, dir, &s, &e), 0);
    struct account a = {.uin = "100000000001",
                        .owner_uin = "100000000001",
                        .app_id = "1300000001",
                        .secret_id = "AKIDsealedtest",
                        .secret_key = "KeyThatMustNotBeStored",
                        .is_root = true};
    assert_int_equal(store_account_create(s, &a, &e), 0);
    struct instance in = {.product = "cdb",
                          .instance_id = "cdb-seal",
                          .region = "ap-guangzhou",
                          .uin = "100000000001",
                          .status = "running",
                          .dsn = "mysql://admin:DsnPassw0rd@127.0.0.1:3306"};
    assert_int_equal(store_instance_create(s, &in, &e), 0);
    struct account got = {0};
    assert_int_equal(store_account_by_secret_id(s, "AKIDsealedtest", &got, &e), 0);
    assert_string_equal(got.secret_key, "KeyThatMustNotBeStored");
    account_clear(&got);
    struct instance gi;
    assert_int_equal(store_instance_get(s, "cdb", "cdb-seal", &gi, &e), 0);
    assert_string_equal(gi.dsn, in.dsn);
    json_t *list = NULL;
    assert_int_equal(store_instance_list(s, NULL, NULL, &list, &e), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "dsn")), in.dsn);
    json_decref(list);
    store_close(s);
    assert_false(table_contains(db, "SELECT * FROM accounts", "KeyThatMustNotBeStored"));
    assert_false(table_contains(db, "SELECT * FROM instances", "DsnPassw0rd"));
    assert_true(table_contains(db, "SELECT dsn FROM instances", SECRETBOX_PREFIX));
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    store_set_secret_args(mysql_conn_secret_args); /* as asyncd does at start */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seal_then_open_gives_the_plaintext_back, use_key_a,
                                        forget_key),
        cmocka_unit_test_setup_teardown(test_each_seal_uses_a_fresh_nonce, use_key_a, forget_key),
        cmocka_unit_test_setup_teardown(test_open_refuses_a_tampered_value, use_key_a, forget_key),
        cmocka_unit_test_setup_teardown(test_open_under_another_key_fails_naming_the_key_file,
                                        use_key_a, forget_key),
        cmocka_unit_test_setup_teardown(test_open_passes_plaintext_of_an_older_store_through,
                                        use_key_a, forget_key),
        cmocka_unit_test_setup_teardown(test_without_a_key_seal_keeps_the_plaintext, use_key_a,
                                        forget_key),
        cmocka_unit_test_teardown(test_first_load_creates_a_0600_key_that_the_next_load_reads,
                                  forget_key),
        cmocka_unit_test_teardown(test_key_file_flag_must_exist_be_private_and_well_formed,
                                  forget_key),
        cmocka_unit_test(test_redact_dsn_hides_only_the_password),
        cmocka_unit_test_setup_teardown(test_steps_seal_only_the_password_args_and_open_them_again,
                                        use_key_a, forget_key),
        cmocka_unit_test_setup_teardown(test_step_json_erased_replaces_secrets_by_stars, use_key_a,
                                        forget_key),
        cmocka_unit_test_setup_teardown(test_sqlite_store_seals_secret_keys_and_dsns, use_key_a,
                                        forget_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
