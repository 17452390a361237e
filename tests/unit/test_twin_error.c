/* test_twin_error: the errno table and the classification of HTTP failures. */
#include <errno.h>

#include "twin/twin_error.h"
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
    CHECK_STR_EQ(twin_error_name((enum twin_error) - 1), "UNKNOWN");
    /* every failure has an errno, and names are distinct */
    for (int e = TWIN_ASSET_UNKNOWN; e <= TWIN_FAILED; e++) {
        CHECK(twin_error_errno((enum twin_error)e) > 0);
        for (int f = e + 1; f <= TWIN_FAILED; f++)
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

int main(void)
{
    RUN(test_table);
    RUN(test_from_http);
    return 0;
}
