/* fuzz_record: the stream parser, bytes as they come off the network: NDJSON framing with
 * line_buffer, then record_parse on every line. Checks the parser's promises on success. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "line_buffer.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_record(const struct record *r)
{
    /* every number downstream arithmetic sees is within the protocol's bound */
    if (r->seq > RECORD_MAX_SEQ || r->head > RECORD_MAX_SEQ || r->offset > RECORD_MAX_SEQ)
        abort();
    switch (r->kind) {
    case RECORD_EVENT:
        if (!r->name || !record_name_is_safe(r->name) || (!r->data && r->data_len > 0))
            abort();
        /* data that is not base64 is kept as sent, and then there are no decoded bytes */
        if (r->data_not_b64 && (r->data || strlen(r->data_not_b64) > r->data_not_b64_len))
            abort();
        /* fall through */
    case RECORD_ASSET_CREATED:
    case RECORD_ASSET_DELETED:
        if (r->seq < 1 || !r->asset || !record_name_is_safe(r->asset))
            abort();
        break;
    case RECORD_CAUGHT_UP:
    case RECORD_HEARTBEAT:
        if (r->seq != 0)
            abort();
        break;
    default:
        abort();
    }
}

static int on_line(void *userdata, const char *line, size_t len)
{
    struct record r;
    const char *err = NULL;
    size_t *max = userdata;

    if (!line) {
        if (len <= *max)
            abort(); /* only lines over the bound are dropped */
        return 0;
    }
    if (len > *max || len == 0 || memchr(line, '\n', len))
        abort();
    if (record_parse(line, len, &r, &err) == 0)
        check_record(&r);
    else if (!err || r.asset || r.data)
        abort();
    record_clear(&r);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct line_buffer *lb;
    size_t max, step;

    if (size < 2)
        return 0;
    /* the first two bytes choose the line bound and the size of the network reads */
    max = 16 + (size_t)data[0] * 8;
    step = 1 + data[1];
    data += 2;
    size -= 2;

    lb = line_buffer_new(max);
    if (!lb)
        return 0;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (line_buffer_feed(lb, (const char *)data + off, n, on_line, &max) != 0)
            abort();
    }
    line_buffer_free(lb);

    /* and the whole input as one line, as a caller with its own framing would pass it */
    {
        struct record r;
        const char *err;
        if (record_parse((const char *)data, size, &r, &err) == 0)
            check_record(&r);
        record_clear(&r);
    }
    return 0;
}
