/* test_twin_error: the errno table and the classification of HTTP and transport failures. */
#include <errno.h>

#include "twin/twin_error.h"
#include "twin_transfer.h"
#include "unit.h"

static void test_table(void)
{
    CHECK_INT_EQ(twin_error_errno(TWIN_OK), 0);
    CHECK_INT_EQ(twin_error_errno(TWIN_ASSET_UNKNOWN), ENOENT);
    CHECK_INT_EQ(twin_error_errno(TWIN_RESOURCE_UNKNOWN), ENOENT);
    CHECK_INT_EQ(twin_error_errno(TWIN_REQ_UNHANDLED), EOPNOTSUPP);
    CHECK_INT_EQ(twin_error_errno(TWIN_T2_UNAVAILABLE), EACCES);
    CHECK_INT_EQ(twin_error_errno(TWIN_T2_TIMEOUT), ETIMEDOUT);
    CHECK_INT_EQ(twin_error_errno(TWIN_NOT_CONNECTED), EHOSTUNREACH);
    CHECK_INT_EQ(twin_error_errno(TWIN_SHUTDOWN), ESHUTDOWN);
    CHECK_INT_EQ(twin_error_errno(TWIN_CUT), EIO);
    CHECK_INT_EQ(twin_error_errno(TWIN_UNAUTHORIZED), EPERM);
    CHECK_INT_EQ(twin_error_errno(TWIN_FAILED), EPROTO);
    CHECK_INT_EQ(twin_error_errno(TWIN_CERT_REJECTED), EKEYREJECTED);
    CHECK_INT_EQ(twin_error_errno(TWIN_LINK_LOST), ECONNRESET);
    CHECK_INT_EQ(twin_error_errno(TWIN_NO_MEMORY), ENOMEM);
    CHECK_INT_EQ(twin_error_errno((enum twin_error)999), EPROTO);

    CHECK_STR_EQ(twin_error_name(TWIN_OK), "OK");
    CHECK_STR_EQ(twin_error_name(TWIN_ASSET_UNKNOWN), "ASSET_UNKNOWN");
    CHECK_STR_EQ(twin_error_name(TWIN_RESOURCE_UNKNOWN), "RESOURCE_UNKNOWN");
    CHECK_STR_EQ(twin_error_name(TWIN_REQ_UNHANDLED), "REQ_UNHANDLED");
    CHECK_STR_EQ(twin_error_name(TWIN_T2_UNAVAILABLE), "T2_UNAVAILABLE");
    CHECK_STR_EQ(twin_error_name(TWIN_T2_TIMEOUT), "T2_TIMEOUT");
    CHECK_STR_EQ(twin_error_name(TWIN_NOT_CONNECTED), "NOT_CONNECTED");
    CHECK_STR_EQ(twin_error_name(TWIN_SHUTDOWN), "SHUTDOWN");
    CHECK_STR_EQ(twin_error_name(TWIN_CUT), "CUT");
    CHECK_STR_EQ(twin_error_name(TWIN_UNAUTHORIZED), "UNAUTHORIZED");
    CHECK_STR_EQ(twin_error_name(TWIN_FAILED), "FAILED");
    CHECK_STR_EQ(twin_error_name(TWIN_CERT_REJECTED), "CERT_REJECTED");
    CHECK_STR_EQ(twin_error_name(TWIN_LINK_LOST), "LINK_LOST");
    CHECK_STR_EQ(twin_error_name(TWIN_NO_MEMORY), "NO_MEMORY");
    CHECK_STR_EQ(twin_error_name((enum twin_error) - 1), "UNKNOWN");
    /* every failure has an errno, and names are distinct */
    for (int e = TWIN_ASSET_UNKNOWN; e <= TWIN_NO_MEMORY; e++) {
        CHECK(twin_error_errno((enum twin_error)e) > 0);
        for (int f = e + 1; f <= TWIN_NO_MEMORY; f++)
            CHECK(strcmp(twin_error_name((enum twin_error)e),
                         twin_error_name((enum twin_error)f)) != 0);
    }
}

static void test_from_http(void)
{
    CHECK_INT_EQ(twin_error_from_http(200, NULL, NULL), TWIN_OK);
    CHECK_INT_EQ(twin_error_from_http(401, "unauthorized", NULL), TWIN_UNAUTHORIZED);
    CHECK_INT_EQ(twin_error_from_http(401, NULL, NULL), TWIN_UNAUTHORIZED);
    CHECK_INT_EQ(twin_error_from_http(403, "t2_unavailable", NULL), TWIN_T2_UNAVAILABLE);
    CHECK_INT_EQ(twin_error_from_http(404, "asset_unknown", NULL), TWIN_ASSET_UNKNOWN);
    CHECK_INT_EQ(twin_error_from_http(404, "t2_failed", "RESOURCE_UNKNOWN"), TWIN_RESOURCE_UNKNOWN);
    CHECK_INT_EQ(twin_error_from_http(404, NULL, "RESOURCE_UNKNOWN"), TWIN_RESOURCE_UNKNOWN);
    CHECK_INT_EQ(twin_error_from_http(404, NULL, NULL), TWIN_FAILED);
    CHECK_INT_EQ(twin_error_from_http(404, "not_found", NULL), TWIN_FAILED);
    CHECK_INT_EQ(twin_error_from_http(501, "t2_failed", "REQ_UNHANDLED"), TWIN_REQ_UNHANDLED);
    CHECK_INT_EQ(twin_error_from_http(501, NULL, NULL), TWIN_REQ_UNHANDLED);
    CHECK_INT_EQ(twin_error_from_http(504, "t2_timeout", NULL), TWIN_T2_TIMEOUT);
    CHECK_INT_EQ(twin_error_from_http(503, "not_connected", NULL), TWIN_NOT_CONNECTED);
    CHECK_INT_EQ(twin_error_from_http(500, "internal", NULL), TWIN_FAILED);
    CHECK_INT_EQ(twin_error_from_http(400, NULL, NULL), TWIN_FAILED);
    CHECK_INT_EQ(twin_error_from_http(0, NULL, NULL), TWIN_FAILED);
    CHECK_INT_EQ(twin_error_from_http(302, NULL, NULL), TWIN_FAILED);
}

/* One classification for every transfer: the snapshot, schemas, the stream and T2 use it. */
static void test_from_transfer(void)
{
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_OK, 200, NULL, NULL), TWIN_OK);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_OK, 0, NULL, NULL), TWIN_OK);
    /* an error status decides, whether curl failed the transfer for it or not */
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_OK, 401, NULL, NULL), TWIN_UNAUTHORIZED);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_HTTP_RETURNED_ERROR, 401, NULL, NULL),
                 TWIN_UNAUTHORIZED);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_OK, 404, "t2_failed", "RESOURCE_UNKNOWN"),
                 TWIN_RESOURCE_UNKNOWN);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_RECV_ERROR, 503, NULL, NULL), TWIN_NOT_CONNECTED);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_OK, 302, NULL, NULL), TWIN_FAILED);
    /* no usable status: curl's result decides */
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_COULDNT_CONNECT, 0, NULL, NULL),
                 TWIN_NOT_CONNECTED);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_COULDNT_RESOLVE_HOST, 0, NULL, NULL),
                 TWIN_NOT_CONNECTED);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_GOT_NOTHING, 0, NULL, NULL), TWIN_LINK_LOST);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_RECV_ERROR, 0, NULL, NULL), TWIN_LINK_LOST);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_SEND_ERROR, 0, NULL, NULL), TWIN_LINK_LOST);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_PARTIAL_FILE, 200, NULL, NULL), TWIN_LINK_LOST);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_OPERATION_TIMEDOUT, 200, NULL, NULL),
                 TWIN_T2_TIMEOUT);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_PEER_FAILED_VERIFICATION, 0, NULL, NULL),
                 TWIN_CERT_REJECTED);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_SSL_CONNECT_ERROR, 0, NULL, NULL), TWIN_FAILED);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_WEIRD_SERVER_REPLY, 0, NULL, NULL), TWIN_FAILED);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_WRITE_ERROR, 200, NULL, NULL), TWIN_FAILED);
    CHECK_INT_EQ(twin_error_from_transfer(CURLE_OUT_OF_MEMORY, 0, NULL, NULL), TWIN_NO_MEMORY);
}

int main(void)
{
    RUN(test_table);
    RUN(test_from_http);
    RUN(test_from_transfer);
    return 0;
}
