/* test_schema_cache: local directory over fetch, one fetch per schema, negative caching. */
#include <errno.h>
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

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_schema_cache.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    RUN(test_no_dir_no_fetch);
    RUN(test_threads);
    RUN(test_dir_and_fetch);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
    return 0;
}
