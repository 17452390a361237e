/* twin_transfer: how a finished libcurl transfer becomes a twin_error (internal to core).
 *
 * twin_client (the snapshot, schemas), stream and t2_stream all classify their failures here,
 * and take the errno from twin_error_errno, so one failure of the link is one errno. */
#pragma once
#include <curl/curl.h>

#include "twin/twin_error.h"

/* The twin_error of a transfer that ended with rc after an answer of HTTP status (0 when no
 * status line came); code and reason are the "error" and "reason" members of the answer's JSON
 * error body, either may be NULL. A status outside 2xx decides (twin_error_from_http);
 * otherwise rc does: CURLE_OK is TWIN_OK, no connection is NOT_CONNECTED, a connection that
 * broke before the answer was complete is LINK_LOST, curl's deadline is T2_TIMEOUT, a
 * certificate that failed verification is CERT_REJECTED, anything else is FAILED. */
enum twin_error twin_error_from_transfer(CURLcode rc, long status, const char *code,
                                         const char *reason);
