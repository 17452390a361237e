/* record: one line of GET /v1/stream parsed and validated.
 *
 * Everything a record names becomes a path component or a file's content later, so the
 * parser refuses what could not be one: asset ids and event names must be safe names
 * (twin/name.h) and valid UTF-8; event names are further limited to [A-Za-z0-9_.-]. A refused line
 * gives an error string and no record; it never aborts. */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum record_kind {
    RECORD_ASSET_CREATED,
    RECORD_ASSET_DELETED,
    RECORD_EVENT,
    RECORD_CAUGHT_UP, /* no seq; head is set */
    RECORD_HEARTBEAT, /* no seq; head is set */
};

struct record {
    enum record_kind kind;
    uint64_t seq;  /* >= 1 for asset and event records, 0 otherwise */
    uint64_t head; /* caught_up and heartbeat */
    char *asset;   /* asset and event records */
    char *time;    /* RFC 3339 as sent, may be NULL */
    /* event records only: */
    uint64_t offset;
    char *name;
    int version;
    char *source;        /* may be NULL */
    char *systime;       /* may be NULL */
    unsigned char *data; /* AVRO binary, decoded from base64 */
    size_t data_len;
    /* data as sent when it is not valid base64 (then data is NULL): the event is still an
     * event, shown with this and the reason, not dropped as a bad record. */
    char *data_not_b64;
    size_t data_not_b64_len;
    size_t wire_len; /* the line's length: the record's size as the twin sent it */
};

/* Names are at most TWIN_NAME_MAX bytes (twin/name.h); the stream reader bounds the line. */
/* Seqs, heads and offsets are at most 2^53 - 1, the integers every JSON implementation holds
 * exactly (docs/protocol.md). A larger one is a bad record: below this bound, seq + k and
 * offset + k for any small k (readdir cookies, the next seq to resume after) fit in off_t and
 * json_int_t with room to spare. */
#define RECORD_MAX_SEQ ((UINT64_C(1) << 53) - 1)

/* Parses one line into *ret (zeroed first; free with record_clear even on failure).
 * Returns 0, or with *ret_err set to a static description: -EINVAL for a kind this parser does
 * not know (a newer twin: skip the line), -EBADMSG for a malformed or unsafe record, -ENOMEM.
 * On failure *ret is already cleared. */
int record_parse(const char *line, size_t len, struct record *ret, const char **ret_err);

/* Frees what record_parse allocated and zeroes r. Accepts a zeroed record. */
void record_clear(struct record *r);

/* True if s is a safe name (twin_name_is_safe) and valid UTF-8: what the twin may name. */
int record_name_is_safe(const char *s);
