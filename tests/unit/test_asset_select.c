/* test_asset_select: the stable shard of an asset id (pinned: it may never change), the
 * selection predicate (globs over the real id, shard, both), and a follower over the canned
 * server that follows a selection: only selected assets are announced and their events
 * delivered, the others' records move the watermark, T2 to an unselected asset is refused. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asset_select.h"
#include "canned_server.h"
#include "twin/follower.h"
#include "twin/hash.h"
#include "unit.h"

static unsigned shard_of(const char *id, unsigned count)
{
    return twin_asset_shard(id, strlen(id), count);
}

/* Mounts on other machines and of other versions split a twin by these numbers: a change to
 * the hash moves assets between shards. FNV-1a 64 of "", "a" and "foobar" are the published
 * test vectors of FNV. */
static void test_shard_is_pinned(void)
{
    CHECK(twin_fnv1a(TWIN_FNV1A_INIT, "", 0) == 0xcbf29ce484222325ULL);
    CHECK(twin_fnv1a(TWIN_FNV1A_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    CHECK(twin_fnv1a(TWIN_FNV1A_INIT, "foobar", 6) == 0x85944171f73967e8ULL);
    static const struct {
        const char *id;
        unsigned by3, by7, by65536;
    } known[] = {
        {"a", 1, 5, 60556},
        {"foobar", 0, 6, 26600},
        {"acme-pump-01", 2, 1, 39140},
        {"tab\there", 2, 5, 45305},
        {"\xc3\xa4sset-\xe6\x97\xa5\xe6\x9c\xac", 0, 3, 43428}, /* "ässet-日本" in UTF-8 */
        {"asset-0", 2, 5, 38582},
        {"asset-1", 0, 1, 39017},
        {"asset-2", 0, 6, 37712},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        CHECK_INT_EQ(shard_of(known[i].id, 3), known[i].by3);
        CHECK_INT_EQ(shard_of(known[i].id, 7), known[i].by7);
        CHECK_INT_EQ(shard_of(known[i].id, 65536), known[i].by65536);
        CHECK_INT_EQ(shard_of(known[i].id, 1), 0);
        CHECK_INT_EQ(shard_of(known[i].id, 0), 0);
    }
}

static void test_select_rules(void)
{
    struct asset_select *s;

    /* everything: no object at all */
    CHECK_INT_EQ(asset_select_new(NULL, 0, 0, 1, &s), 0);
    CHECK(s == NULL);
    CHECK(asset_select_match(NULL, "anything"));

    /* globs over the whole real id: '*' crosses '/' and '.', no escaping of what is shown */
    char g1[] = "pump-*", g2[] = "tab\t*", g3[] = "*%2F*";
    const char *globs[] = {g1, g2, g3};
    CHECK_INT_EQ(asset_select_new(globs, 3, 0, 0, &s), 0);
    memcpy(g1, "xxxxx*", 6); /* the selection holds its own copies */
    CHECK(asset_select_match(s, "pump-1"));
    CHECK(asset_select_match(s, "pump-.hidden"));
    CHECK(asset_select_match(s, "tab\there"));
    CHECK(!asset_select_match(s, "tab%09here")); /* the shown name is not the id */
    CHECK(asset_select_match(s, "asset%2F%25"));
    CHECK(!asset_select_match(s, "xxxxx1"));
    CHECK(!asset_select_match(s, "a-pump-1")); /* the whole id */
    asset_select_free(s);

    /* shard: exactly one of N takes each id; with globs an id must match both */
    struct asset_select *sh[3];
    for (unsigned k = 0; k < 3; k++)
        CHECK_INT_EQ(asset_select_new(NULL, 0, k, 3, &sh[k]), 0);
    for (int i = 0; i < 300; i++) {
        char id[32];
        snprintf(id, sizeof(id), "asset-%d", i);
        int n = 0;
        for (unsigned k = 0; k < 3; k++) {
            bool m = asset_select_match(sh[k], id);
            n += m;
            CHECK(m == (shard_of(id, 3) == k));
        }
        CHECK_INT_EQ(n, 1);
    }
    for (unsigned k = 0; k < 3; k++)
        asset_select_free(sh[k]);
    const char *pump[] = {"asset-*"};
    CHECK_INT_EQ(asset_select_new(pump, 1, 2, 3, &s), 0);
    CHECK(asset_select_match(s, "asset-0")); /* shard 2 of 3 */
    CHECK(!asset_select_match(s, "asset-1"));
    CHECK(!asset_select_match(s, "acme-pump-01")); /* shard 2, but not asset-* */
    asset_select_free(s);

    /* bad configs */
    const char *null_glob[] = {"a*", NULL};
    CHECK_INT_EQ(asset_select_new(null_glob, 2, 0, 0, &s), -EINVAL);
    CHECK_INT_EQ(asset_select_new(NULL, 1, 0, 0, &s), -EINVAL);
    CHECK_INT_EQ(asset_select_new(NULL, 0, 3, 3, &s), -EINVAL);
    CHECK_INT_EQ(asset_select_new(NULL, 0, 7, 1, &s), 0); /* no sharding: the index is moot */
    CHECK(s == NULL);
    asset_select_free(NULL);
}

#define HTTP_JSON "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
#define HTTP_NDJSON                                                                                \
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"
#define CREATED(seq, a) "{\"seq\":" #seq ",\"kind\":\"asset_created\",\"asset\":\"" a "\"}\n"
#define DELETED(seq, a) "{\"seq\":" #seq ",\"kind\":\"asset_deleted\",\"asset\":\"" a "\"}\n"
#define EVENT(seq, a, off)                                                                         \
    "{\"seq\":" #seq ",\"kind\":\"event\",\"asset\":\"" a "\",\"offset\":" #off                    \
    ",\"name\":\"Ping\",\"version\":1,\"source\":\"t\",\"time\":null,\"systime\":null,"            \
    "\"data\":\"AA==\"}\n"

struct seen {
    pthread_mutex_t lock;
    char log[2048];
    struct follower *f;
};

static void note(struct seen *s, const char *what, const char *asset)
{
    pthread_mutex_lock(&s->lock);
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof(s->log) - n, "%s %s;", what, asset);
    pthread_mutex_unlock(&s->lock);
}

static void on_created(void *u, const char *asset)
{
    note(u, "created", asset);
}

static void on_deleted(void *u, const char *asset)
{
    note(u, "deleted", asset);
}

static void on_event(void *u, const struct follower_event *ev)
{
    struct seen *s = u;
    char what[64];
    snprintf(what, sizeof(what), "event %llu", (unsigned long long)ev->seq);
    note(s, what, ev->asset);
    CHECK_INT_EQ(follower_ack(s->f, ev->seq, ev->asset, ev->offset), 0);
}

/* Waits up to 20 s for the follower's watermark to reach w; returns the status. */
static struct follower_status wait_watermark(struct follower *f, uint64_t w)
{
    struct follower_status st;
    for (int i = 0; i < 2000; i++) {
        follower_get_status(f, &st);
        if (st.replay_done && st.watermark >= w)
            break;
        usleep(10000);
    }
    return st;
}

static void make_schema_dir(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/schemas", dir);
    CHECK_INT_EQ(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/schemas/Ping", dir);
    CHECK_INT_EQ(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/schemas/Ping/1.avsc", dir);
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    fputs("{\"type\":\"record\",\"name\":\"Ping\",\"fields\":[{\"name\":\"n\",\"type\":\"long\"}]}",
          fp);
    CHECK_INT_EQ(fclose(fp), 0);
}

static void test_follower_follows_the_selection(void)
{
    /* The snapshot, then the stream: the replay up to head 4, then live records. valve-1's
     * deletion and every valve record are skipped; the watermark passes them. */
    static const char *const answers[] = {
        HTTP_JSON "{\"head\":4,\"assets\":[{\"id\":\"pump-1\"},{\"id\":\"valve-1\"}]}",
        HTTP_NDJSON CREATED(1, "pump-1") CREATED(2, "valve-1") EVENT(3, "valve-1", 0)
            EVENT(4, "pump-1", 0) "{\"kind\":\"caught_up\",\"head\":4}\n" CREATED(5, "pump-9")
                CREATED(6, "valve-2") EVENT(7, "valve-2", 0) EVENT(8, "pump-9", 0)
                    DELETED(9, "valve-1") EVENT(10, "pump-1", 1) EVENT(11, "valve-2", 1),
    };
    char dir[] = "/tmp/test_asset_select.XXXXXX", tracker[600], schemas[600], url[64];
    CHECK(mkdtemp(dir) != NULL);
    make_schema_dir(dir);
    snprintf(tracker, sizeof(tracker), "%s/tracker/journal", dir);
    snprintf(schemas, sizeof(schemas), "%s/schemas", dir);
    struct canned_server srv;
    canned_server_start(&srv, answers, 2);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);

    char glob[] = "pump-*";
    const char *globs[] = {glob};
    struct follower_config cfg = {.url = url,
                                  .tracker_path = tracker,
                                  .schema_dir = schemas,
                                  .t2_enabled = true,
                                  .heartbeat_timeout_s = 5,
                                  .reconnect_max_s = 0.2,
                                  .asset_globs = globs,
                                  .n_asset_globs = 1};
    struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct follower_callbacks cb = {.on_asset_created = on_created,
                                    .on_asset_deleted = on_deleted,
                                    .on_event = on_event,
                                    .userdata = &seen};
    struct follower *f;

    cfg.shard_count = 3;
    cfg.shard_index = 3;
    CHECK_INT_EQ(follower_new(&cfg, &cb, &f), -EINVAL);
    cfg.shard_count = 0;
    cfg.shard_index = 0;
    CHECK_INT_EQ(follower_new(&cfg, &cb, &f), 0);
    glob[0] = 'x'; /* follower_new copied the globs */
    seen.f = f;
    CHECK_INT_EQ(follower_start(f), 0);
    struct follower_status st = wait_watermark(f, 11);
    CHECK_INT_EQ(st.watermark, 11);
    CHECK_INT_EQ(st.delivered, 3);
    CHECK_INT_EQ(st.acked, 3);
    CHECK_INT_EQ(st.pending, 0);
    pthread_mutex_lock(&seen.lock);
    CHECK_STR_EQ(seen.log, "created pump-1;event 4 pump-1;created pump-9;event 8 pump-9;"
                           "event 10 pump-1;");
    pthread_mutex_unlock(&seen.lock);

    struct t2_stream *t2 = NULL;
    enum twin_error e = TWIN_OK;
    CHECK_INT_EQ(follower_t2_request(f, "valve-2", "Doc", "x", 1, 1, &t2, &e), -ENOENT);
    CHECK_INT_EQ(e, TWIN_ASSET_UNKNOWN);
    CHECK(t2 == NULL);
    follower_free(f);
    canned_server_stop(&srv);

    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT_EQ(system(cmd), 0);
}

int main(void)
{
    RUN(test_shard_is_pinned);
    RUN(test_select_rules);
    RUN(test_follower_follows_the_selection);
    return 0;
}
