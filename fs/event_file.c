/* event_file: see event_file.h. */
#include "event_file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "twin/base64.h"
#include "twin/name.h"

int event_file_name(uint64_t offset, const char *type_name, char *buf, size_t size)
{
    int r = snprintf(buf, size, "%0*" PRIu64 "-%s.json", EVENT_OFFSET_DIGITS, offset, type_name);

    if (r < 0 || (size_t)r >= size || r > 255)
        return -ENAMETOOLONG;
    return r;
}

/* The shown form of name (twin/name.h) in buf, cut to at most max bytes between two characters
 * when it is longer; "" for an empty name. */
static void shown_cut(const char *name, size_t max, char *buf, size_t size)
{
    char prefix[TWIN_NAME_MAX + 1];
    size_t len = strnlen(name, TWIN_NAME_MAX);

    buf[0] = '\0';
    for (; len > 0; len--) {
        if (((unsigned char)name[len] & 0xc0) == 0x80)
            continue; /* not between two characters */
        memcpy(prefix, name, len);
        prefix[len] = '\0';
        int r = twin_name_shown(prefix, buf, size);
        if (r >= 0 && (size_t)r <= max)
            return;
    }
    buf[0] = '\0';
}

/* The longest cut of shown, a shown name, at most len bytes long that ends between two
 * characters: not inside a UTF-8 sequence, an escape, or the pair of escapes of a C1 control
 * (%C2%XX). */
static size_t shown_cut_point(const char *shown, size_t len)
{
    while (len > 0) {
        if (((unsigned char)shown[len] & 0xc0) == 0x80 || shown[len - 1] == '%' ||
            (len >= 2 && shown[len - 2] == '%'))
            len--;
        else if (len >= 3 && memcmp(shown + len - 3, "%C2", 3) == 0 && shown[len] == '%')
            len -= 3;
        else
            break;
    }
    return len;
}

void event_file_names(const struct follower_event *ev, const char *asset_shown, char *fname,
                      char *flat)
{
    char name[TWIN_NAME_MAX + 1];
    size_t fixed = EVENT_OFFSET_DIGITS + strlen("-.json");

    shown_cut(ev->name ? ev->name : "", TWIN_NAME_MAX - fixed, name, sizeof(name));
    event_file_name(ev->offset, name, fname, TWIN_NAME_MAX + 1);
    /* <seq>-<asset>-<Name>.json: the asset's part is cut first, then the name's. */
    size_t room = TWIN_NAME_MAX - fixed - 1;
    size_t name_len = strlen(name);
    size_t asset_len = strlen(asset_shown);
    if (asset_len + name_len > room) {
        size_t keep = name_len < room / 2 ? room - name_len : room - room / 2;
        asset_len = shown_cut_point(asset_shown, asset_len < keep ? asset_len : keep);
        if (name_len > room - asset_len)
            shown_cut(ev->name ? ev->name : "", room - asset_len, name, sizeof(name));
    }
    snprintf(flat, TWIN_NAME_MAX + 1, "%0*" PRIu64 "-%.*s-%s.json", EVENT_OFFSET_DIGITS, ev->seq,
             (int)asset_len, asset_shown, name);
}

int event_file_parse_name(const char *name, uint64_t *ret_offset)
{
    uint64_t v = 0;

    for (int i = 0; i < EVENT_OFFSET_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -ENOENT;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ENOENT;
        v = v * 10 + d;
    }
    if (name[EVENT_OFFSET_DIGITS] != '-')
        return -ENOENT;
    *ret_offset = v;
    return 0;
}

static int set_str(json_t *o, const char *key, const char *s)
{
    return json_object_set_new(o, key, s ? json_string(s) : json_null());
}

/* The text being rendered, with a bound. */
struct render_buf {
    char *p;
    size_t len, cap;
    size_t max; /* the most bytes of text, the final newline included; 0: no bound */
    const atomic_bool *stop;
    int err; /* why the dump stopped: -EFBIG, -ECANCELED, -ENOMEM */
};

static int render_put(const char *buf, size_t size, void *userdata)
{
    struct render_buf *b = userdata;

    if (b->stop && atomic_load_explicit(b->stop, memory_order_relaxed)) {
        b->err = -ECANCELED;
        return -1;
    }
    /* the final newline counts in max; room is kept for it and the NUL */
    if (b->max && b->len + size >= b->max) {
        b->err = -EFBIG;
        return -1;
    }
    if (size > b->cap - b->len || b->cap - b->len - size < 2) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < size + 2)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = -ENOMEM;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, size);
    b->len += size;
    return 0;
}

int event_file_render(const struct follower_event *ev, size_t max, const atomic_bool *stop,
                      char **ret, size_t *ret_len)
{
    struct render_buf b = {.max = max, .stop = stop};
    json_t *o = json_object();
    int r = 0;

    if (!o)
        return -ENOMEM;
    r |= set_str(o, "asset", ev->asset);
    r |= json_object_set_new(o, "offset", json_integer((json_int_t)ev->offset));
    r |= set_str(o, "name", ev->name);
    r |= json_object_set_new(o, "version", json_integer(ev->version));
    r |= set_str(o, "source", ev->source);
    r |= set_str(o, "time", ev->time);
    r |= set_str(o, "systime", ev->systime);
    if (ev->data_json) {
        /* shared, not copied: a reference is taken and given back with o */
        r |= json_object_set(o, "data", (json_t *)ev->data_json);
    } else {
        json_t *b64 = NULL;
        if (ev->data_not_b64) {
            b64 = json_stringn(ev->data_not_b64, ev->data_not_b64_len); /* shown as sent */
        } else {
            char *enc = NULL;
            if (base64_encode(ev->data ? (const void *)ev->data : "", ev->data_len, &enc) == 0)
                b64 = json_string(enc);
            free(enc);
        }
        r |= json_object_set_new(o, "data_b64", b64);
        r |= set_str(o, "error", ev->decode_error ? ev->decode_error : "cannot decode");
    }
    if (r != 0) {
        json_decref(o);
        return -ENOMEM;
    }
    b.err = -ENOMEM;
    r = json_dump_callback(o, render_put, &b, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    b.max = 0; /* room for the newline was kept */
    if (r == 0 && render_put("\n", 1, &b) == 0) {
        b.p[b.len] = '\0';
        char *fit = realloc(b.p, b.len + 1); /* the buffer grew by doubling */
        if (fit)
            b.p = fit;
        *ret = b.p;
        *ret_len = b.len;
        return 0;
    }
    free(b.p);
    return b.err;
}
