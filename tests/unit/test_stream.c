/* Unit tests of stream against the canned HTTP server: records come in seq order once each
 * across reconnects, and running out of memory while parsing a record is not a bad record
 * (which would be skipped, i.e. lost) but a reason to reconnect and read it again. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "canned_server.h"
#include "record.h"
#include "stream.h"
#include "twin_client.h"
#include "unit.h"

#define STREAM_HEAD                                                                                \
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"
#define REC(seq, asset)                                                                            \
    "{\"seq\":" #seq ",\"kind\":\"asset_created\",\"asset\":\"" asset "\",\"time\":null}\n"

/* jansson's allocator, made to fail on request: the next allocation after arming fails. */
static atomic_bool fail_next_json_alloc;

static void *flaky_malloc(size_t n)
{
    if (atomic_exchange(&fail_next_json_alloc, false))
        return NULL;
    return malloc(n);
}

struct seen {
    pthread_mutex_t lock;
    uint64_t seqs[16];
    size_t n;
    size_t bad;
    bool fail_after_first; /* arm the allocator failure once seq 1 is delivered */
};

static int on_record(void *userdata, const struct record *rec)
{
    struct seen *s = userdata;
    if (rec->seq == 0)
        return 0;
    pthread_mutex_lock(&s->lock);
    if (s->n < 16)
        s->seqs[s->n++] = rec->seq;
    if (rec->seq == 1 && s->fail_after_first)
        atomic_store(&fail_next_json_alloc, true); /* hits the parse of the next line */
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static void on_bad_record(void *userdata, uint64_t seq, const char *reason)
{
    struct seen *s = userdata;
    (void)seq;
    fprintf(stderr, "bad record: %s\n", reason);
    pthread_mutex_lock(&s->lock);
    s->bad++;
    pthread_mutex_unlock(&s->lock);
}

static size_t seen_count(struct seen *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Follows the canned answers until want records came (or 10 s passed). */
static void follow(const char *const *answers, size_t n_answers, struct seen *seen, size_t want)
{
    struct canned_server srv;
    canned_server_start(&srv, answers, n_answers);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    struct twin_client_config ccfg = {.url = url};
    struct twin_client *c;
    CHECK_INT_EQ(twin_client_new(&ccfg, &c), 0);
    struct stream_config cfg = {.client = c, .heartbeat_timeout_s = 2, .reconnect_max_s = 0.2};
    struct stream_callbacks cb = {
        .on_record = on_record, .on_bad_record = on_bad_record, .userdata = seen};
    struct stream *st;
    CHECK_INT_EQ(stream_start(&cfg, &cb, &st), 0);
    for (int i = 0; i < 1000 && seen_count(seen) < want; i++)
        usleep(10000);
    stream_free(st);
    twin_client_free(c);
    canned_server_stop(&srv);
}

static void test_reconnect_resumes_without_duplicates(void)
{
    /* The first connection ends after two records; the second replays from the start (a twin
     * that ignores ?after): the stream drops what it delivered already. */
    static const char *const answers[] = {
        STREAM_HEAD REC(1, "a") REC(2, "b"),
        STREAM_HEAD REC(1, "a") REC(2, "b") REC(3, "c"),
    };
    struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    follow(answers, 2, &seen, 3);
    CHECK_INT_EQ(seen.n, 3);
    for (size_t i = 0; i < 3; i++)
        CHECK_INT_EQ(seen.seqs[i], i + 1);
    CHECK_INT_EQ(seen.bad, 0);
}

static void test_out_of_memory_is_not_a_bad_record(void)
{
    static const char *const answers[] = {
        STREAM_HEAD REC(1, "a") REC(2, "b") REC(3, "c"),
        STREAM_HEAD REC(1, "a") REC(2, "b") REC(3, "c"),
    };
    struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER, .fail_after_first = true};
    json_set_alloc_funcs(flaky_malloc, free);
    follow(answers, 2, &seen, 3);
    json_set_alloc_funcs(malloc, free);
    CHECK(!atomic_load(&fail_next_json_alloc)); /* the failure did happen */
    CHECK_INT_EQ(seen.bad, 0);
    CHECK_INT_EQ(seen.n, 3); /* seq 2 came again on the next connection */
    for (size_t i = 0; i < 3; i++)
        CHECK_INT_EQ(seen.seqs[i], i + 1);
}

static void test_seq_beyond_the_announced_head_is_a_bad_record(void)
{
    /* Each line brings at most one new seq: 1000 at the third line is a lie (refused, and it
     * hides nothing), 5 stands behind two refused lines, 7 after 5 skips a seq no line stood
     * for; a heartbeat's head lets the twin's log go on from there. */
    static const char *const answers[] = {
        STREAM_HEAD REC(1, "a") REC(2, "b") REC(1000, "x") "not json\n" REC(5, "c")
            REC(7, "y") "{\"kind\":\"heartbeat\",\"head\":50}\n" REC(50, "d"),
    };
    struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    follow(answers, 1, &seen, 4);
    CHECK_INT_EQ(seen.n, 4);
    CHECK_INT_EQ(seen.seqs[0], 1);
    CHECK_INT_EQ(seen.seqs[1], 2);
    CHECK_INT_EQ(seen.seqs[2], 5);
    CHECK_INT_EQ(seen.seqs[3], 50);
    CHECK_INT_EQ(seen.bad, 3);
}

int main(void)
{
    RUN(test_reconnect_resumes_without_duplicates);
    RUN(test_out_of_memory_is_not_a_bad_record);
    RUN(test_seq_beyond_the_announced_head_is_a_bad_record);
    return 0;
}
