/* Fuzz target: flow templates (loading and schema checks) and request values through
 * flow_check_params, flow_instance_id, flow_expand and the executors' checks of the steps. */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloudapi/params.h"
#include "exec/exec.h"
#include "flows/flows.h"
#include "fuzz_util.h"

#ifndef FUZZ_FLOWS_DIR
#define FUZZ_FLOWS_DIR "flows"
#endif

/* The shipped templates (flows/) and those of the integration tests, loaded once. */
static struct flows *shipped, *it_flows;
static const struct flow *known[64];
static size_t nknown;
static char tmpdir[256]; /* where a fuzzed template is written for flows_load */

static void collect(const struct flows *f)
{
    static const char *const products[] = {"cdb", "mongodb"};
    static const char *const actions[] = {"CreateAccounts",          "DeleteAccounts",
                                          "ModifyAccountHost",       "ModifyAccountPassword",
                                          "ModifyAccountPrivileges", "ModifyInstanceParam",
                                          "CreateBackupDBInstance"};
    for (size_t p = 0; p < 2; p++)
        for (size_t a = 0; a < sizeof actions / sizeof actions[0]; a++) {
            const struct flow *fl = flows_find(f, products[p], actions[a]);
            if (fl && nknown < sizeof known / sizeof known[0])
                known[nknown++] = fl;
        }
}

static void cleanup(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/cdb", tmpdir);
    rmdir(path);
    rmdir(tmpdir);
    flows_free(shipped);
    flows_free(it_flows);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct err e;
    if (flows_load(FUZZ_FLOWS_DIR, &shipped, &e) != 0 ||
        flows_load(FUZZ_FLOWS_DIR "/../tests/it/flows-test", &it_flows, &e) != 0) {
        fprintf(stderr, "fuzz_flows: %s\n", e.msg);
        abort();
    }
    collect(shipped);
    collect(it_flows);
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/fuzz_flows.XXXXXX", t && *t ? t : "/tmp");
    char path[300];
    snprintf(path, sizeof path, "%s/cdb", tmpdir);
    if (!mkdtemp(tmpdir) || (snprintf(path, sizeof path, "%s/cdb", tmpdir), mkdir(path, 0700)))
        abort();
    atexit(cleanup);
    return 0;
}

/* What product_run_flow does before the task is stored. */
static void run_flow(const struct flow *fl, const json_t *params, bool from_form)
{
    struct err e;
    json_t *clean = NULL, *steps = NULL;
    (void)flow_task_type(fl);
    (void)flow_on_failure(fl);
    (void)flow_param_names(fl);
    (void)flow_response(fl);
    if (flow_check_params(fl, params, from_form, &clean, &e) != 0)
        return;
    if (flow_instance_param(fl))
        (void)flow_instance_id(fl, clean, &e);
    if (flow_expand(fl, clean, &steps, &e) == 0) {
        size_t i;
        json_t *step;
        json_array_foreach(steps, i, step)
        {
            json_t *undo = json_object_get(step, "undo");
            (void)exec_validate(json_object_get(step, "do"), &e);
            if (json_is_object(undo))
                (void)exec_validate(undo, &e);
        }
        json_decref(steps);
        json_decref(flow_public_params(fl, clean));
    }
    json_decref(clean);
}

/* The request's parameters: a form string as GET/POST-form requests bring them, or JSON. */
static json_t *params_of(const char *s, bool from_form)
{
    if (!from_form)
        return json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    struct param_list l = {0};
    struct err e;
    json_t *j = NULL;
    if (params_parse_form(s, strlen(s), &l, &e) != 0 || params_check_unique(&l, &e) != 0 ||
        params_to_json(&l, NULL, &j, &e) != 0)
        j = NULL;
    params_free(&l);
    return j;
}

/* A template written where flows_load finds it (named after its "action" when that makes a
 * file name), loaded and run with the parameters. */
static void fuzzed_template(const char *doc, const char *params_text, bool from_form)
{
    char name[80] = "Fuzz";
    json_t *d = json_loads(doc, 0, NULL);
    const char *action = json_string_value(json_object_get(d, "action"));
    if (action && *action && strlen(action) < 64 &&
        strspn(action, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "abcdefghijklmnopqrstuvwxyz"
                       "0123456789_-") == strlen(action))
        snprintf(name, sizeof name, "%s", action);
    json_decref(d);
    char path[400];
    snprintf(path, sizeof path, "%s/cdb/%s.json", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(doc, f);
    fclose(f);
    struct flows *loaded = NULL;
    struct err e;
    int rc = flows_load(tmpdir, &loaded, &e);
    unlink(path);
    if (rc != 0)
        return;
    const struct flow *fl = flows_find(loaded, "cdb", name);
    json_t *params = params_of(params_text, from_form);
    if (fl && json_is_object(params))
        run_flow(fl, params, from_form);
    json_decref(params);
    flows_free(loaded);
}

/* Input: a mode byte, then either the parameters for one of the known templates (bit 7 clear;
 * the byte picks the template) or "template JSON\n@@\nparameters" (bit 7 set). Bit 6: the
 * parameters are a form string (GET / form POST), else JSON. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return -1;
    bool from_form = data[0] & 0x40;
    char *rest = fuzz_strndup(data + 1, size - 1);
    if (data[0] & 0x80) {
        char *params_text = fuzz_split(rest);
        fuzzed_template(rest, params_text, from_form);
    } else if (nknown) {
        json_t *params = params_of(rest, from_form);
        if (json_is_object(params))
            run_flow(known[(data[0] & 0x3f) % nknown], params, from_form);
        json_decref(params);
    }
    free(rest);
    return 0;
}
