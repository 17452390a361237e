/* event_schema_json: a decoded avro-c value as JSON, by AVRO's JSON encoding (see
 * event_schema_json.h). */
#include "event_schema_json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct conv {
    const char *err;
    const atomic_bool *stop;
    unsigned max_depth;
    uint64_t values; /* converted so far: at most what the walker counted */
    bool stopped;
};

static json_t *conv_fail(struct conv *c, const char *why)
{
    if (!c->err)
        c->err = why;
    return NULL;
}

/* Bytes as a string of code points 0-255 (AVRO's JSON encoding): bytes >= 0x80 take two
 * bytes of UTF-8. */
static json_t *bytes_to_json(struct conv *c, const unsigned char *b, size_t n)
{
    char stackbuf[256];
    char *out = stackbuf;
    size_t o = 0;
    json_t *j;

    if (n == 0)
        return json_string("");
    if (n > (SIZE_MAX - 1) / 2)
        return conv_fail(c, "out of memory");
    if (n * 2 > sizeof(stackbuf)) {
        out = malloc(n * 2);
        if (!out)
            return conv_fail(c, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (b[i] < 0x80) {
            out[o++] = (char)b[i];
        } else {
            out[o++] = (char)(0xc0 | (b[i] >> 6));
            out[o++] = (char)(0x80 | (b[i] & 0x3f));
        }
    }
    j = json_stringn(out, o);
    if (out != stackbuf)
        free(out);
    return j ? j : conv_fail(c, "out of memory");
}

/* JSON has no NaN or infinity: they become the strings "NaN", "Infinity", "-Infinity", as
 * Jackson-based AVRO tools write them. */
static json_t *real_to_json(struct conv *c, double d)
{
    json_t *j;

    if (isnan(d))
        j = json_string("NaN");
    else if (isinf(d))
        j = json_string(d > 0 ? "Infinity" : "-Infinity");
    else
        j = json_real(d);
    return j ? j : conv_fail(c, "out of memory");
}

/* The name a union branch goes by in JSON: the full name of a named type, else the type. */
static const char *branch_name(avro_schema_t s, char *buf, size_t size)
{
    s = event_schema_resolve(s);
    switch (avro_typeof(s)) {
    case AVRO_STRING:
        return "string";
    case AVRO_BYTES:
        return "bytes";
    case AVRO_INT32:
        return "int";
    case AVRO_INT64:
        return "long";
    case AVRO_FLOAT:
        return "float";
    case AVRO_DOUBLE:
        return "double";
    case AVRO_BOOLEAN:
        return "boolean";
    case AVRO_NULL:
        return "null";
    case AVRO_ARRAY:
        return "array";
    case AVRO_MAP:
        return "map";
    case AVRO_RECORD:
    case AVRO_ENUM:
    case AVRO_FIXED: {
        const char *ns = avro_schema_namespace(s);
        const char *name = avro_schema_name(s);
        if (!name)
            return "?";
        if (!ns || !*ns)
            return name;
        snprintf(buf, size, "%s.%s", ns, name);
        return buf;
    }
    default:
        return "?";
    }
}

static json_t *to_json(struct conv *c, avro_value_t *v, unsigned depth);

/* null, boolean, int, long, enum; NULL (c->err set) for another type or a bad value. */
static json_t *simple_to_json(struct conv *c, avro_value_t *v)
{
    json_t *j = NULL;

    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        j = json_null();
        break;
    case AVRO_BOOLEAN: {
        int b = 0;
        if (avro_value_get_boolean(v, &b))
            return conv_fail(c, "bad boolean");
        j = json_boolean(b);
        break;
    }
    case AVRO_INT32: {
        int32_t i = 0;
        if (avro_value_get_int(v, &i))
            return conv_fail(c, "bad int");
        j = json_integer(i);
        break;
    }
    case AVRO_INT64: {
        int64_t l = 0;
        if (avro_value_get_long(v, &l))
            return conv_fail(c, "bad long");
        j = json_integer(l);
        break;
    }
    case AVRO_ENUM: {
        int idx = 0;
        const char *sym;
        if (avro_value_get_enum(v, &idx))
            return conv_fail(c, "bad enum");
        sym = avro_schema_enum_get(event_schema_resolve(avro_value_get_schema(v)), idx);
        if (!sym)
            return conv_fail(c, "enum index out of range");
        j = json_string(sym);
        break;
    }
    default:
        return conv_fail(c, "unsupported AVRO type");
    }
    return j ? j : conv_fail(c, "out of memory");
}

/* float, double, string, bytes, fixed. */
static json_t *data_to_json(struct conv *c, avro_value_t *v)
{
    const void *b = NULL;
    size_t size = 0;

    switch (avro_value_get_type(v)) {
    case AVRO_FLOAT: {
        float f = 0;
        if (avro_value_get_float(v, &f))
            return conv_fail(c, "bad float");
        return real_to_json(c, f);
    }
    case AVRO_DOUBLE: {
        double d = 0;
        if (avro_value_get_double(v, &d))
            return conv_fail(c, "bad double");
        return real_to_json(c, d);
    }
    case AVRO_STRING: {
        const char *s = NULL;
        json_t *j;
        if (avro_value_get_string(v, &s, &size) || !s)
            return conv_fail(c, "bad string");
        /* size counts avro-c's terminating NUL */
        j = json_stringn(s, size > 0 ? size - 1 : 0);
        return j ? j : conv_fail(c, "string is not valid UTF-8");
    }
    case AVRO_BYTES:
        if (avro_value_get_bytes(v, &b, &size))
            return conv_fail(c, "bad bytes");
        return bytes_to_json(c, b, size);
    default: /* AVRO_FIXED */
        if (avro_value_get_fixed(v, &b, &size))
            return conv_fail(c, "bad fixed");
        return bytes_to_json(c, b, size);
    }
}

/* A union as {"branch name": value}, or null for the null branch. */
static json_t *union_to_json(struct conv *c, avro_value_t *v, unsigned depth)
{
    int disc = -1;
    avro_value_t branch;
    char namebuf[512];
    json_t *inner, *j;
    avro_schema_t bs;

    if (avro_value_get_discriminant(v, &disc) || avro_value_get_current_branch(v, &branch))
        return conv_fail(c, "bad union");
    bs = event_schema_resolve(
        avro_schema_union_branch(event_schema_resolve(avro_value_get_schema(v)), disc));
    if (!bs)
        return conv_fail(c, "bad union");
    if (avro_typeof(bs) == AVRO_NULL)
        return json_null();
    inner = to_json(c, &branch, depth + 1);
    if (!inner)
        return NULL;
    j = json_object();
    if (!j || json_object_set_new(j, branch_name(bs, namebuf, sizeof(namebuf)), inner)) {
        json_decref(j);
        return conv_fail(c, "out of memory");
    }
    return j;
}

/* A record or a map as an object. */
static json_t *object_to_json(struct conv *c, avro_value_t *v, unsigned depth)
{
    size_t n = 0;
    json_t *j;

    if (avro_value_get_size(v, &n))
        return conv_fail(c, "bad record or map");
    j = json_object();
    if (!j)
        return conv_fail(c, "out of memory");
    for (size_t i = 0; i < n; i++) {
        avro_value_t child;
        const char *name = NULL;
        json_t *cj;
        if (avro_value_get_by_index(v, i, &child, &name) || !name) {
            json_decref(j);
            return conv_fail(c, "bad record or map");
        }
        cj = to_json(c, &child, depth + 1);
        if (!cj) {
            json_decref(j);
            return NULL;
        }
        /* json_object_set_new checks that a map key is UTF-8 (field names are ASCII) */
        if (json_object_set_new(j, name, cj)) {
            json_decref(j);
            return conv_fail(c, "map key is not valid UTF-8");
        }
    }
    return j;
}

static json_t *array_to_json(struct conv *c, avro_value_t *v, unsigned depth)
{
    size_t n = 0;
    json_t *j;

    if (avro_value_get_size(v, &n))
        return conv_fail(c, "bad array");
    j = json_array();
    if (!j)
        return conv_fail(c, "out of memory");
    for (size_t i = 0; i < n; i++) {
        avro_value_t child;
        json_t *cj;
        if (avro_value_get_by_index(v, i, &child, NULL)) {
            json_decref(j);
            return conv_fail(c, "bad array");
        }
        cj = to_json(c, &child, depth + 1);
        if (!cj || json_array_append_new(j, cj)) {
            json_decref(j);
            return cj ? conv_fail(c, "out of memory") : NULL;
        }
    }
    return j;
}

static json_t *to_json(struct conv *c, avro_value_t *v, unsigned depth)
{
    if (depth > c->max_depth)
        return conv_fail(c, "nested too deeply");
    if ((++c->values & 1023) == 0 && c->stop &&
        atomic_load_explicit(c->stop, memory_order_relaxed)) {
        c->stopped = true;
        return conv_fail(c, "decoding stopped");
    }
    switch (avro_value_get_type(v)) {
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
    case AVRO_STRING:
    case AVRO_BYTES:
    case AVRO_FIXED:
        return data_to_json(c, v);
    case AVRO_UNION:
        return union_to_json(c, v, depth);
    case AVRO_RECORD:
    case AVRO_MAP:
        return object_to_json(c, v, depth);
    case AVRO_ARRAY:
        return array_to_json(c, v, depth);
    default:
        return simple_to_json(c, v);
    }
}

json_t *event_schema_value_to_json(avro_value_t *v, unsigned max_depth, const atomic_bool *stop,
                                   const char **ret_err, bool *ret_stopped)
{
    struct conv c = {.stop = stop, .max_depth = max_depth};
    json_t *j = to_json(&c, v, 0);

    if (!j) {
        *ret_err = c.err;
        *ret_stopped = c.stopped;
    }
    return j;
}
