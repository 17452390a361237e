/* event_schema: one parsed AVRO schema and the decoder of event data into JSON.
 *
 * Decoding follows AVRO's JSON encoding: bytes and fixed as strings of code points 0-255,
 * unions as null or {"<branch type name>": value}, enums as their symbol, maps as objects,
 * logical types (date, timestamp-millis, ...) as their underlying int/long. JSON has no NaN or
 * infinity: such floats and doubles become the strings "NaN", "Infinity" and "-Infinity".
 * Bad data yields an error, never an abort; trailing bytes after the record are an error.
 * Lengths in the data are checked against the bytes present before anything is allocated,
 * nesting is limited to 64 levels and arrays/maps to 65536 items that take no bytes.
 * avro-c cannot decode arrays of records without fields (or of fixed size 0): -EBADMSG. */
#pragma once
#include <stddef.h>
#include <jansson.h>

struct event_schema;

/* Parses schema JSON text. Returns 0, -EINVAL with *ret_err (static or NULL) for a bad schema,
 * -ENOMEM. */
int event_schema_parse(const char *json_text, size_t len, struct event_schema **ret,
                       const char **ret_err);

void event_schema_free(struct event_schema *s);

/* Decodes len bytes of AVRO binary into a new JSON value (*ret_json, caller owns it).
 * Returns 0, or -EBADMSG (or -ENOMEM) with *ret_err set to a short static reason; ret_err may
 * be NULL. Thread-safe: a schema may decode from several threads at once. */
int event_schema_decode(const struct event_schema *s, const void *data, size_t len,
                        json_t **ret_json, const char **ret_err);
