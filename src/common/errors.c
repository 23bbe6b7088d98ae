/* The single table mapping asyncd error codes to Tencent codes, admin names and HTTP statuses. */
#include "common/errors.h"

#include <stdarg.h>
#include <stdio.h>

struct err_row {
    int code;
    const char *tencent;
    const char *admin;
    int http;
};

static const struct err_row err_table[] = {
    {ERR_INTERNAL, "InternalError", "internal", 500},
    {ERR_INVALID_PARAMETER, "InvalidParameter", "invalid_parameter", 400},
    {ERR_INVALID_PARAMETER_VALUE, "InvalidParameterValue", "invalid_parameter_value", 400},
    {ERR_MISSING_PARAMETER, "MissingParameter", "missing_parameter", 400},
    {ERR_UNKNOWN_PARAMETER, "UnknownParameter", "unknown_parameter", 400},
    {ERR_INVALID_ACTION, "InvalidAction", "invalid_action", 404},
    {ERR_NO_SUCH_VERSION, "NoSuchVersion", "no_such_version", 400},
    {ERR_NO_SUCH_PRODUCT, "NoSuchProduct", "no_such_product", 400},
    {ERR_UNSUPPORTED_PROTOCOL, "UnsupportedProtocol", "unsupported_protocol", 405},
    {ERR_UNSUPPORTED_REGION, "UnsupportedRegion", "unsupported_region", 400},
    {ERR_INVALID_REQUEST, "InvalidRequest", "invalid_request", 400},
    {ERR_REQUEST_SIZE_LIMIT, "RequestSizeLimitExceeded", "request_too_large", 413},
    {ERR_REQUEST_LIMIT, "RequestLimitExceeded", "rate_limited", 429},
    {ERR_AUTH_SIGNATURE_FAILURE, "AuthFailure.SignatureFailure", "unauthorized", 401},
    {ERR_AUTH_SIGNATURE_EXPIRE, "AuthFailure.SignatureExpire", "unauthorized", 401},
    {ERR_AUTH_SECRETID_NOT_FOUND, "AuthFailure.SecretIdNotFound", "unauthorized", 401},
    {ERR_AUTH_INVALID_SECRETID, "AuthFailure.InvalidSecretId", "unauthorized", 401},
    {ERR_AUTH_INVALID_AUTHORIZATION, "AuthFailure.InvalidAuthorization", "unauthorized", 401},
    {ERR_AUTH_TOKEN_FAILURE, "AuthFailure.TokenFailure", "unauthorized", 401},
    {ERR_UNAUTHORIZED_OPERATION, "UnauthorizedOperation", "forbidden", 403},
    {ERR_RESOURCE_NOT_FOUND, "ResourceNotFound", "not_found", 404},
    {ERR_SERVICE_UNAVAILABLE, "ServiceUnavailable", "unavailable", 503},
    {ERR_INSTANCE_NOT_FOUND, "InvalidParameter.InstanceNotFound", "not_found", 404},
    {ERR_UNSUPPORTED_OPERATION, "UnsupportedOperation", "unsupported", 400},
    {ERR_CDB_INVALID_ASYNC_REQUEST_ID, "InvalidParameter.InvalidAsyncRequestId", "not_found", 404},
    {ERR_CDB_USER_HAS_NO_STRATEGY, "OperationDenied.UserHasNoStrategy", "forbidden", 403},
    {ERR_CDB_OPERATION_DENIED, "OperationDenied", "forbidden", 403},
    {ERR_CDB_TASK_ERROR, "CdbError.TaskError", "task_error", 500},
    {ERR_CDB_INSTANCE_STATUS, "OperationDenied.InstanceStatusError", "conflict", 409},
    {ERR_MONGO_PERMISSION_DENIED, "InvalidParameter.PermissionDenied", "forbidden", 403},
    {ERR_MONGO_STATUS_ABNORMAL, "InvalidParameterValue.StatusAbnormal", "conflict", 409},
    {ERR_NOT_FOUND, "ResourceNotFound", "not_found", 404},
    {ERR_CONFLICT, "FailedOperation", "conflict", 409},
    {ERR_ADMIN_UNAUTHORIZED, "AuthFailure", "unauthorized", 401},
    {ERR_BAD_REQUEST, "InvalidParameter", "bad_request", 400},
    {ERR_ALREADY_EXISTS, "ResourceInUse", "already_exists", 409},
};

static const struct err_row *err_row_of(int code)
{
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
        if (err_table[i].code == code)
            return &err_table[i];
    return &err_table[0];
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes there are not one. */
static int utf8_seq_len(const unsigned char *s)
{
    int n = s[0] < 0x80             ? 1
            : (s[0] & 0xE0) == 0xC0 ? 2
            : (s[0] & 0xF0) == 0xE0 ? 3
            : (s[0] & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || (n == 2 && s[0] < 0xC2) || (n == 4 && s[0] > 0xF4))
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (n == 3 && s[0] == 0xED && s[1] >= 0xA0) ||
        (n == 4 && s[0] == 0xF0 && s[1] < 0x90) || (n == 4 && s[0] == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, past U+10FFFF */
    return n;
}

/* Messages often quote what a client sent; they go into JSON, which must be valid UTF-8, so any
 * byte that is not part of a valid sequence becomes '?'. */
static void make_utf8(char *msg)
{
    unsigned char *p = (unsigned char *)msg;
    while (*p) {
        int n = utf8_seq_len(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
    if (e) {
        e->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        make_utf8(e->msg);
    }
    return code;
}

const char *err_tencent_code(int code) { return err_row_of(code)->tencent; }
int err_http_status(int code) { return err_row_of(code)->http; }
const char *err_admin_name(int code) { return err_row_of(code)->admin; }
