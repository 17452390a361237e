/* Unit tests of twin_client: URL checks, and the error mapping against a tiny canned HTTP
 * server on a loopback port chosen by the kernel. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "canned_server.h"
#include "schema_cache.h"
#include "twin_client.h"
#include "unit.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_urls(void)
{
    static const char *good[] = {
        "http://127.0.0.1:8765",     "http://127.0.0.1:8765/", "https://twin.example.com",
        "http://localhost:1/prefix", "https://[::1]:8443",
    };
    static const char *bad[] = {
        "",
        "127.0.0.1:8765",
        "ftp://127.0.0.1/",
        "http://",
        "http://h/?q=1",
        "http://h/#frag",
        "http://user:pw@h/",
        "file:///etc/passwd",
        "http://h/\n",
        "gopher://h",
    };
    struct twin_client *c = NULL;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct twin_client_config cfg = {.url = good[i]};
        CHECK_INT_EQ(twin_client_new(&cfg, &c), 0);
        twin_client_free(c);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct twin_client_config cfg = {.url = bad[i]};
        c = NULL;
        int r = twin_client_new(&cfg, &c);
        if (r != -EINVAL)
            fprintf(stderr, "accepted bad url %s\n", bad[i]);
        CHECK_INT_EQ(r, -EINVAL);
        CHECK(c == NULL);
    }
    struct twin_client_config nul = {.url = NULL};
    CHECK_INT_EQ(twin_client_new(&nul, &c), -EINVAL);

    /* A token that would split the header is refused. */
    struct twin_client_config tok = {.url = "http://h", .token = "abc\r\nX-Evil: 1"};
    CHECK_INT_EQ(twin_client_new(&tok, &c), -EINVAL);

    /* The trailing slash goes, so paths join cleanly. */
    struct twin_client_config slash = {.url = "http://h:1//"};
    CHECK_INT_EQ(twin_client_new(&slash, &c), 0);
    CHECK_STR_EQ(twin_client_url(c), "http://h:1");
    struct curl_slist *hdr = NULL;
    CHECK(twin_client_new_handle(c, "no-v1", &hdr) == NULL);
    void *h = twin_client_new_handle(c, "/v1/stream?after=3", &hdr);
    CHECK(h != NULL);
    char *eff = NULL;
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
    CHECK_STR_EQ(eff, "http://h:1/v1/stream?after=3");
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    twin_client_free(c);
    twin_client_free(NULL);
}

/* A loopback port with nothing listening: bind, read the port, close. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_unreachable(void)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
    struct twin_client_config cfg = {.url = url};
    struct twin_client *c;
    json_t *j = NULL;
    CHECK_INT_EQ(twin_client_new(&cfg, &c), 0);
    double t0 = now_s();
    CHECK_INT_EQ(twin_client_get_assets(c, &j), -EHOSTUNREACH);
    CHECK(now_s() - t0 < 2.0);
    char *text;
    size_t len;
    CHECK_INT_EQ(twin_client_get_schema(c, "X", 1, &text, &len), -EHOSTUNREACH);
    twin_client_free(c);
}

static void test_mapping(void)
{
    static const char *const answers[] = {
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 53\r\n\r\n"
        "{\"head\": 7, \"assets\": [{\"id\": \"a1\", \"created\": \"x\"}]}",
        "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 19\r\n\r\n"
        "{\"error\": \"unauth\"}",
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 9\r\n\r\nnot json!",
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 13\r\n\r\n{\"head\": \"x\"}",
        "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 17\r\n\r\n{\"type\":\"record\"}",
        "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        "this is not http at all\r\n\r\n",
        NULL,
    };
    struct canned_server s;
    canned_server_start(&s, answers, sizeof(answers) / sizeof(answers[0]));
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    struct twin_client_config cfg = {.url = url, .token = "s3cret", .timeout_ms = 300};
    struct twin_client *c;
    CHECK_INT_EQ(twin_client_new(&cfg, &c), 0);

    json_t *j = NULL;
    CHECK_INT_EQ(twin_client_get_assets(c, &j), 0);
    CHECK_INT_EQ(json_integer_value(json_object_get(j, "head")), 7);
    CHECK_INT_EQ(json_array_size(json_object_get(j, "assets")), 1);
    json_decref(j);
    CHECK(strstr(s.last_request, "GET /v1/assets HTTP/1.1\r\n") == s.last_request);
    CHECK(strstr(s.last_request, "\r\nAuthorization: Bearer s3cret\r\n") != NULL);

    CHECK_INT_EQ(twin_client_get_assets(c, &j), -EPERM);
    CHECK_INT_EQ(twin_client_get_assets(c, &j), -EPROTO); /* not JSON */
    CHECK_INT_EQ(twin_client_get_assets(c, &j), -EPROTO); /* JSON, not a snapshot */
    CHECK_INT_EQ(twin_client_get_assets(c, &j), -EPROTO); /* 404: not a twin */

    char *text = NULL;
    size_t len = 0;
    CHECK_INT_EQ(twin_client_schema_fetch(c, "New Doc", 3, &text, &len), -ENOENT);
    CHECK(strstr(s.last_request, "GET /v1/schemas/New%20Doc/3 HTTP/1.1\r\n") == s.last_request);
    CHECK_INT_EQ(twin_client_get_schema(c, "NewDocSet", 2, &text, &len), 0);
    CHECK_INT_EQ(len, 17);
    CHECK_STR_EQ(text, "{\"type\":\"record\"}");
    free(text);
    CHECK_INT_EQ(twin_client_get_schema(c, "X", 1, &text, &len), -EPROTO); /* 500 */
    CHECK_INT_EQ(twin_client_get_schema(c, "X", 1, &text, &len), -EPROTO); /* not HTTP */
    double t0 = now_s();
    CHECK_INT_EQ(twin_client_get_schema(c, "X", 1, &text, &len), -ETIMEDOUT);
    CHECK(now_s() - t0 < 0.75);
    twin_client_free(c);
    canned_server_stop(&s);
}

/* A schema answer longer than SCHEMA_MAX_TEXT_BYTES is refused while it streams in: the client
 * never holds more than that, whatever the twin sends. */
static void test_schema_too_large(void)
{
    size_t body = SCHEMA_MAX_TEXT_BYTES + 1;
    char head[128];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n", body);
    char *big = malloc((size_t)n + body + 1);
    CHECK(big != NULL);
    memcpy(big, head, (size_t)n);
    memset(big + n, ' ', body);
    big[(size_t)n + body] = '\0';
    const char *const answers[] = {big};
    signal(SIGPIPE, SIG_IGN); /* the client stops reading mid-answer */
    struct canned_server s;
    canned_server_start(&s, answers, 1);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    struct twin_client_config cfg = {.url = url, .timeout_ms = 2000};
    struct twin_client *c;
    CHECK_INT_EQ(twin_client_new(&cfg, &c), 0);
    char *text = NULL;
    size_t len = 0;
    CHECK_INT_EQ(twin_client_get_schema(c, "Big", 1, &text, &len), -EFBIG);
    CHECK(text == NULL);
    twin_client_free(c);
    canned_server_stop(&s);
    free(big);
}

int main(void)
{
    RUN(test_urls);
    RUN(test_unreachable);
    RUN(test_mapping);
    RUN(test_schema_too_large);
    return 0;
}
