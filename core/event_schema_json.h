/* event_schema_json: the JSON side of event_schema's decode (internal to core).
 *
 * A value avro-c decoded becomes JSON by AVRO's JSON encoding: bytes and fixed as strings of
 * code points 0-255, a union as {"branch name": value} (null as null), an enum as its symbol,
 * NaN and the infinities as the strings Jackson-based tools write. The value was walked and
 * bounded by event_schema first; this checks depth and stop only. */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <avro.h>
#include <jansson.h>

/* s with named-type links followed (event_schema.c). */
avro_schema_t event_schema_resolve(avro_schema_t s);

/* v as JSON, or NULL with *ret_err (static) set, and *ret_stopped when *stop was seen set.
 * Values nested deeper than max_depth are refused. */
json_t *event_schema_value_to_json(avro_value_t *v, unsigned max_depth, const atomic_bool *stop,
                                   const char **ret_err, bool *ret_stopped);
