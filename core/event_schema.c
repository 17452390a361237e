/* event_schema: AVRO binary -> JSON through avro-c, guarded by a validating walker (the JSON
 * side is event_schema_json.c).
 *
 * avro-c trusts the lengths and indexes in the data: a string length prefix of 2^60 makes it
 * try to allocate 2^60 bytes, an array block count of 2^60 null items makes it loop, an enum
 * index out of range is stored as is. So every buffer is first walked against the schema
 * here, checking each length against the bytes that remain, each index against the schema,
 * the nesting depth, and that the value ends exactly at the end of the data. Only data that
 * passes reaches avro-c, whose decoded value is then converted to JSON.
 *
 * The walker also counts the values it visits and a lower bound of their JSON text, and stops
 * at the limits: what avro-c then builds and what becomes JSON are the values walked. Only
 * the empty value that avro_generic_value_new builds before reading is not walked: records
 * build every field at once, so records of records referring to each other by name expand
 * it exponentially. Its size is counted from the schema's graph when the schema is parsed
 * (each record once, memoized), and a schema over the limit never reaches avro-c's values. */
#include "event_schema.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <avro.h>

#include "event_schema_json.h"

#define MAX_DEPTH 64
/* Array and map items that take no bytes (null, empty records) are capped at this many per
 * value; every other item costs at least one byte of input. */
#define MAX_FREE_ITEMS 65536

/* Why a decode gave up on a limit (static, returned as ret_err). */
#define TOO_MANY_VALUES        "data holds more values than one event may decode"
#define SCHEMA_TOO_MANY_VALUES "schema expands to more values than one event may decode"
#define JSON_TOO_BIG           "data renders to more JSON than one event file may hold"

struct event_schema {
    avro_schema_t schema;
    avro_value_iface_t *iface; /* NULL when refusal is set */
    /* NULL, or why no data decodes with this schema (static); err is its errno */
    const char *refusal;
    int refusal_err;
    /* values of the empty value avro-c builds before reading (records expanded) */
    uint64_t empty_values;
    /* avro-c documents no thread-safety for value classes; decodes of one schema take turns
     * in the avro-c part (the walker and JSON building run in parallel). */
    pthread_mutex_t lock;
};

avro_schema_t event_schema_resolve(avro_schema_t s)
{
    while (s && avro_typeof(s) == AVRO_LINK)
        s = avro_schema_link_target(s);
    return s;
}

/* ---- the size of the empty value, from the schema's graph ---- */

struct expand_slot {
    avro_schema_t record; /* NULL: empty */
    uint64_t values;
    unsigned height;
};

/* Records already counted, by address: each named record is counted once however many
 * fields refer to it, so the count takes time linear in the schema. */
struct expand {
    struct expand_slot *tab;
    size_t cap; /* power of two, load kept <= 1/2 */
    size_t used;
    bool too_deep;
    bool nomem;
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static size_t expand_home(const struct expand *e, avro_schema_t record)
{
    return (size_t)(((uintptr_t)record >> 4) * 0x9E3779B97F4A7C15ull >> 17) & (e->cap - 1);
}

static struct expand_slot *expand_find(struct expand *e, avro_schema_t record)
{
    if (!e->tab)
        return NULL;
    for (size_t i = expand_home(e, record);; i = (i + 1) & (e->cap - 1)) {
        if (e->tab[i].record == record)
            return &e->tab[i];
        if (!e->tab[i].record)
            return NULL;
    }
}

static int expand_insert(struct expand *e, avro_schema_t record, uint64_t values, unsigned height)
{
    if (2 * (e->used + 1) > e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        struct expand_slot *old = e->tab;
        size_t old_cap = e->cap;
        e->tab = calloc(cap, sizeof(*e->tab));
        if (!e->tab) {
            e->tab = old;
            return -ENOMEM;
        }
        e->cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (!old[i].record)
                continue;
            size_t j = expand_home(e, old[i].record);
            while (e->tab[j].record)
                j = (j + 1) & (e->cap - 1);
            e->tab[j] = old[i];
        }
        free(old);
    }
    size_t i = expand_home(e, record);
    while (e->tab[i].record)
        i = (i + 1) & (e->cap - 1);
    e->tab[i] = (struct expand_slot){.record = record, .values = values, .height = height};
    e->used++;
    return 0;
}

/* The values avro-c builds for an empty value of s at nesting depth depth, saturating at
 * UINT64_MAX; *ret_height is how many levels below depth it nests. A record builds each of
 * its fields (a name referring to a record too); a union, an array and a map start empty.
 * A value nested deeper than MAX_DEPTH is one the walker refuses whatever the data, so
 * reaching one sets too_deep and ends the count: that also ends a record that contains
 * itself, and it bounds this recursion. */
static uint64_t expand_count(struct expand *e, avro_schema_t s, unsigned depth,
                             unsigned *ret_height)
{
    *ret_height = 0;
    if (depth > MAX_DEPTH) {
        e->too_deep = true;
        return UINT64_MAX;
    }
    s = event_schema_resolve(s);
    if (!s || avro_typeof(s) != AVRO_RECORD)
        return 1;
    struct expand_slot *seen = expand_find(e, s);
    if (seen) {
        *ret_height = seen->height;
        if (depth + seen->height > MAX_DEPTH)
            e->too_deep = true;
        return seen->values;
    }
    uint64_t values = 1;
    unsigned height = 0;
    size_t n = avro_schema_record_size(s);
    for (size_t i = 0; i < n; i++) {
        unsigned h = 0;
        values = sat_add(values, expand_count(e, avro_schema_record_field_get_by_index(s, (int)i),
                                              depth + 1, &h));
        if (e->too_deep || e->nomem)
            return UINT64_MAX;
        if (h + 1 > height)
            height = h + 1;
    }
    if (expand_insert(e, s, values, height) < 0) {
        e->nomem = true;
        return UINT64_MAX;
    }
    *ret_height = height;
    return values;
}

int event_schema_parse(const char *json_text, size_t len, struct event_schema **ret,
                       const char **ret_err)
{
    struct event_schema *s;
    avro_schema_t schema;
    struct expand e = {0};
    unsigned height = 0;

    if (ret_err)
        *ret_err = NULL;
    if (avro_schema_from_json_length(json_text, len, &schema) != 0) {
        if (ret_err)
            *ret_err = "invalid AVRO schema";
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        avro_schema_decref(schema);
        return -ENOMEM;
    }
    s->schema = schema;
    s->empty_values = expand_count(&e, schema, 0, &height);
    free(e.tab);
    if (e.nomem) {
        avro_schema_decref(schema);
        free(s);
        return -ENOMEM;
    }
    if (e.too_deep) {
        s->refusal = "schema nests deeper than 64 levels";
        s->refusal_err = -EBADMSG;
    } else if (s->empty_values > EVENT_SCHEMA_MAX_VALUES) {
        s->refusal = SCHEMA_TOO_MANY_VALUES;
        s->refusal_err = -EFBIG;
    } else {
        s->iface = avro_generic_class_from_schema(schema);
        if (!s->iface) {
            avro_schema_decref(schema);
            free(s);
            if (ret_err)
                *ret_err = "AVRO schema not supported by avro-c";
            return -EINVAL;
        }
    }
    pthread_mutex_init(&s->lock, NULL);
    *ret = s;
    return 0;
}

void event_schema_free(struct event_schema *s)
{
    if (!s)
        return;
    if (s->iface)
        avro_value_iface_decref(s->iface);
    avro_schema_decref(s->schema);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- the walker ---- */

struct walk {
    const unsigned char *p;
    size_t left;
    size_t free_items;
    uint64_t values, max_values;
    uint64_t json_bytes, max_json_bytes; /* a lower bound of the JSON text; 0: no bound */
    const atomic_bool *stop;
    const char *err;
};

static int walk_fail(struct walk *w, const char *why)
{
    if (!w->err)
        w->err = why;
    return -EBADMSG;
}

static int walk_limit(struct walk *w, const char *why)
{
    w->err = why;
    return -EFBIG;
}

/* One more value: counted, and the stop flag looked at now and then. */
static int walk_count_value(struct walk *w)
{
    if (++w->values > w->max_values)
        return walk_limit(w, TOO_MANY_VALUES);
    if ((w->values & 1023) == 0 && w->stop && atomic_load_explicit(w->stop, memory_order_relaxed)) {
        w->err = "decoding stopped";
        return -ECANCELED;
    }
    return 0;
}

/* An item of a container (record field, array item, map entry, union branch) at nesting
 * depth depth: the event file shows it on a line of its own, indented by 2 per level,
 * and the data's top level is one level inside the event object. So it takes at least a
 * newline, 2 * (depth + 1) spaces and one character; the sum bounds the file from below. */
static int walk_count_line(struct walk *w, unsigned depth)
{
    w->json_bytes += 2 * (uint64_t)depth + 4;
    if (w->max_json_bytes && w->json_bytes > w->max_json_bytes)
        return walk_limit(w, JSON_TOO_BIG);
    return 0;
}

/* A zig-zag varint of at most max_bytes bytes. */
static int walk_varint(struct walk *w, unsigned max_bytes, int64_t *ret)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < max_bytes; i++) {
        if (w->left == 0)
            return walk_fail(w, "truncated data");
        unsigned char b = *w->p++;
        w->left--;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *ret = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return walk_fail(w, "varint too long");
}

static int walk_long(struct walk *w, int64_t *ret)
{
    return walk_varint(w, 10, ret);
}

static int walk_skip(struct walk *w, int64_t n, const char *why)
{
    if (n < 0 || (uint64_t)n > w->left)
        return walk_fail(w, why);
    w->p += n;
    w->left -= (size_t)n;
    return 0;
}

static int walk_length_prefixed(struct walk *w)
{
    int64_t n = 0;
    int r = walk_long(w, &n);

    if (r < 0)
        return r;
    return walk_skip(w, n, "length past the end of the data");
}

static int walk_value(struct walk *w, avro_schema_t s, unsigned depth);

/* Arrays and maps: blocks of items, a negative count followed by the block's byte size. */
static int walk_blocks(struct walk *w, avro_schema_t item, bool is_map, unsigned depth)
{
    for (;;) {
        int64_t count = 0, size = 0;
        int r = walk_long(w, &count);

        if (r < 0)
            return r;
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN)
                return walk_fail(w, "bad block count");
            count = -count;
            r = walk_long(w, &size);
            if (r < 0)
                return r;
            if (size < 0 || (uint64_t)size > w->left)
                return walk_fail(w, "block size past the end of the data");
        }
        for (int64_t i = 0; i < count; i++) {
            size_t before = w->left;
            r = walk_count_line(w, depth + 1);
            if (r < 0)
                return r;
            if (is_map) {
                r = walk_length_prefixed(w);
                if (r < 0)
                    return r;
            }
            r = walk_value(w, item, depth + 1);
            if (r < 0)
                return r;
            if (w->left == before && ++w->free_items > MAX_FREE_ITEMS)
                return walk_fail(w, "too many empty items");
        }
    }
}

static int walk_value(struct walk *w, avro_schema_t s, unsigned depth)
{
    int64_t v = 0;
    int r;

    s = event_schema_resolve(s);
    if (!s)
        return walk_fail(w, "bad schema");
    if (depth > MAX_DEPTH)
        return walk_fail(w, "nested too deeply");
    r = walk_count_value(w);
    if (r < 0)
        return r;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        if (w->left == 0)
            return walk_fail(w, "truncated data");
        if (*w->p > 1)
            return walk_fail(w, "bad boolean");
        return walk_skip(w, 1, "truncated data");
    case AVRO_INT32:
        r = walk_varint(w, 5, &v);
        if (r == 0 && (v < INT32_MIN || v > INT32_MAX))
            return walk_fail(w, "int out of range");
        return r;
    case AVRO_INT64:
        return walk_long(w, &v);
    case AVRO_FLOAT:
        return walk_skip(w, 4, "truncated data");
    case AVRO_DOUBLE:
        return walk_skip(w, 8, "truncated data");
    case AVRO_STRING:
    case AVRO_BYTES:
        return walk_length_prefixed(w);
    case AVRO_FIXED:
        return walk_skip(w, avro_schema_fixed_size(s), "truncated data");
    case AVRO_ENUM:
        r = walk_long(w, &v);
        if (r == 0 && (v < 0 || v >= avro_schema_enum_number_of_symbols(s)))
            return walk_fail(w, "enum index out of range");
        return r;
    case AVRO_UNION: {
        r = walk_long(w, &v);
        if (r < 0)
            return r;
        if (v < 0 || (uint64_t)v >= avro_schema_union_size(s))
            return walk_fail(w, "union index out of range");
        /* a branch other than null is shown as {"<branch>": value} */
        avro_schema_t branch = avro_schema_union_branch(s, (int)v);
        if (avro_typeof(event_schema_resolve(branch)) != AVRO_NULL) {
            r = walk_count_line(w, depth + 1);
            if (r < 0)
                return r;
        }
        return walk_value(w, branch, depth + 1);
    }
    case AVRO_RECORD: {
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++) {
            r = walk_count_line(w, depth + 1);
            if (r < 0)
                return r;
            r = walk_value(w, avro_schema_record_field_get_by_index(s, (int)i), depth + 1);
            if (r < 0)
                return r;
        }
        return 0;
    }
    case AVRO_ARRAY:
        return walk_blocks(w, avro_schema_array_items(s), false, depth);
    case AVRO_MAP:
        return walk_blocks(w, avro_schema_map_values(s), true, depth);
    default:
        return walk_fail(w, "unsupported schema type");
    }
}

int event_schema_decode_limited(const struct event_schema *s, const void *data, size_t len,
                                const struct event_schema_limits *limits, json_t **ret_json,
                                const char **ret_err)
{
    /* decode serializes on the schema's mutex, the one mutable part of a const schema */
    struct event_schema *ms = (struct event_schema *)s;
    struct walk w = {.p = data, .left = len, .max_values = EVENT_SCHEMA_MAX_VALUES};
    const char *conv_err = NULL;
    bool stopped = false;
    avro_reader_t reader;
    avro_value_t value;
    json_t *j = NULL;
    char probe;
    int r;

    if (ret_err)
        *ret_err = NULL;
    if (limits) {
        if (limits->max_values && limits->max_values < w.max_values)
            w.max_values = limits->max_values;
        w.max_json_bytes = limits->max_json_bytes;
        w.stop = limits->stop;
    }
    if (s->refusal) {
        if (ret_err)
            *ret_err = s->refusal;
        return s->refusal_err;
    }
    if (s->empty_values > w.max_values) {
        if (ret_err)
            *ret_err = SCHEMA_TOO_MANY_VALUES;
        return -EFBIG;
    }
    if (len > INT64_MAX || (!data && len > 0)) {
        if (ret_err)
            *ret_err = "bad buffer";
        return -EBADMSG;
    }
    r = walk_value(&w, s->schema, 0);
    if (r < 0 || w.left != 0) {
        if (ret_err)
            *ret_err = w.err ? w.err : "trailing bytes after the value";
        return r < 0 ? r : -EBADMSG;
    }

    pthread_mutex_lock(&ms->lock);
    if (avro_generic_value_new(s->iface, &value) != 0) {
        pthread_mutex_unlock(&ms->lock);
        if (ret_err)
            *ret_err = "out of memory";
        return -ENOMEM;
    }
    reader = avro_reader_memory(len ? data : "", (int64_t)len);
    if (!reader) {
        conv_err = "out of memory";
    } else if (avro_value_read(reader, &value) != 0) {
        conv_err = "AVRO data does not match the schema";
    } else if (avro_read(reader, &probe, 1) == 0) {
        /* avro_reader_is_eof only works for file readers: probe for one more byte */
        conv_err = "trailing bytes after the value";
    } else {
        j = event_schema_value_to_json(&value, MAX_DEPTH + 1, w.stop, &conv_err, &stopped);
    }
    if (reader)
        avro_reader_free(reader);
    avro_value_decref(&value);
    pthread_mutex_unlock(&ms->lock);

    if (!j) {
        if (ret_err)
            *ret_err = conv_err ? conv_err : "decode failed";
        return stopped ? -ECANCELED : -EBADMSG;
    }
    *ret_json = j;
    return 0;
}

int event_schema_decode(const struct event_schema *s, const void *data, size_t len,
                        json_t **ret_json, const char **ret_err)
{
    return event_schema_decode_limited(s, data, len, NULL, ret_json, ret_err);
}
