/* schema_cache: event schemas by (name, version), each fetched once.
 *
 * A local directory, when given, overrides the twin: DIR/<name>/<version>.avsc. Otherwise the
 * schema is fetched through the fetch function (the twin's GET /v1/schemas/{name}/{version})
 * and kept for the life of the cache. A schema that does not exist is remembered as missing for
 * a short while (so a flood of events with an unknown schema costs one fetch, yet a schema
 * registered later is found). Thread-safe. */
#pragma once
#include <stddef.h>

struct event_schema;
struct schema_cache;

/* Fetches the schema text: 0 with *ret_text (malloc'd, caller frees) and *ret_len, -ENOENT if
 * the twin has no such schema, another negative errno for other failures (not cached). */
typedef int (*schema_fetch_fn)(void *userdata, const char *name, int version, char **ret_text,
                               size_t *ret_len);

/* schema_dir may be NULL. fetch may be NULL (then only the directory is used). */
int schema_cache_new(const char *schema_dir, schema_fetch_fn fetch, void *userdata,
                     struct schema_cache **ret);
void schema_cache_free(struct schema_cache *c);

/* The schema for name/version, borrowed (valid until schema_cache_free). Returns 0, -ENOENT
 * (no such schema), -EINVAL (the schema text does not parse), or the fetch's error. */
int schema_cache_get(struct schema_cache *c, const char *name, int version,
                     const struct event_schema **ret);
