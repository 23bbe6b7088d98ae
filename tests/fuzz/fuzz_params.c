/* Fuzz target: form/query decoding (params_parse_form), the duplicate check, unflattening of
 * "A.0.B" names into JSON (params_to_json), and the JSON body depth check against jansson. */
#include <stdint.h>
#include <stdlib.h>

#include "cloudapi/params.h"
#include "fuzz_util.h"

static const char *const v1_skip[] = {"Action", "Version", "Signature", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int depth(const json_t *v)
{
    int d = 0, sub;
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_array(v))
        json_array_foreach(v, i, x) if ((sub = depth(x)) > d) d = sub;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, x) if ((sub = depth(x)) > d) d = sub;
    return json_is_array(v) || json_is_object(v) ? d + 1 : 0;
}

/* The same bytes as a JSON body: when jansson reads them, the one-pass depth check must agree
 * with the depth jansson found. */
static void json_body(const uint8_t *data, size_t size)
{
    struct err e;
    int ok = params_json_depth_check((const char *)data, size, PARAMS_MAX_JSON_DEPTH, &e) == 0;
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (j && ok != (depth(j) <= PARAMS_MAX_JSON_DEPTH))
        abort();
    json_decref(j);
    /* The fast path for flat string objects must agree with jansson whenever it answers. */
    json_t *flat = params_json_flat_strings((const char *)data, size);
    if (flat) {
        json_t *ref = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
        if (!ref || !json_equal(flat, ref))
            abort();
        json_decref(ref);
        json_decref(flat);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return -1;
    struct param_list l = {0};
    struct err e;
    (void)params_utf8_valid((const char *)data, size);
    if (params_parse_form((const char *)data, size, &l, &e) == 0) {
        (void)params_find(&l, "Action");
        if (params_check_unique(&l, &e) == 0) {
            json_t *j = NULL;
            if (params_to_json(&l, NULL, &j, &e) == 0 && !json_is_object(j))
                abort(); /* the contract: an object on success */
            json_decref(j);
            /* the v1 path: sorted bytewise first, some names skipped */
            params_sort(&l);
            if (params_to_json(&l, v1_skip, &j, &e) == 0 && !json_is_object(j))
                abort();
            json_decref(j);
        }
    }
    params_free(&l);
    json_body(data, size);
    return 0;
}
