/* fuzz_event_schema: random bytes decoded with fixed schemas that cover every AVRO type.
 * The first byte picks the schema; a successful decode must give JSON that serializes. */
#include <stddef.h>
#include <stdint.h>
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
};

#define N_SCHEMAS (sizeof(schema_texts) / sizeof(schema_texts[0]))

static struct event_schema *schemas[N_SCHEMAS];

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
        if (event_schema_parse(schema_texts[which], strlen(schema_texts[which]), &schemas[which],
                               NULL) != 0)
            abort();
    }
    s = schemas[which];
    r = event_schema_decode(s, data + 1, size - 1, &j, &err);
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
