/* One Cloud API request taken apart: which signature style, the common parameters (from X-TC-*
 * headers for TC3, from the parameters for v1) and the business parameters as JSON; and the check
 * of its signature against an account's key. */
#ifndef ASYNCD_REQUEST_H
#define ASYNCD_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cloudapi/params.h"
#include "cloudapi/sign.h"
#include "http/http.h"
#include "store/store.h"

struct keycache;

enum sig_style { SIG_TC3, SIG_V1 };

struct api_request {
    enum sig_style style;
    const struct http_request *http;
    /* Common parameters, borrowed from headers or `form`; NULL when absent. */
    const char *action, *version, *region, *timestamp, *nonce, *secret_id, *token, *signature,
        *signature_method, *host;
    struct tc3_auth tc3;    /* TC3 only */
    struct param_list form; /* decoded query (GET) or form body (POST) */
    json_t *params;         /* business parameters: a JSON object, owned; NULL before decode */
    bool from_form;
};

/* Fills r's common parameters from h: what routing and the signature check need, and nothing
 * more. Cost is proportional to the request's size: TC3 reads only headers; v1 decodes the form
 * into pairs (within the PARAMS_MAX_* bounds), since its signature is over the decoded pairs.
 * r->params stays NULL until api_request_decode. On failure returns the error code with e set;
 * r must still be freed. */
int api_request_parse(const struct http_request *h, struct api_request *r, struct err *e);
/* After the signature is verified: decodes the business parameters into r->params (the query,
 * form or JSON body, within the PARAMS_MAX_* bounds, e.g. PARAMS_MAX_JSON_DEPTH). */
int api_request_decode(struct api_request *r, struct err *e);
void api_request_free(struct api_request *r);
/* The credential's SecretId, or NULL if the request names none. */
const char *api_request_secret_id(const struct api_request *r);
/* Checks X-TC-Timestamp/Timestamp against now_s (window max_skew_s), before any key lookup. */
int api_request_check_time(const struct api_request *r, int64_t now_s, int64_t max_skew_s,
                           struct err *e);
/* Verifies the signature with secret_key; ERR_AUTH_SIGNATURE_FAILURE with what to check. kc (may
 * be NULL) caches TC3 signing keys. */
int api_request_verify(const struct api_request *r, const char *secret_key, struct keycache *kc,
                       struct err *e);

#endif
