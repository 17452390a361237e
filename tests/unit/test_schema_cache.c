/* test_schema_cache: local directory over fetch, one fetch per schema, negative caching, the
 * retries of a fetch that failed for a passing reason. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event_schema.h"
#include "schema_cache.h"
#include "unit.h"

struct fetcher {
    pthread_mutex_t lock;
    int calls;
    int fail_with; /* when non-zero, every fetch returns it */
};

static int fetch(void *u, const char *name, int version, char **ret_text, size_t *ret_len)
{
    struct fetcher *f = u;
    const char *text = NULL;

    pthread_mutex_lock(&f->lock);
    f->calls++;
    pthread_mutex_unlock(&f->lock);
    usleep(2000); /* a slow network: lets threads race */
    if (f->fail_with)
        return f->fail_with;
    if (strcmp(name, "Remote") == 0 && version == 1)
        text = "\"long\"";
    else if (strcmp(name, "Both") == 0 && version == 2)
        text = "\"long\"";
    else if (strcmp(name, "Broken") == 0)
        text = "{\"type\": ";
    if (!text)
        return -ENOENT;
    *ret_text = strdup(text);
    *ret_len = strlen(text);
    return *ret_text ? 0 : -ENOMEM;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
}

/* Decodes one zig-zag byte with s and returns the integer it held. */
static long long decode_small(const struct event_schema *s, unsigned char byte)
{
    json_t *j = NULL;
    long long v;
    CHECK_INT_EQ(event_schema_decode(s, &byte, 1, &j, NULL), 0);
    CHECK(json_is_integer(j));
    v = json_integer_value(j);
    json_decref(j);
    return v;
}

static char dir[64];

static void test_dir_and_fetch(void)
{
    struct fetcher f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct schema_cache *c = NULL;
    const struct event_schema *s1 = NULL, *s2 = NULL;
    char path[256];

    snprintf(path, sizeof(path), "%s/Both", dir);
    CHECK(mkdir(path, 0700) == 0);
    /* the local file says boolean, the twin says long: the decode tells which one won */
    snprintf(path, sizeof(path), "%s/Both/2.avsc", dir);
    write_file(path, "\"boolean\"");
    snprintf(path, sizeof(path), "%s/Local", dir);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/Local/7.avsc", dir);
    write_file(path, "{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"x\", "
                     "\"type\": \"int\"}]}");
    snprintf(path, sizeof(path), "%s/Local/8.avsc", dir);
    write_file(path, "not json");

    CHECK_INT_EQ(schema_cache_new(dir, fetch, &f, &c), 0);

    /* local file, no fetch */
    CHECK_INT_EQ(schema_cache_get(c, "Local", 7, &s1), 0);
    CHECK(s1 != NULL);
    CHECK_INT_EQ(f.calls, 0);
    CHECK_INT_EQ(schema_cache_get(c, "Local", 7, &s2), 0);
    CHECK(s1 == s2);

    /* the local file overrides the twin's */
    CHECK_INT_EQ(schema_cache_get(c, "Both", 2, &s1), 0);
    CHECK_INT_EQ(f.calls, 0);
    {
        unsigned char b = 1;
        json_t *j = NULL;
        CHECK_INT_EQ(event_schema_decode(s1, &b, 1, &j, NULL), 0);
        CHECK(json_is_true(j)); /* boolean: the local schema */
        json_decref(j);
    }

    /* not local: fetched once, then cached */
    CHECK_INT_EQ(schema_cache_get(c, "Remote", 1, &s1), 0);
    CHECK_INT_EQ(f.calls, 1);
    CHECK_INT_EQ(decode_small(s1, 0x03), -2);
    CHECK_INT_EQ(schema_cache_get(c, "Remote", 1, &s2), 0);
    CHECK(s1 == s2);
    CHECK_INT_EQ(f.calls, 1);

    /* unknown everywhere: -ENOENT, remembered for a while */
    CHECK_INT_EQ(schema_cache_get(c, "Nope", 1, &s1), -ENOENT);
    CHECK_INT_EQ(f.calls, 2);
    for (int i = 0; i < 100; i++)
        CHECK_INT_EQ(schema_cache_get(c, "Nope", 1, &s1), -ENOENT);
    CHECK_INT_EQ(f.calls, 2);

    /* bad schema text, local or fetched: -EINVAL, also remembered */
    CHECK_INT_EQ(schema_cache_get(c, "Local", 8, &s1), -EINVAL);
    CHECK_INT_EQ(schema_cache_get(c, "Broken", 1, &s1), -EINVAL);
    CHECK_INT_EQ(f.calls, 3);
    CHECK_INT_EQ(schema_cache_get(c, "Broken", 1, &s1), -EINVAL);
    CHECK_INT_EQ(f.calls, 3);

    /* a transient failure is not remembered */
    f.fail_with = -EHOSTUNREACH;
    CHECK_INT_EQ(schema_cache_get(c, "Other", 1, &s1), -EHOSTUNREACH);
    CHECK_INT_EQ(schema_cache_get(c, "Other", 1, &s1), -EHOSTUNREACH);
    CHECK_INT_EQ(f.calls, 5);
    f.fail_with = 0;
    /* cached schemas need no fetch even while the twin is away */
    f.fail_with = -EHOSTUNREACH;
    CHECK_INT_EQ(schema_cache_get(c, "Remote", 1, &s1), 0);
    f.fail_with = 0;

    /* names that could escape the directory */
    CHECK_INT_EQ(schema_cache_get(c, "..", 1, &s1), -EINVAL);
    CHECK_INT_EQ(schema_cache_get(c, "a/b", 1, &s1), -EINVAL);
    CHECK_INT_EQ(schema_cache_get(c, "", 1, &s1), -EINVAL);
    CHECK_INT_EQ(f.calls, 5);

    /* a schema registered later is found once the negative entry expires (about 5 s) */
    snprintf(path, sizeof(path), "%s/Nope", dir);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/Nope/1.avsc", dir);
    write_file(path, "\"int\"");
    CHECK_INT_EQ(schema_cache_get(c, "Nope", 1, &s1), -ENOENT);
    sleep(6);
    CHECK_INT_EQ(schema_cache_get(c, "Nope", 1, &s1), 0);
    CHECK_INT_EQ(decode_small(s1, 0x04), 2);

    schema_cache_free(c);
    schema_cache_free(NULL);
}

static void test_no_dir_no_fetch(void)
{
    struct schema_cache *c = NULL;
    const struct event_schema *s = NULL;

    CHECK_INT_EQ(schema_cache_new(NULL, NULL, NULL, &c), 0);
    CHECK_INT_EQ(schema_cache_get(c, "X", 1, &s), -ENOENT);
    schema_cache_free(c);
    CHECK_INT_EQ(schema_cache_new("/nonexistent/dir", NULL, NULL, &c), 0);
    CHECK_INT_EQ(schema_cache_get(c, "X", 1, &s), -ENOENT);
    schema_cache_free(c);
}

struct racer {
    struct schema_cache *c;
    int version;
    const struct event_schema *got;
    int r;
};

static void *race(void *p)
{
    struct racer *a = p;
    a->r = schema_cache_get(a->c, "Remote", a->version, &a->got);
    return NULL;
}

static void test_threads(void)
{
    struct fetcher f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct schema_cache *c = NULL;
    pthread_t th[8];
    struct racer args[8];

    CHECK_INT_EQ(schema_cache_new(NULL, fetch, &f, &c), 0);
    for (int i = 0; i < 8; i++) {
        args[i] = (struct racer){.c = c, .version = 1 + (i % 2)};
        CHECK_INT_EQ(pthread_create(&th[i], NULL, race, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) {
        if (args[i].version == 1) {
            CHECK_INT_EQ(args[i].r, 0);
            CHECK(args[i].got == args[0].got); /* one schema, whoever fetched it */
        } else {
            CHECK_INT_EQ(args[i].r, -ENOENT);
        }
    }
    CHECK(f.calls >= 2 && f.calls <= 8);
    schema_cache_free(c);
}

/* ---- the bounds ---- */

#define BIG_FIELDS 2000 /* a record of this many unions parses to about 5 MB */

struct big_fetcher {
    int calls;
    int fields; /* of each schema */
};

/* "Big" version v: a record of fields unions, each field named after v (distinct schemas). */
static int fetch_big(void *u, const char *name, int version, char **ret_text, size_t *ret_len)
{
    struct big_fetcher *f = u;
    size_t cap = (size_t)f->fields * 100 + 100, used = 0;
    char *text;

    f->calls++;
    if (strcmp(name, "Huge") == 0) { /* text over 1 MiB */
        size_t len = (size_t)1024 * 1024 + 1;
        text = malloc(len + 1);
        CHECK(text != NULL);
        memset(text, ' ', len);
        memcpy(text, "\"int\"", 5);
        text[len] = '\0';
        *ret_text = text;
        *ret_len = len;
        return 0;
    }
    if (strcmp(name, "Big") != 0)
        return -ENOENT;
    text = malloc(cap);
    CHECK(text != NULL);
    used +=
        (size_t)snprintf(text, cap, "{\"type\":\"record\",\"name\":\"R%d\",\"fields\":[", version);
    for (int i = 0; i < f->fields; i++)
        used += (size_t)snprintf(text + used, cap - used,
                                 "%s{\"name\":\"v%d_%d\",\"type\":[\"null\",\"string\","
                                 "{\"type\":\"array\",\"items\":\"long\"}]}",
                                 i ? "," : "", version, i);
    used += (size_t)snprintf(text + used, cap - used, "]}");
    CHECK(used < cap);
    *ret_text = text;
    *ret_len = used;
    return 0;
}

/* Decodes an all-null value of a Big schema and checks it has every field. */
static void decode_big(const struct event_schema *s, int fields)
{
    unsigned char *zeros = calloc((size_t)fields, 1);
    json_t *j = NULL;
    CHECK(zeros != NULL);
    CHECK_INT_EQ(event_schema_decode(s, zeros, (size_t)fields, &j, NULL), 0);
    CHECK_INT_EQ(json_object_size(j), fields);
    json_decref(j);
    free(zeros);
}

/* Heap in use, or 0 where malloc is not glibc's (valgrind, ASan). */
static size_t heap_used(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static void test_bounded_by_bytes(void)
{
    struct big_fetcher f = {.fields = BIG_FIELDS};
    struct schema_cache *c = NULL;
    const struct event_schema *s = NULL, *held1 = NULL;
    const size_t bound = (size_t)16 * 1024 * 1024;
    size_t bytes = 0, n = 0, heap0, heap1;

    CHECK_INT_EQ(schema_cache_new(NULL, fetch_big, &f, &c), 0);
    schema_cache_set_limits(c, bound, 0);
    heap0 = heap_used();
    for (int v = 1; v <= 12; v++) {
        CHECK_INT_EQ(schema_cache_get(c, "Big", v, &s), 0);
        decode_big(s, BIG_FIELDS);
        schema_cache_put(c, s);
    }
    CHECK_INT_EQ(f.calls, 12);
    heap1 = heap_used();
    fprintf(stderr, "   heap grew by %zu bytes for 12 schemas\n", heap1 - heap0);
    if (heap0 > 0) /* 12 schemas of about 5 MB: the cache keeps what fits 16 MiB */
        CHECK(heap1 - heap0 < bound + bound / 4);
    schema_cache_usage(c, &bytes, &n);
    fprintf(stderr, "   cache holds %zu schemas, %zu bytes\n", n, bytes);
    CHECK(bytes <= bound);
    CHECK(n >= 2 && n < 12);
    CHECK(bytes > (bound / 2)); /* measured, not a guess of a few bytes per schema */

    /* the most recent ones are there; an evicted one is fetched again when needed */
    CHECK_INT_EQ(schema_cache_get(c, "Big", 12, &s), 0);
    schema_cache_put(c, s);
    CHECK_INT_EQ(f.calls, 12);
    CHECK_INT_EQ(schema_cache_get(c, "Big", 1, &s), 0);
    CHECK_INT_EQ(f.calls, 13);
    decode_big(s, BIG_FIELDS);
    schema_cache_put(c, s);

    /* least recently used goes first: touching 12 keeps it while 1 came later */
    CHECK_INT_EQ(schema_cache_get(c, "Big", 12, &s), 0);
    schema_cache_put(c, s);
    for (int v = 20; v < 20 + (int)n - 1; v++) {
        CHECK_INT_EQ(schema_cache_get(c, "Big", v, &s), 0);
        schema_cache_put(c, s);
    }
    int calls = f.calls;
    CHECK_INT_EQ(schema_cache_get(c, "Big", 12, &s), 0);
    schema_cache_put(c, s);
    CHECK_INT_EQ(f.calls, calls);
    CHECK_INT_EQ(schema_cache_get(c, "Big", 1, &s), 0); /* evicted before 12 */
    schema_cache_put(c, s);
    CHECK_INT_EQ(f.calls, calls + 1);

    /* a schema handed out stays valid when evicted, and goes when given back */
    CHECK_INT_EQ(schema_cache_get(c, "Big", 100, &held1), 0);
    for (int v = 101; v <= 110; v++) {
        CHECK_INT_EQ(schema_cache_get(c, "Big", v, &s), 0);
        schema_cache_put(c, s);
    }
    decode_big(held1, BIG_FIELDS); /* freed memory here would be a crash under ASan */
    schema_cache_usage(c, &bytes, &n);
    CHECK(bytes <= bound + bound / 2); /* the cache's share and the one handed out */
    size_t with_held = bytes;
    schema_cache_put(c, held1);
    schema_cache_usage(c, &bytes, &n);
    CHECK(bytes < with_held);
    CHECK(bytes <= bound);
    CHECK_INT_EQ(schema_cache_get(c, "Big", 100, &s), 0); /* fetched again */
    schema_cache_put(c, s);

    /* by count too */
    schema_cache_set_limits(c, bound, 2);
    schema_cache_usage(c, &bytes, &n);
    CHECK_INT_EQ(n, 2);
    schema_cache_free(c);
}

static void test_too_large(void)
{
    struct big_fetcher f = {.fields = BIG_FIELDS};
    struct schema_cache *c = NULL;
    const struct event_schema *s = NULL;
    size_t bytes = 1, n = 1;

    CHECK_INT_EQ(schema_cache_new(NULL, fetch_big, &f, &c), 0);
    /* one schema that alone holds more than the bound: refused, and remembered */
    schema_cache_set_limits(c, (size_t)1024 * 1024, 0);
    CHECK_INT_EQ(schema_cache_get(c, "Big", 1, &s), -EFBIG);
    CHECK_INT_EQ(schema_cache_get(c, "Big", 1, &s), -EFBIG);
    CHECK_INT_EQ(f.calls, 1);
    schema_cache_usage(c, &bytes, &n);
    CHECK_INT_EQ(bytes, 0);
    CHECK_INT_EQ(n, 0);
    /* a text over 1 MiB is not even parsed */
    CHECK_INT_EQ(schema_cache_get(c, "Huge", 1, &s), -EFBIG);
    schema_cache_free(c);
}

/* A twin whose schema store fails its first fail_first fetches with err, then serves "long". */
struct flaky {
    int calls, fail_first, err;
};

static int flaky_fetch(void *u, const char *name, int version, char **ret_text, size_t *ret_len)
{
    struct flaky *f = u;

    (void)name;
    (void)version;
    if (++f->calls <= f->fail_first)
        return f->err;
    *ret_text = strdup("\"long\"");
    *ret_len = 6;
    return *ret_text ? 0 : -ENOMEM;
}

struct waits {
    int n, total_ms;
    bool give_up;
};

static bool count_wait(void *u, int ms)
{
    struct waits *w = u;

    w->n++;
    w->total_ms += ms;
    return w->give_up;
}

static void test_retrying(void)
{
    struct flaky f = {.fail_first = 2, .err = -EHOSTUNREACH};
    struct waits w = {0};
    struct schema_cache *c = NULL;
    const struct event_schema *s = NULL;

    CHECK_INT_EQ(schema_cache_new(NULL, flaky_fetch, &f, &c), 0);

    /* A blip: two failed fetches, then the schema, after waits of 0.1 and 0.4 s. */
    CHECK_INT_EQ(schema_cache_get_retrying(c, "Blip", 1, count_wait, &w, &s), 0);
    CHECK_INT_EQ(f.calls, 3);
    CHECK_INT_EQ(w.n, 2);
    CHECK_INT_EQ(w.total_ms, 500);
    CHECK_INT_EQ(decode_small(s, 0x02), 1);
    schema_cache_put(c, s);

    /* A store that stays down: four tries more, then one fetch a call for a while. */
    f = (struct flaky){.fail_first = 1000, .err = -EHOSTUNREACH};
    w = (struct waits){0};
    CHECK_INT_EQ(schema_cache_get_retrying(c, "Down", 1, count_wait, &w, &s), -EHOSTUNREACH);
    CHECK_INT_EQ(f.calls, 5);
    CHECK_INT_EQ(w.n, 4);
    CHECK_INT_EQ(w.total_ms, 3500);
    CHECK_INT_EQ(schema_cache_get_retrying(c, "Down", 1, count_wait, &w, &s), -EHOSTUNREACH);
    CHECK_INT_EQ(f.calls, 6);
    CHECK_INT_EQ(w.n, 4);
    /* another version is another schema: it gets its tries */
    CHECK_INT_EQ(schema_cache_get_retrying(c, "Down", 2, count_wait, &w, &s), -EHOSTUNREACH);
    CHECK_INT_EQ(w.n, 8);

    /* Not tried again: a timeout, a schema that does not exist. */
    f = (struct flaky){.fail_first = 1000, .err = -ETIMEDOUT};
    w = (struct waits){0};
    CHECK_INT_EQ(schema_cache_get_retrying(c, "Slow", 1, count_wait, &w, &s), -ETIMEDOUT);
    f.err = -ENOENT;
    CHECK_INT_EQ(schema_cache_get_retrying(c, "Gone", 1, count_wait, &w, &s), -ENOENT);
    CHECK_INT_EQ(f.calls, 2);
    CHECK_INT_EQ(w.n, 0);

    /* A caller that is stopping gives up at its first wait. */
    f = (struct flaky){.fail_first = 1000, .err = -ECONNRESET};
    w = (struct waits){.give_up = true};
    CHECK_INT_EQ(schema_cache_get_retrying(c, "Stop", 1, count_wait, &w, &s), -ECONNRESET);
    CHECK_INT_EQ(f.calls, 1);
    CHECK_INT_EQ(w.n, 1);

    schema_cache_free(c);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_schema_cache.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    RUN(test_no_dir_no_fetch);
    RUN(test_threads);
    RUN(test_bounded_by_bytes);
    RUN(test_too_large);
    RUN(test_dir_and_fetch);
    RUN(test_retrying);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
    return 0;
}
