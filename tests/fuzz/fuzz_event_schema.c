/* fuzz_event_schema: random bytes decoded with fixed schemas that cover every AVRO type and
 * the expensive shapes (named types that expand, data that renders large). The first byte
 * picks the schema; a successful decode must give JSON that serializes, and a decode refused
 * for the size of its JSON must be one whose JSON is indeed larger than the bound. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const schema_texts[] = {
    /* 0: every type, named types in unions, logical types */
    "{\"type\": \"record\", \"name\": \"All\", \"namespace\": \"com.example\", \"fields\": ["
    "{\"name\": \"s\", \"type\": \"string\"}, {\"name\": \"b\", \"type\": \"bytes\"},"
    "{\"name\": \"i\", \"type\": \"int\"}, {\"name\": \"l\", \"type\": \"long\"},"
    "{\"name\": \"f\", \"type\": \"float\"}, {\"name\": \"d\", \"type\": \"double\"},"
    "{\"name\": \"t\", \"type\": \"boolean\"}, {\"name\": \"n\", \"type\": \"null\"},"
    "{\"name\": \"e\", \"type\": {\"type\": \"enum\", \"name\": \"Color\", \"symbols\": "
    "[\"RED\", \"GREEN\", \"BLUE\"]}},"
    "{\"name\": \"fx\", \"type\": {\"type\": \"fixed\", \"name\": \"Four\", \"size\": 4}},"
    "{\"name\": \"arr\", \"type\": {\"type\": \"array\", \"items\": \"long\"}},"
    "{\"name\": \"m\", \"type\": {\"type\": \"map\", \"values\": \"string\"}},"
    "{\"name\": \"u1\", \"type\": [\"null\", \"string\"]},"
    "{\"name\": \"u2\", \"type\": [\"null\", \"string\"]},"
    "{\"name\": \"u3\", \"type\": [\"null\", \"Color\", {\"type\": \"record\", \"name\": "
    "\"Inner\", \"namespace\": \"other.ns\", \"fields\": [{\"name\": \"x\", \"type\": "
    "\"int\"}]}]},"
    "{\"name\": \"nested\", \"type\": {\"type\": \"record\", \"name\": \"Nested\", \"fields\": "
    "[{\"name\": \"inner\", \"type\": \"other.ns.Inner\"}, {\"name\": \"list\", \"type\": "
    "{\"type\": \"array\", \"items\": \"other.ns.Inner\"}}]}},"
    "{\"name\": \"date\", \"type\": {\"type\": \"int\", \"logicalType\": \"date\"}},"
    "{\"name\": \"ts\", \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}},"
    "{\"name\": \"dec\", \"type\": {\"type\": \"bytes\", \"logicalType\": \"decimal\", "
    "\"precision\": 5, \"scale\": 2}},"
    "{\"name\": \"uuid\", \"type\": {\"type\": \"string\", \"logicalType\": \"uuid\"}}]}",
    /* 1: recursion through a union */
    "{\"type\": \"record\", \"name\": \"Node\", \"fields\": [{\"name\": \"v\", \"type\": "
    "\"int\"}, {\"name\": \"next\", \"type\": [\"null\", \"Node\"]}]}",
    /* 2: containers of containers, and items that take no bytes */
    "{\"type\": \"map\", \"values\": {\"type\": \"array\", \"items\": [\"null\", \"boolean\", "
    "\"double\", {\"type\": \"map\", \"values\": \"bytes\"}]}}",
    /* 3: arrays of null and of empty records (an avro-c weak spot) */
    "{\"type\": \"record\", \"name\": \"Z\", \"fields\": [{\"name\": \"a\", \"type\": "
    "{\"type\": \"array\", \"items\": \"null\"}}, {\"name\": \"b\", \"type\": {\"type\": "
    "\"array\", \"items\": {\"type\": \"record\", \"name\": \"E\", \"fields\": []}}}, "
    "{\"name\": \"c\", \"type\": {\"type\": \"fixed\", \"name\": \"F0\", \"size\": 0}}]}",
    /* 4: a bare union of everything */
    "[\"null\", \"int\", \"long\", \"float\", \"double\", \"string\", \"bytes\", \"boolean\", "
    "{\"type\": \"enum\", \"name\": \"E\", \"symbols\": [\"A\"]}, {\"type\": \"fixed\", "
    "\"name\": \"F\", \"size\": 16}]",
    /* 5: an array of records expanding to 4097 values by name: items that take no byte
     * reach the value budget */
    NULL,
    /* 6: records of 64 fields referring to the previous one, 4 deep: 64^4 values in the empty
     * value, refused when parsed */
    NULL,
    /* 7: 30 records around an array of booleans and a map of doubles: one byte of data
     * renders to a line of some 70 */
    NULL,
};

#define N_SCHEMAS (sizeof(schema_texts) / sizeof(schema_texts[0]))

static struct event_schema *schemas[N_SCHEMAS];
static char *built_texts[N_SCHEMAS];

/* The bound on each decode's JSON: small, so that the lower bound is often what stops it. */
#define MAX_JSON_BYTES 65536

/* Record Ri: R1 has fanout null fields, each later Ri fanout fields of type R(i-1), the first
 * defining it, the others naming it. */
static void chain_record(FILE *f, unsigned fanout, unsigned i)
{
    fprintf(f, "{\"type\": \"record\", \"name\": \"R%u\", \"fields\": [", i);
    for (unsigned j = 0; j < fanout; j++) {
        fprintf(f, "%s{\"name\": \"f%u\", \"type\": ", j ? ", " : "", j);
        if (i == 1)
            fprintf(f, "\"null\"");
        else if (j == 0)
            chain_record(f, fanout, i - 1);
        else
            fprintf(f, "\"R%u\"", i - 1);
        fprintf(f, "}");
    }
    fprintf(f, "]}");
}

static char *build_schema(size_t which)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);

    if (!f)
        abort();
    if (which == 5) {
        fprintf(f, "{\"type\": \"array\", \"items\": ");
        chain_record(f, 16, 3);
        fprintf(f, "}");
    } else if (which == 6) {
        chain_record(f, 64, 4);
    } else {
        for (int i = 0; i < 30; i++)
            fprintf(f, "{\"type\": \"record\", \"name\": \"N%d\", \"fields\": [%s", i,
                    i < 29 ? "{\"name\": \"x\", \"type\": " : "");
        fprintf(f, "{\"name\": \"b\", \"type\": {\"type\": \"array\", \"items\": "
                   "\"boolean\"}}, {\"name\": \"m\", \"type\": {\"type\": \"map\", "
                   "\"values\": \"double\"}}");
        for (int i = 29; i >= 0; i--)
            fprintf(f, "]}%s", i > 0 ? "}" : "");
    }
    if (fclose(f) != 0)
        abort();
    return text;
}

/* The size the event file (fs/event_file.c) gives the data: indented by 2, one level in. */
static size_t rendered_size(json_t *data)
{
    json_t *o = json_pack("{s:O}", "data", data);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    size_t n;

    if (!text)
        abort();
    n = strlen(text);
    free(text);
    json_decref(o);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct event_schema *s;
    json_t *j = NULL;
    const char *err = NULL;
    int r;

    if (size < 1)
        return 0;
    size_t which = data[0] % N_SCHEMAS;
    if (!schemas[which]) {
        /* parsed once and kept, as the schema cache does */
        const char *text = schema_texts[which];
        if (!text)
            text = built_texts[which] = build_schema(which);
        if (event_schema_parse(text, strlen(text), &schemas[which], NULL) != 0)
            abort();
    }
    s = schemas[which];
    const struct event_schema_limits lim = {.max_json_bytes = MAX_JSON_BYTES};
    r = event_schema_decode_limited(s, data + 1, size - 1, &lim, &j, &err);
    if (r == -EFBIG && err && strstr(err, "JSON")) {
        /* refused for its JSON's size: decoded without that bound, it must be larger */
        if (event_schema_decode(s, data + 1, size - 1, &j, &err) == 0) {
            if (rendered_size(j) <= MAX_JSON_BYTES)
                abort();
            json_decref(j);
        }
        return 0;
    }
    if (r == 0) {
        char *text = json_dumps(j, JSON_ENCODE_ANY);
        if (!text)
            abort();
        free(text);
        json_decref(j);
    } else if (j || !err) {
        abort();
    }
    return 0;
}
