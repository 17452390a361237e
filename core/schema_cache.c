/* schema_cache: event schemas by (name, version), from a local directory or the twin.
 *
 * What a parsed schema holds is measured, not guessed from its text (the same text size parses
 * to 6x to 35x as much, depending on its shape): avro-c allocates through a hook that counts,
 * per thread, the bytes and blocks it holds, so the difference across one event_schema_parse
 * is that schema's share. Schemas are kept in least-recently-used order within a byte and a
 * count bound; one that alone exceeds the byte bound is refused, like text over
 * SCHEMA_MAX_TEXT_BYTES. A schema handed out stays valid until given back (a refcount), even if
 * it is evicted meanwhile: then it goes at the last schema_cache_put. */
#include "schema_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <avro.h>

#include "event_schema.h"
#include "record.h"
#include "twin/hash.h"

#define NBUCKETS        1024
#define MAX_NEGATIVE    4096 /* remembered failures; they expire */
#define NEGATIVE_TTL_NS (5ULL * 1000 * 1000 * 1000)
/* Freeing this much gives the memory back to the system at once (malloc_trim): a schema is
 * many small blocks that would otherwise stay in malloc's free lists, in the RSS. */
#define TRIM_BYTES     ((size_t)1024 * 1024)
#define BLOCK_OVERHEAD 16 /* what malloc adds to each block, on top of its size */
/* What a cached schema holds besides avro-c's part: the entry, its name, struct event_schema. */
#define ENTRY_OVERHEAD 256
/* schema_cache_get_retrying: the waits before each new try, how long a schema that failed all
 * of them is tried once only, and how many such schemas are remembered (by hash, one a slot). */
static const int retry_ms[] = {100, 400, 1000, 2000};
#define RETRY_OFF_NS (30ULL * 1000 * 1000 * 1000)
#define RETRY_SLOTS  1024

struct entry {
    struct entry *next;                /* hash chain */
    struct entry *lent_next;           /* in the list of schemas handed out (refs > 0) */
    struct entry *lru_prev, *lru_next; /* schemas only: most recently used first */
    char *name;
    int version;
    struct event_schema *schema; /* NULL for a remembered failure */
    size_t bytes;                /* what the schema holds, measured at its parse */
    unsigned refs;               /* handed out by schema_cache_get, not yet given back */
    bool evicted;                /* out of the table: freed at the last schema_cache_put */
    int error;                   /* -ENOENT, -EINVAL or -EFBIG when schema is NULL */
    uint64_t expires_ns;         /* for failures */
};

struct schema_cache {
    char *dir;
    schema_fetch_fn fetch;
    void *userdata;
    pthread_mutex_t lock;
    size_t max_bytes, max_schemas;
    size_t n_schemas;     /* in the table */
    size_t bytes;         /* their bytes */
    size_t evicted_bytes; /* of evicted schemas still handed out */
    size_t n_negative;
    struct entry lru;   /* the list head: lru.lru_next is the most recently used */
    struct entry *lent; /* schemas handed out (chained by lent_next): few, one a thread */
    struct entry *buckets[NBUCKETS];
    struct {
        uint64_t key; /* key_of(name, version) */
        uint64_t until_ns;
    } retry_off[RETRY_SLOTS];
};

/* ---- measuring what avro-c holds ---- */

static _Thread_local int64_t held_bytes;  /* this thread's avro-c allocations, net */
static _Thread_local int64_t held_blocks; /* and the number of blocks */

static void *counting_allocator(void *userdata, void *ptr, size_t osize, size_t nsize)
{
    (void)userdata;
    if (nsize == 0) {
        if (ptr) {
            held_bytes -= (int64_t)osize;
            held_blocks--;
        }
        free(ptr);
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p) {
        held_bytes += (int64_t)nsize - (ptr ? (int64_t)osize : 0);
        if (!ptr)
            held_blocks++;
    }
    return p;
}

static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;

/* Blocks avro-c allocated before the hook are freed through it too: it frees them as the
 * default allocator would (realloc and free), so only the counts are off, by what was
 * allocated before, and only for the thread that frees them. */
static void install_allocator(void)
{
    avro_set_allocator(counting_allocator, NULL);
}

/* What this thread's avro-c allocations hold now, malloc's overhead included. */
static int64_t avro_held(void)
{
    return held_bytes + held_blocks * BLOCK_OVERHEAD;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t key_of(const char *name, int version)
{
    uint64_t h = twin_fnv1a(TWIN_FNV1A_INIT, name, strlen(name));

    return twin_fnv1a(h, &version, sizeof(version));
}

static size_t bucket_of(const char *name, int version)
{
    return (size_t)(key_of(name, version) % NBUCKETS);
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

static void lru_unlink(struct entry *e)
{
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next->lru_prev = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct schema_cache *c, struct entry *e)
{
    e->lru_prev = &c->lru;
    e->lru_next = c->lru.lru_next;
    c->lru.lru_next->lru_prev = e;
    c->lru.lru_next = e;
}

/* Takes e out of the hash table. */
static void unhash(struct schema_cache *c, struct entry *e)
{
    for (struct entry **pp = &c->buckets[bucket_of(e->name, e->version)]; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            e->next = NULL;
            return;
        }
    }
}

/* Drops the least recently used schema: freed now, or at its last schema_cache_put. Returns
 * the bytes freed now. */
static size_t evict_one(struct schema_cache *c)
{
    struct entry *e = c->lru.lru_prev;
    size_t bytes = e->bytes;

    /* off the tail: the head's lru_prev moves to the one before e */
    c->lru.lru_prev = e->lru_prev;
    e->lru_prev->lru_next = &c->lru;
    e->lru_prev = e->lru_next = NULL;
    unhash(c, e);
    c->n_schemas--;
    c->bytes -= bytes;
    if (e->refs == 0) {
        entry_free(e);
        return bytes;
    }
    e->evicted = true; /* still in the list of schemas handed out */
    c->evicted_bytes += bytes;
    return 0;
}

/* Makes room in the bounds for n more schemas holding bytes. Returns the bytes freed. */
static size_t make_room(struct schema_cache *c, size_t n, size_t bytes)
{
    size_t freed = 0;

    while (c->n_schemas > 0 &&
           (c->n_schemas + n > c->max_schemas || c->bytes + bytes > c->max_bytes))
        freed += evict_one(c);
    return freed;
}

/* After freeing `freed` bytes of schemas (lock not held). */
static void trim(size_t freed)
{
    if (freed >= TRIM_BYTES)
        (void)malloc_trim(0);
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
    c->max_bytes = SCHEMA_CACHE_DEFAULT_BYTES;
    c->max_schemas = SCHEMA_CACHE_DEFAULT_COUNT;
    c->lru.lru_next = c->lru.lru_prev = &c->lru;
    pthread_mutex_init(&c->lock, NULL);
    pthread_once(&allocator_once, install_allocator);
    *ret = c;
    return 0;
}

void schema_cache_set_limits(struct schema_cache *c, size_t max_bytes, size_t max_schemas)
{
    pthread_mutex_lock(&c->lock);
    c->max_bytes = max_bytes ? max_bytes : SCHEMA_CACHE_DEFAULT_BYTES;
    c->max_schemas = max_schemas ? max_schemas : SCHEMA_CACHE_DEFAULT_COUNT;
    size_t freed = make_room(c, 0, 0);
    pthread_mutex_unlock(&c->lock);
    trim(freed);
}

void schema_cache_usage(struct schema_cache *c, size_t *ret_bytes, size_t *ret_schemas)
{
    pthread_mutex_lock(&c->lock);
    if (ret_bytes)
        *ret_bytes = c->bytes + c->evicted_bytes;
    if (ret_schemas)
        *ret_schemas = c->n_schemas;
    pthread_mutex_unlock(&c->lock);
}

void schema_cache_free(struct schema_cache *c)
{
    if (!c)
        return;
    /* Evicted schemas still handed out (the caller should have given them back); the others
     * are in the table. */
    while (c->lent) {
        struct entry *e = c->lent;
        c->lent = e->lent_next;
        if (e->evicted)
            entry_free(e);
    }
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
    if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        goto out;
    }
    if ((uint64_t)st.st_size > SCHEMA_MAX_TEXT_BYTES) {
        r = -EFBIG;
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
 * with *ret and *ret_bytes (what it holds), -ENOENT / -EINVAL / -EFBIG (remembered for a
 * while), or another error (not remembered). */
static int load(struct schema_cache *c, const char *name, int version, struct event_schema **ret,
                size_t *ret_bytes)
{
    char *text = NULL;
    size_t len = 0, max_bytes;
    int64_t before;
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
    if (len > SCHEMA_MAX_TEXT_BYTES) {
        free(text);
        return -EFBIG;
    }
    before = avro_held();
    r = event_schema_parse(text, len, ret, NULL);
    free(text);
    if (r < 0)
        return r == -ENOMEM ? -ENOMEM : -EINVAL;
    int64_t held = avro_held() - before;
    *ret_bytes = (held > 0 ? (size_t)held : 0) + ENTRY_OVERHEAD;
    pthread_mutex_lock(&c->lock);
    max_bytes = c->max_bytes;
    pthread_mutex_unlock(&c->lock);
    if (*ret_bytes > max_bytes) {
        event_schema_free(*ret);
        *ret = NULL;
        trim(*ret_bytes);
        return -EFBIG;
    }
    return 0;
}

/* Hands out e's schema. Lock held. */
static const struct event_schema *lend(struct schema_cache *c, struct entry *e)
{
    if (e->refs++ == 0) {
        e->lent_next = c->lent;
        c->lent = e;
    }
    if (e->lru_prev)
        lru_unlink(e);
    lru_push_front(c, e); /* the most recently used */
    return e->schema;
}

int schema_cache_get(struct schema_cache *c, const char *name, int version,
                     const struct event_schema **ret)
{
    struct event_schema *schema = NULL;
    struct entry *e;
    size_t bytes = 0, freed = 0;
    uint64_t now;
    int r;

    /* The name becomes a path component below the schema directory. */
    if (!record_name_is_safe(name))
        return -EINVAL;

    pthread_mutex_lock(&c->lock);
    now = now_ns();
    e = find(c, name, version);
    if (e && e->schema) {
        *ret = lend(c, e);
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    if (e && e->expires_ns > now) {
        r = e->error;
        pthread_mutex_unlock(&c->lock);
        return r;
    }
    pthread_mutex_unlock(&c->lock);

    r = load(c, name, version, &schema, &bytes);

    pthread_mutex_lock(&c->lock);
    now = now_ns();
    if (r == 0)
        freed = make_room(c, 1, bytes); /* before the lookup: no entry found is evicted */
    e = find(c, name, version);
    if (e && e->schema) {
        /* another thread got there first; its schema may already be handed out */
        *ret = lend(c, e);
        pthread_mutex_unlock(&c->lock);
        event_schema_free(schema);
        trim(freed);
        return 0;
    }
    if (r < 0 && r != -ENOENT && r != -EINVAL && r != -EFBIG) {
        pthread_mutex_unlock(&c->lock);
        return r; /* transient (network, memory): try again next time */
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
            trim(freed);
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
        e->bytes = bytes;
        c->n_negative--;
        c->n_schemas++;
        c->bytes += bytes;
        *ret = lend(c, e);
    } else {
        e->error = r;
        e->expires_ns = now + NEGATIVE_TTL_NS;
    }
    pthread_mutex_unlock(&c->lock);
    trim(freed);
    return r;
}

/* A result that trying again would not change, or not soon enough. */
static bool is_final(int r)
{
    return r == 0 || r == -ENOENT || r == -EINVAL || r == -EFBIG || r == -ETIMEDOUT;
}

int schema_cache_get_retrying(struct schema_cache *c, const char *name, int version,
                              schema_wait_fn wait, void *userdata, const struct event_schema **ret)
{
    int r = schema_cache_get(c, name, version, ret);
    uint64_t key;
    bool off;

    if (is_final(r))
        return r;
    key = key_of(name, version);
    pthread_mutex_lock(&c->lock);
    off = c->retry_off[key % RETRY_SLOTS].key == key &&
          c->retry_off[key % RETRY_SLOTS].until_ns > now_ns();
    pthread_mutex_unlock(&c->lock);
    if (off)
        return r;
    for (size_t i = 0; i < sizeof(retry_ms) / sizeof(retry_ms[0]); i++) {
        if (wait(userdata, retry_ms[i]))
            return r;
        r = schema_cache_get(c, name, version, ret);
        if (is_final(r))
            break;
    }
    pthread_mutex_lock(&c->lock);
    if (r != 0) {
        c->retry_off[key % RETRY_SLOTS].key = key;
        c->retry_off[key % RETRY_SLOTS].until_ns = now_ns() + RETRY_OFF_NS;
    } else if (c->retry_off[key % RETRY_SLOTS].key == key) {
        c->retry_off[key % RETRY_SLOTS].until_ns = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

void schema_cache_put(struct schema_cache *c, const struct event_schema *schema)
{
    size_t freed = 0;

    if (!c || !schema)
        return;
    pthread_mutex_lock(&c->lock);
    for (struct entry **pp = &c->lent; *pp; pp = &(*pp)->lent_next) {
        struct entry *e = *pp;
        if (e->schema != schema)
            continue;
        if (--e->refs == 0) {
            *pp = e->lent_next;
            e->lent_next = NULL;
            if (e->evicted) {
                c->evicted_bytes -= e->bytes;
                freed = e->bytes;
                entry_free(e);
            }
        }
        break;
    }
    pthread_mutex_unlock(&c->lock);
    trim(freed);
}
