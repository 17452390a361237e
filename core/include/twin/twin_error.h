/* twin_error: the failures of the twin protocol and of the link to it, and the one table that
 * maps each to an errno.
 *
 * Every other module returns 0 or a negative errno; this is where a failure (an HTTP status
 * plus the JSON error code and T2 reason, or a transport failure) becomes one. Every call of
 * core that talks to the twin classifies its failure here, so one failure has one errno
 * wherever it happens (the snapshot, a schema fetch, the stream, a T2 request). */
#pragma once

enum twin_error {
    TWIN_OK = 0,
    TWIN_ASSET_UNKNOWN,    /* 404 asset_unknown                      -> ENOENT */
    TWIN_RESOURCE_UNKNOWN, /* 404 t2_failed + RESOURCE_UNKNOWN       -> ENOENT */
    TWIN_REQ_UNHANDLED,    /* 501 t2_failed + REQ_UNHANDLED          -> EOPNOTSUPP */
    TWIN_T2_UNAVAILABLE,   /* 403 t2_unavailable, or T2 off locally  -> EACCES */
    TWIN_T2_TIMEOUT,       /* 504 t2_timeout, or our own deadline    -> ETIMEDOUT */
    TWIN_NOT_CONNECTED,    /* 503 not_connected, or twin unreachable -> EHOSTUNREACH */
    TWIN_SHUTDOWN,         /* the follower is stopping               -> ESHUTDOWN */
    TWIN_CUT,              /* response cut after the first byte      -> EIO */
    TWIN_UNAUTHORIZED,     /* 401: bad or missing token              -> EPERM */
    TWIN_FAILED,           /* anything else the twin got wrong       -> EPROTO */
    TWIN_CERT_REJECTED,    /* TLS: the twin's certificate failed verification (untrusted
                              issuer, wrong host name, expired)      -> EKEYREJECTED */
    TWIN_LINK_LOST,        /* the connection broke or was closed before the answer was
                              complete, or a stream ended            -> ECONNRESET */
    TWIN_NO_MEMORY,        /* out of memory on our side              -> ENOMEM */
};

/* The positive errno for e (0 for TWIN_OK). */
int twin_error_errno(enum twin_error e);

/* A short stable name, e.g. "RESOURCE_UNKNOWN", for logs and status. */
const char *twin_error_name(enum twin_error e);

/* Classifies a non-2xx answer: status is the HTTP status, code and reason the "error" and
 * "reason" members of the JSON error body (either may be NULL). */
enum twin_error twin_error_from_http(long status, const char *code, const char *reason);
