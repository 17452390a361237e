/* twin_error: the one table from protocol and transport failures to errno values. */
#include "twin/twin_error.h"
#include "twin_transfer.h"

#include <curl/curl.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

struct twin_error_info {
    int err;
    const char *name;
};

/* Indexed by enum twin_error; keep in the enum's order (checked by test_twin_error). */
static const struct twin_error_info table[] = {
    [TWIN_OK] = {0, "OK"},
    [TWIN_ASSET_UNKNOWN] = {ENOENT, "ASSET_UNKNOWN"},
    [TWIN_RESOURCE_UNKNOWN] = {ENOENT, "RESOURCE_UNKNOWN"},
    [TWIN_REQ_UNHANDLED] = {EOPNOTSUPP, "REQ_UNHANDLED"},
    [TWIN_T2_UNAVAILABLE] = {EACCES, "T2_UNAVAILABLE"},
    [TWIN_T2_TIMEOUT] = {ETIMEDOUT, "T2_TIMEOUT"},
    [TWIN_NOT_CONNECTED] = {EHOSTUNREACH, "NOT_CONNECTED"},
    [TWIN_SHUTDOWN] = {ESHUTDOWN, "SHUTDOWN"},
    [TWIN_CUT] = {EIO, "CUT"},
    [TWIN_UNAUTHORIZED] = {EPERM, "UNAUTHORIZED"},
    [TWIN_FAILED] = {EPROTO, "FAILED"},
    [TWIN_CERT_REJECTED] = {EKEYREJECTED, "CERT_REJECTED"},
    [TWIN_LINK_LOST] = {ECONNRESET, "LINK_LOST"},
    [TWIN_NO_MEMORY] = {ENOMEM, "NO_MEMORY"},
};

#define TABLE_SIZE (sizeof(table) / sizeof(table[0]))

int twin_error_errno(enum twin_error e)
{
    if ((unsigned)e >= TABLE_SIZE)
        return EPROTO; /* a value outside the enum is a bug elsewhere; still an error */
    return table[e].err;
}

const char *twin_error_name(enum twin_error e)
{
    if ((unsigned)e >= TABLE_SIZE)
        return "UNKNOWN";
    return table[e].name;
}

static int str_is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

enum twin_error twin_error_from_http(long status, const char *code, const char *reason)
{
    if (status >= 200 && status < 300)
        return TWIN_OK;
    switch (status) {
    case 401:
        return TWIN_UNAUTHORIZED;
    case 403:
        return TWIN_T2_UNAVAILABLE;
    case 404:
        /* Two different failures share 404; only the body tells them apart. A 404 without
         * a twin error body came from something that is not the twin. */
        if (str_is(code, "asset_unknown"))
            return TWIN_ASSET_UNKNOWN;
        if (str_is(code, "t2_failed") || str_is(reason, "RESOURCE_UNKNOWN"))
            return TWIN_RESOURCE_UNKNOWN;
        return TWIN_FAILED;
    case 501:
        return TWIN_REQ_UNHANDLED;
    case 503:
        return TWIN_NOT_CONNECTED;
    case 504:
        return TWIN_T2_TIMEOUT;
    default:
        return TWIN_FAILED;
    }
}

/* A transfer that did not get a complete answer, by curl's result. */
static enum twin_error from_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return TWIN_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return TWIN_NOT_CONNECTED;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return TWIN_LINK_LOST;
    case CURLE_OPERATION_TIMEDOUT:
        return TWIN_T2_TIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
        return TWIN_CERT_REJECTED;
    case CURLE_OUT_OF_MEMORY:
        return TWIN_NO_MEMORY;
    default:
        /* Other TLS failures, a peer that does not speak HTTP, an answer over a bound. */
        return TWIN_FAILED;
    }
}

enum twin_error twin_error_from_transfer(CURLcode rc, long status, const char *code,
                                         const char *reason)
{
    if (status != 0 && (status < 200 || status >= 300))
        return twin_error_from_http(status, code, reason);
    return from_curl(rc);
}
