/* event_schema: one parsed AVRO schema and the decoder of event data into JSON.
 *
 * Decoding follows AVRO's JSON encoding: bytes and fixed as strings of code points 0-255,
 * unions as null or {"<branch type name>": value}, enums as their symbol, maps as objects,
 * logical types (date, timestamp-millis, ...) as their underlying int/long. JSON has no NaN or
 * infinity: such floats and doubles become the strings "NaN", "Infinity" and "-Infinity".
 * Bad data yields an error, never an abort; trailing bytes after the record are an error.
 * Lengths in the data are checked against the bytes present before anything is allocated,
 * nesting is limited to 64 levels and arrays/maps to 65536 items that take no bytes.
 * avro-c cannot decode arrays of records without fields (or of fixed size 0): -EBADMSG.
 *
 * The work of one decode is bounded, whatever the schema and the data: a value holds at most
 * EVENT_SCHEMA_MAX_VALUES values (every record, field, item, map entry and union branch
 * counts), checked before avro-c builds anything. A schema whose named types expand an empty
 * value beyond that (records of records referring to each other by name) is refused when it
 * is parsed, in time linear in the schema's text: every decode with it fails at once. */
#pragma once
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Values one decoded event may hold. Each takes a few hundred bytes at most while it is
 * decoded (avro-c's value and jansson's), so one decode stays within a few hundred MiB. */
#define EVENT_SCHEMA_MAX_VALUES ((uint64_t)1 << 20)

struct event_schema;

/* What one decode may cost. */
struct event_schema_limits {
    /* Values the data may hold; 0 or above EVENT_SCHEMA_MAX_VALUES means that. */
    uint64_t max_values;
    /* 0, or the most bytes the data's JSON may take as the event file shows it
     * (indented by 2, one level inside the event's object). The walker sums a lower bound
     * of that size (each item's line and indentation) and refuses the data beyond it. */
    uint64_t max_json_bytes;
    /* NULL, or the decode gives up with -ECANCELED soon after it reads true. */
    const atomic_bool *stop;
};

/* Parses schema JSON text. Returns 0, -EINVAL with *ret_err (static or NULL) for a bad schema,
 * -ENOMEM. A schema that expands beyond EVENT_SCHEMA_MAX_VALUES or nests deeper than 64
 * levels is returned (so a cache keeps it), and every decode with it fails with the reason. */
int event_schema_parse(const char *json_text, size_t len, struct event_schema **ret,
                       const char **ret_err);

void event_schema_free(struct event_schema *s);

/* Decodes len bytes of AVRO binary into a new JSON value (*ret_json, caller owns it), within
 * the default limits (EVENT_SCHEMA_MAX_VALUES values, no JSON size bound, no stop).
 * Returns 0, or -EBADMSG (or -ENOMEM) with *ret_err set to a short static reason; ret_err may
 * be NULL. Thread-safe: a schema may decode from several threads at once. */
int event_schema_decode(const struct event_schema *s, const void *data, size_t len,
                        json_t **ret_json, const char **ret_err);

/* event_schema_decode within *limits (NULL: the defaults). Returns also -EFBIG when the data
 * holds more values than max_values or its JSON would take more than max_json_bytes, and
 * -ECANCELED when *limits->stop became true. */
int event_schema_decode_limited(const struct event_schema *s, const void *data, size_t len,
                                const struct event_schema_limits *limits, json_t **ret_json,
                                const char **ret_err);
