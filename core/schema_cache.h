/* schema_cache: event schemas by (name, version), fetched once while they stay cached.
 *
 * A local directory, when given, overrides the twin: DIR/<name>/<version>.avsc. Otherwise the
 * schema is fetched through the fetch function (the twin's GET /v1/schemas/{name}/{version}).
 * Parsed schemas are kept within a bound on the memory they hold (measured at the parse) and
 * on their number, the least recently used going first; an evicted schema is fetched again
 * when next needed. A schema text over 1 MiB, or one whose parse alone holds more than the
 * byte bound, is refused. A schema that does not exist, does not parse or is too large is
 * remembered as such for a short while (so a flood of events naming it costs one fetch, yet
 * a schema registered later is found). Thread-safe. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* The longest schema text, local or fetched (the fetch stops reading past it). Parsing holds up
 * to about 35x the text (unions of arrays, measured), so this also bounds the memory one parse
 * takes before its size is known. */
#define SCHEMA_MAX_TEXT_BYTES      ((size_t)1024 * 1024)
#define SCHEMA_CACHE_DEFAULT_BYTES ((size_t)64 * 1024 * 1024)
#define SCHEMA_CACHE_DEFAULT_COUNT ((size_t)4096)

struct event_schema;
struct schema_cache;

/* Fetches the schema text: 0 with *ret_text (malloc'd, caller frees) and *ret_len, -ENOENT if
 * the twin has no such schema, another negative errno for other failures (not cached). */
typedef int (*schema_fetch_fn)(void *userdata, const char *name, int version, char **ret_text,
                               size_t *ret_len);

/* schema_dir may be NULL. fetch may be NULL (then only the directory is used). */
int schema_cache_new(const char *schema_dir, schema_fetch_fn fetch, void *userdata,
                     struct schema_cache **ret);
/* Frees the cache and every schema in it; every schema handed out must be given back. */
void schema_cache_free(struct schema_cache *c);

/* Bounds what the cache keeps: max_bytes of parsed schemas (as measured), max_schemas of them;
 * 0 means the default. Evicts at once what is over. */
void schema_cache_set_limits(struct schema_cache *c, size_t max_bytes, size_t max_schemas);

/* The schema for name/version, valid until given back with schema_cache_put (eviction does not
 * free a schema handed out). Returns 0, -ENOENT (no such schema), -EINVAL (the schema text
 * does not parse), -EFBIG (text over 1 MiB, or holds more than the byte bound once parsed),
 * or the fetch's error. */
int schema_cache_get(struct schema_cache *c, const char *name, int version,
                     const struct event_schema **ret);

/* Waits ms milliseconds for schema_cache_get_retrying; returns true to give up at once (the
 * caller is stopping). */
typedef bool (*schema_wait_fn)(void *userdata, int ms);

/* Like schema_cache_get, but a fetch that failed for a passing reason (not -ENOENT, -EINVAL,
 * -EFBIG or -ETIMEDOUT: a 503, a twin restarting) is tried again after 0.1, 0.4, 1 and 2 s,
 * each wait through wait(userdata, ms), so that a blip does not deliver an event without its
 * data for good. A timeout is not tried again (it would multiply a wait that was long
 * already), and a schema that failed all its tries is tried once only for the next 30 s, so a
 * schema store that stays broken does not stall the caller for seconds per event. */
int schema_cache_get_retrying(struct schema_cache *c, const char *name, int version,
                              schema_wait_fn wait, void *userdata, const struct event_schema **ret);

/* Gives back a schema from schema_cache_get. Accepts NULL. */
void schema_cache_put(struct schema_cache *c, const struct event_schema *schema);

/* What the cached schemas hold (bytes, as measured at their parse; evicted ones still handed
 * out included) and how many are cached. Either pointer may be NULL. */
void schema_cache_usage(struct schema_cache *c, size_t *ret_bytes, size_t *ret_schemas);
