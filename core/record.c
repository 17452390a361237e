/* record: parses and validates one line of the twin's stream (see record.h). */
#include "record.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "twin/base64.h"
#include "twin/name.h"
#include "twin/text.h"

int record_name_is_safe(const char *s)
{
    return twin_name_is_safe(s) && text_is_utf8(s, strlen(s));
}

/* Event names also become parts of file names that handlers glob on: a tight charset. */
static bool event_name_is_safe(const char *s)
{
    if (!record_name_is_safe(s))
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

void record_clear(struct record *r)
{
    if (!r)
        return;
    free(r->asset);
    free(r->time);
    free(r->name);
    free(r->source);
    free(r->systime);
    free(r->data);
    free(r->data_not_b64);
    memset(r, 0, sizeof(*r));
}

/* Reads a seq, head or offset member. Returns 0, -ENOENT if absent, -EBADMSG if it is not an
 * integer in [min, RECORD_MAX_SEQ]. */
static int get_uint(const json_t *obj, const char *key, json_int_t min, uint64_t *ret)
{
    const json_t *v = json_object_get(obj, key);

    if (!v)
        return -ENOENT;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > (json_int_t)RECORD_MAX_SEQ)
        return -EBADMSG;
    *ret = (uint64_t)json_integer_value(v);
    return 0;
}

/* Copies an optional string member: absent or null gives NULL. Returns 0, -EBADMSG for another
 * type, -ENOMEM. */
static int get_opt_string(const json_t *obj, const char *key, char **ret)
{
    const json_t *v = json_object_get(obj, key);

    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -EBADMSG;
    *ret = strndup(json_string_value(v), json_string_length(v));
    return *ret ? 0 : -ENOMEM;
}

/* Copies a required string member. */
static int get_string(const json_t *obj, const char *key, char **ret)
{
    const json_t *v = json_object_get(obj, key);

    *ret = NULL;
    if (!json_is_string(v))
        return -EBADMSG;
    *ret = strndup(json_string_value(v), json_string_length(v));
    return *ret ? 0 : -ENOMEM;
}

#define FAIL(code, msg)                                                                            \
    do {                                                                                           \
        r = (code);                                                                                \
        err = (msg);                                                                               \
        goto out;                                                                                  \
    } while (0)

static int parse_event(const json_t *root, struct record *rec, const char **ret_err)
{
    const char *err = NULL;
    const json_t *v;
    const char *b64;
    int r;

    if (get_uint(root, "offset", 0, &rec->offset) < 0)
        FAIL(-EBADMSG, "offset missing or not an integer in [0, 2^53)");
    r = get_string(root, "name", &rec->name);
    if (r == -ENOMEM)
        FAIL(r, "out of memory");
    if (r < 0)
        FAIL(-EBADMSG, "name missing or not a string");
    if (!event_name_is_safe(rec->name))
        FAIL(-EBADMSG, "name is not a safe event name");
    v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX)
        FAIL(-EBADMSG, "version missing or not an int");
    rec->version = (int)json_integer_value(v);
    r = get_opt_string(root, "source", &rec->source);
    if (r == -ENOMEM)
        FAIL(r, "out of memory");
    if (r < 0)
        FAIL(-EBADMSG, "source is not a string or null");
    r = get_opt_string(root, "systime", &rec->systime);
    if (r == -ENOMEM)
        FAIL(r, "out of memory");
    if (r < 0)
        FAIL(-EBADMSG, "systime is not a string or null");
    v = json_object_get(root, "data");
    if (!json_is_string(v))
        FAIL(-EBADMSG, "data missing or not a string");
    b64 = json_string_value(v);
    r = base64_decode(b64, json_string_length(v), &rec->data, &rec->data_len);
    if (r == -ENOMEM)
        FAIL(r, "out of memory");
    if (r < 0) {
        /* Undecodable data, like data that does not match its schema: the record is sound. */
        rec->data_not_b64_len = json_string_length(v);
        rec->data_not_b64 = malloc(rec->data_not_b64_len + 1);
        if (!rec->data_not_b64)
            FAIL(-ENOMEM, "out of memory");
        memcpy(rec->data_not_b64, b64, rec->data_not_b64_len + 1);
    }
    r = 0;
out:
    *ret_err = err;
    return r;
}

int record_parse(const char *line, size_t len, struct record *ret, const char **ret_err)
{
    const char *err = NULL;
    const char *kind;
    json_error_t jerr;
    json_t *root;
    int r;

    memset(ret, 0, sizeof(*ret));
    ret->wire_len = len;
    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    /* Out of memory says nothing about the line, and the caller must not skip the line for it.
     * jansson leaves the error text empty when an allocation fails, except inside a token,
     * which it reports as a syntax error: a second try tells those apart once memory is back
     * (a bad line costs two parses; bad lines are rare). */
    if (!root && jerr.text[0] != '\0')
        root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        bool oom = jerr.text[0] == '\0';
        if (ret_err)
            *ret_err = oom ? "out of memory" : "not valid JSON";
        return oom ? -ENOMEM : -EBADMSG;
    }
    if (!json_is_object(root))
        FAIL(-EBADMSG, "not a JSON object");
    kind = json_string_value(json_object_get(root, "kind"));
    if (!kind)
        FAIL(-EBADMSG, "kind missing or not a string");

    if (strcmp(kind, "caught_up") == 0 || strcmp(kind, "heartbeat") == 0) {
        ret->kind = kind[0] == 'c' ? RECORD_CAUGHT_UP : RECORD_HEARTBEAT;
        if (get_uint(root, "head", 0, &ret->head) < 0)
            FAIL(-EBADMSG, "head missing or not an integer in [0, 2^53)");
        r = 0;
        goto out;
    }
    if (strcmp(kind, "asset_created") == 0)
        ret->kind = RECORD_ASSET_CREATED;
    else if (strcmp(kind, "asset_deleted") == 0)
        ret->kind = RECORD_ASSET_DELETED;
    else if (strcmp(kind, "event") == 0)
        ret->kind = RECORD_EVENT;
    else
        FAIL(-EINVAL, "unknown kind");

    if (get_uint(root, "seq", 1, &ret->seq) < 0)
        FAIL(-EBADMSG, "seq missing or not an integer in [1, 2^53)");
    r = get_string(root, "asset", &ret->asset);
    if (r == -ENOMEM)
        FAIL(r, "out of memory");
    if (r < 0)
        FAIL(-EBADMSG, "asset missing or not a string");
    if (!record_name_is_safe(ret->asset))
        FAIL(-EBADMSG, "asset is not a safe name");
    r = get_opt_string(root, "time", &ret->time);
    if (r == -ENOMEM)
        FAIL(r, "out of memory");
    if (r < 0)
        FAIL(-EBADMSG, "time is not a string or null");
    if (ret->kind == RECORD_EVENT) {
        r = parse_event(root, ret, &err);
        goto out;
    }
    r = 0;
out:
    json_decref(root);
    if (r < 0)
        record_clear(ret); /* nothing half-built escapes, even if the caller forgets */
    if (ret_err)
        *ret_err = err;
    return r;
}
