/* One error vocabulary for all of asyncd: 0 is success, a negative ERR_* is failure.
 * Each code maps to exactly one Tencent Cloud API error string and one admin HTTP status
 * (the table in errors.c). Callers that need the detail pass a struct err that the callee fills. */
#ifndef ASYNCD_ERRORS_H
#define ASYNCD_ERRORS_H

enum err_code {
    ERR_OK = 0,
    ERR_INTERNAL = -1,
    ERR_INVALID_PARAMETER = -2,
    ERR_INVALID_PARAMETER_VALUE = -3,
    ERR_MISSING_PARAMETER = -4,
    ERR_UNKNOWN_PARAMETER = -5,
    ERR_INVALID_ACTION = -6,
    ERR_NO_SUCH_VERSION = -7,
    ERR_NO_SUCH_PRODUCT = -8,
    ERR_UNSUPPORTED_PROTOCOL = -9,
    ERR_UNSUPPORTED_REGION = -10,
    ERR_INVALID_REQUEST = -11,
    ERR_REQUEST_SIZE_LIMIT = -12,
    ERR_REQUEST_LIMIT = -13,
    ERR_AUTH_SIGNATURE_FAILURE = -14,
    ERR_AUTH_SIGNATURE_EXPIRE = -15,
    ERR_AUTH_SECRETID_NOT_FOUND = -16,
    ERR_AUTH_INVALID_SECRETID = -17,
    ERR_AUTH_INVALID_AUTHORIZATION = -18,
    ERR_AUTH_TOKEN_FAILURE = -19,
    ERR_UNAUTHORIZED_OPERATION = -20,
    ERR_RESOURCE_NOT_FOUND = -21,
    ERR_SERVICE_UNAVAILABLE = -22,
    ERR_INSTANCE_NOT_FOUND = -23,
    ERR_UNSUPPORTED_OPERATION = -29, /* an action asyncd cannot do on this (real) instance */
    /* cdb dialect */
    ERR_CDB_INVALID_ASYNC_REQUEST_ID = -30,
    ERR_CDB_USER_HAS_NO_STRATEGY = -31,
    ERR_CDB_OPERATION_DENIED = -32,
    ERR_CDB_TASK_ERROR = -33,
    ERR_CDB_INSTANCE_STATUS = -34,
    /* mongodb dialect */
    ERR_MONGO_PERMISSION_DENIED = -40,
    ERR_MONGO_STATUS_ABNORMAL = -41,
    /* admin API and internal only */
    ERR_NOT_FOUND = -50,
    ERR_CONFLICT = -51,
    ERR_ADMIN_UNAUTHORIZED = -52,
    ERR_BAD_REQUEST = -53,
    ERR_ALREADY_EXISTS = -54,
};

struct err {
    int code;
    char msg[512];
};

/* Fills e (if not NULL) and returns code, so callers can `return err_set(e, ...)`. */
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The Tencent Cloud API error code string, e.g. "AuthFailure.SignatureFailure". */
const char *err_tencent_code(int code);
/* The HTTP status the admin API answers with for this code (400, 401, 404, 409, 500, ...). */
int err_http_status(int code);
/* A short snake_case name for the admin API's "error" field, e.g. "not_found". */
const char *err_admin_name(int code);

#endif
