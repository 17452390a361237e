/* schema_cache: event schemas by (name, version), from a local directory or the twin. */
#include "schema_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "event_schema.h"
#include "record.h"

#define NBUCKETS         1024
#define MAX_SCHEMAS      4096 /* parsed schemas kept: each stays until schema_cache_free */
#define MAX_NEGATIVE     4096 /* remembered failures; they expire */
#define NEGATIVE_TTL_NS  (5ULL * 1000 * 1000 * 1000)
#define MAX_SCHEMA_BYTES ((off_t)4 * 1024 * 1024)

struct entry {
    struct entry *next;
    char *name;
    int version;
    struct event_schema *schema; /* NULL for a remembered failure */
    int error;                   /* -ENOENT or -EINVAL when schema is NULL */
    uint64_t expires_ns;         /* for failures */
};

struct schema_cache {
    char *dir;
    schema_fetch_fn fetch;
    void *userdata;
    pthread_mutex_t lock;
    size_t n_schemas;
    size_t n_negative;
    struct entry *buckets[NBUCKETS];
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t bucket_of(const char *name, int version)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ (uint32_t)version) * 1099511628211ULL;
    return (size_t)(h % NBUCKETS);
}

static struct entry *find(struct schema_cache *c, const char *name, int version)
{
    for (struct entry *e = c->buckets[bucket_of(name, version)]; e; e = e->next)
        if (e->version == version && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void entry_free(struct entry *e)
{
    event_schema_free(e->schema);
    free(e->name);
    free(e);
}

/* Drops expired failures (called when their table is full). */
static void purge_expired(struct schema_cache *c, uint64_t now)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct entry **pp = &c->buckets[b];
        while (*pp) {
            struct entry *e = *pp;
            if (!e->schema && e->expires_ns <= now) {
                *pp = e->next;
                entry_free(e);
                c->n_negative--;
            } else {
                pp = &e->next;
            }
        }
    }
}

int schema_cache_new(const char *schema_dir, schema_fetch_fn fetch, void *userdata,
                     struct schema_cache **ret)
{
    struct schema_cache *c = calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    if (schema_dir) {
        c->dir = strdup(schema_dir);
        if (!c->dir) {
            free(c);
            return -ENOMEM;
        }
    }
    c->fetch = fetch;
    c->userdata = userdata;
    pthread_mutex_init(&c->lock, NULL);
    *ret = c;
    return 0;
}

void schema_cache_free(struct schema_cache *c)
{
    if (!c)
        return;
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct entry *e = c->buckets[b];
        while (e) {
            struct entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&c->lock);
    free(c->dir);
    free(c);
}

/* Reads DIR/<name>/<version>.avsc. Returns 0, -ENOENT if there is no such file, -errno. */
static int read_local(const char *dir, const char *name, int version, char **ret_text,
                      size_t *ret_len)
{
    char path[4096];
    struct stat st;
    char *text;
    size_t got = 0;
    int n, fd, r = 0;

    n = snprintf(path, sizeof(path), "%s/%s/%d.avsc", dir, name, version);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > MAX_SCHEMA_BYTES) {
        r = -EINVAL;
        goto out;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        r = -ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, text + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = -errno;
            free(text);
            goto out;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    text[got] = '\0';
    *ret_text = text;
    *ret_len = got;
out:
    close(fd);
    return r;
}

/* Loads and parses the schema without the lock held (a fetch may take a while). Returns 0
 * with *ret, -ENOENT / -EINVAL (remembered for a while), or another error (not remembered). */
static int load(struct schema_cache *c, const char *name, int version, struct event_schema **ret)
{
    char *text = NULL;
    size_t len = 0;
    int r = -ENOENT;

    if (c->dir) {
        r = read_local(c->dir, name, version, &text, &len);
        if (r < 0 && r != -ENOENT)
            return r;
    }
    if (r == -ENOENT) {
        if (!c->fetch)
            return -ENOENT;
        r = c->fetch(c->userdata, name, version, &text, &len);
        if (r < 0)
            return r;
        if (!text)
            return -EPROTO;
    }
    r = event_schema_parse(text, len, ret, NULL);
    free(text);
    return r == -ENOMEM ? -ENOMEM : (r < 0 ? -EINVAL : 0);
}

int schema_cache_get(struct schema_cache *c, const char *name, int version,
                     const struct event_schema **ret)
{
    struct event_schema *schema = NULL;
    struct entry *e;
    uint64_t now;
    int r;

    /* The name becomes a path component below the schema directory. */
    if (!record_name_is_safe(name))
        return -EINVAL;

    pthread_mutex_lock(&c->lock);
    now = now_ns();
    e = find(c, name, version);
    if (e && e->schema) {
        *ret = e->schema;
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    if (e && e->expires_ns > now) {
        r = e->error;
        pthread_mutex_unlock(&c->lock);
        return r;
    }
    pthread_mutex_unlock(&c->lock);

    r = load(c, name, version, &schema);

    pthread_mutex_lock(&c->lock);
    now = now_ns();
    e = find(c, name, version);
    if (e && e->schema) {
        /* another thread got there first; its schema may already be borrowed */
        *ret = e->schema;
        pthread_mutex_unlock(&c->lock);
        event_schema_free(schema);
        return 0;
    }
    if (r < 0 && r != -ENOENT && r != -EINVAL) {
        pthread_mutex_unlock(&c->lock);
        return r; /* transient (network, memory): try again next time */
    }
    if (r == 0 && c->n_schemas >= MAX_SCHEMAS) {
        pthread_mutex_unlock(&c->lock);
        event_schema_free(schema);
        return -ENOSPC;
    }
    if (!e) {
        if (r < 0 && c->n_negative >= MAX_NEGATIVE)
            purge_expired(c, now);
        if (r < 0 && c->n_negative >= MAX_NEGATIVE) {
            pthread_mutex_unlock(&c->lock);
            return r; /* not remembered: the table of failures is full */
        }
        e = calloc(1, sizeof(*e));
        if (e)
            e->name = strdup(name);
        if (!e || !e->name) {
            free(e);
            pthread_mutex_unlock(&c->lock);
            event_schema_free(schema);
            return r < 0 ? r : -ENOMEM;
        }
        e->version = version;
        size_t b = bucket_of(name, version);
        e->next = c->buckets[b];
        c->buckets[b] = e;
        c->n_negative++; /* counted as a failure until it holds a schema */
    }
    if (r == 0) {
        e->schema = schema;
        c->n_negative--;
        c->n_schemas++;
        *ret = schema;
    } else {
        e->error = r;
        e->expires_ns = now + NEGATIVE_TTL_NS;
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}
