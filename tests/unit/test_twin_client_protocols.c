/* test_twin_client_protocols: every handle of twin_client speaks http and https only, also on
 * a libcurl that does not take CURLOPT_PROTOCOLS_STR.
 *
 * Linked with -Wl,--wrap=curl_easy_setopt: the wrapper below sees every option core sets and
 * can play a libcurl that refuses the string form of the protocol list (before 7.85), or both
 * forms, without a second libcurl on the machine. */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "twin_client.h"
#include "unit.h"

CURLcode __real_curl_easy_setopt(CURL *h, CURLoption opt, ...);
CURLcode __wrap_curl_easy_setopt(CURL *h, CURLoption opt, ...);

static bool refuse_str, refuse_mask;
static char protocols_str[64];
static long protocols_mask;

/* Passes the option on with its argument in the type its number says (curl.h's ranges). */
CURLcode __wrap_curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    CURLcode rc;
    va_list ap;

    va_start(ap, opt);
    if (opt == CURLOPT_PROTOCOLS_STR) {
        const char *v = va_arg(ap, const char *);
        rc = refuse_str ? CURLE_UNKNOWN_OPTION : __real_curl_easy_setopt(h, opt, v);
        if (rc == CURLE_OK)
            snprintf(protocols_str, sizeof(protocols_str), "%s", v);
    } else if (opt < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);
        /* CURLOPT_PROTOCOLS is deprecated in the headers that have the string form. */
        if (opt == (CURLoption)(CURLOPTTYPE_LONG + 181)) {
            rc = refuse_mask ? CURLE_UNKNOWN_OPTION : __real_curl_easy_setopt(h, opt, v);
            if (rc == CURLE_OK)
                protocols_mask = v;
        } else {
            rc = __real_curl_easy_setopt(h, opt, v);
        }
    } else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB) {
        curl_off_t v = va_arg(ap, curl_off_t);
        rc = __real_curl_easy_setopt(h, opt, v);
    } else {
        void *v = va_arg(ap, void *); /* object, string, function, blob: all pointers here */
        rc = __real_curl_easy_setopt(h, opt, v);
    }
    va_end(ap);
    return rc;
}

static void reset(bool no_str, bool no_mask)
{
    refuse_str = no_str;
    refuse_mask = no_mask;
    protocols_str[0] = '\0';
    protocols_mask = 0;
}

static struct twin_client *client(void)
{
    struct twin_client_config cfg = {.url = "http://127.0.0.1:9", .timeout_ms = 2000};
    struct twin_client *c = NULL;

    CHECK_INT_EQ(twin_client_new(&cfg, &c), 0);
    return c;
}

static void test_string_form(void)
{
    struct twin_client *c = client();
    struct curl_slist *headers = NULL;

    reset(false, false);
    CURL *h = twin_client_new_handle(c, "/v1/assets", &headers);
    CHECK(h != NULL);
    CHECK_STR_EQ(protocols_str, "http,https");
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    twin_client_free(c);
}

/* A libcurl before 7.85 answers CURLE_UNKNOWN_OPTION: the bit mask says the same. */
static void test_mask_when_no_string_form(void)
{
    struct twin_client *c = client();
    struct curl_slist *headers = NULL;

    reset(true, false);
    CURL *h = twin_client_new_handle(c, "/v1/assets", &headers);
    CHECK(h != NULL);
    CHECK_STR_EQ(protocols_str, "");
    CHECK_INT_EQ(protocols_mask, CURLPROTO_HTTP | CURLPROTO_HTTPS);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    twin_client_free(c);
}

/* A libcurl that takes neither form gets no handle and no request: never every protocol. */
static void test_refused_when_neither(void)
{
    struct twin_client *c = client();
    struct curl_slist *headers = NULL;
    json_t *j = NULL;

    reset(true, true);
    CHECK(twin_client_new_handle(c, "/v1/assets", &headers) == NULL);
    CHECK(twin_client_get_assets(c, &j) == -EPROTONOSUPPORT);
    CHECK(j == NULL);
    twin_client_free(c);
}

int main(void)
{
    RUN(test_string_form);
    RUN(test_mask_when_no_string_form);
    RUN(test_refused_when_neither);
    return 0;
}
