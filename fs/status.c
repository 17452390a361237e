/* status: the content of /.twinfs/status, a JSON snapshot for operators and benchmarks. It
 * never contains the token.
 *
 * Every snapshot has the same length: the JSON padded with spaces (JSON allows them) to the
 * longest rendering this mount can produce. A stat, the open and the reads that follow it then
 * agree however the counters changed in between, and the size never shrinks under a `tail -f`.
 * That length comes from rendering the longest value of every member through the same code as
 * a snapshot (status_new), so a new member cannot be forgotten. The spaces go at the ends of
 * the lines, as far as each line can grow, and the rest after the closing brace: `cat` shows
 * the JSON as it is. */
#include "fs_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "twin/t2_stream.h"

struct status {
    pthread_mutex_t lock;
    size_t size;           /* of every snapshot; grows only, and only past a wrong bound */
    struct timespec mtime; /* when the latest snapshot was taken */
    size_t *widths;        /* of each line of the longest rendering, its newline excluded */
    size_t lines;
};

/* Lines are padded up to this column at most, so that a terminal wraps none of them. */
#define STATUS_PAD_COLUMN 79

/* What a snapshot shows, gathered first and rendered after. */
struct status_values {
    struct follower_status f;
    const char *link;
    struct materializer_stats mst;
    uint64_t visible_events, visible_assets, t2_open, t2_streams_open, t2_requests;
    uint64_t ops[FS_OP_COUNT];
};

/* The length of a UTF-8 sequence from its first byte; 0 for a byte that cannot start one. */
static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    if ((c & 0xf8) == 0xf0)
        return 4;
    return 0;
}

/* last_error as JSON renders it in at most two bytes per byte: a character cut at the end of
 * the message goes, control characters become '?', and so does every byte past ASCII of a
 * text that is still not UTF-8, which JSON cannot carry. */
static void status_clean_error(char *s)
{
    size_t len = strlen(s), start = len;

    while (start > 0 && len - start < 4 && ((unsigned char)s[start - 1] & 0xc0) == 0x80)
        start--;
    if (start > 0) {
        size_t want = utf8_seq_len((unsigned char)s[start - 1]);
        if (want > 1 && len - (start - 1) < want)
            s[start - 1] = '\0';
    }
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    json_t *probe = json_string(s);
    if (probe) {
        json_decref(probe);
        return;
    }
    for (char *p = s; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
}

/* The rendering of v, with its final newline, unpadded; NULL on ENOMEM. */
static char *status_render_values(const char *url, const struct status_values *v, size_t *ret_len)
{
    const struct follower_status *st = &v->f;
    json_t *ops = json_object();

    if (!ops)
        return NULL;
    for (int i = 0; i < FS_OP_COUNT; i++)
        json_object_set_new(ops, fs_op_names[i], json_integer((json_int_t)v->ops[i]));
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?,"
        " s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
        "url", url, "link", v->link, "last_seq", (json_int_t)st->last_seq, "head",
        (json_int_t)st->head, "watermark", (json_int_t)st->watermark, "replay_done",
        st->replay_done, "pending", (json_int_t)st->pending, "pending_bytes",
        (json_int_t)st->pending_bytes, "delivered", (json_int_t)st->delivered, "acked",
        (json_int_t)st->acked, "visible_events", (json_int_t)v->visible_events, "assets",
        (json_int_t)v->visible_assets, "bad_records", (json_int_t)st->bad_records, "decode_errors",
        (json_int_t)st->decode_errors, "reconnects", (json_int_t)st->reconnects, "last_error",
        st->last_error[0] ? st->last_error : NULL, "materialize_queue", (json_int_t)v->mst.queued,
        "materialized", (json_int_t)v->mst.materialized, "materialize_errors",
        (json_int_t)v->mst.errors, "t2_open", (json_int_t)v->t2_open, "t2_streams_open",
        (json_int_t)v->t2_streams_open, "t2_requests", (json_int_t)v->t2_requests, "requests", ops);
    if (!o)
        return NULL;
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    char *out = realloc(text, len + 2);
    if (!out) {
        free(text);
        return NULL;
    }
    out[len] = '\n';
    out[len + 1] = '\0';
    *ret_len = len + 1;
    return out;
}

/* The longest value of every member: integers print longest as INT64_MIN (what the counters
 * become as json_int_t past 2^63), false is longer than true, and a last_error of quotes
 * doubles in JSON. */
static void status_values_longest(struct status_values *v)
{
    const uint64_t longest = UINT64_C(1) << 63;

    memset(v, 0, sizeof(*v));
    v->link = "";
    for (int l = FOLLOWER_LINK_CONNECTING; l <= FOLLOWER_LINK_DOWN + 1; l++) {
        const char *name = follower_link_name((enum follower_link)l);
        if (strlen(name) > strlen(v->link))
            v->link = name;
    }
    v->f.last_seq = v->f.head = v->f.watermark = v->f.pending_bytes = longest;
    v->f.delivered = v->f.acked = v->f.bad_records = v->f.decode_errors = longest;
    v->f.reconnects = longest;
    v->f.pending = (size_t)longest;
    v->f.replay_done = false;
    memset(v->f.last_error, '"', sizeof(v->f.last_error) - 1);
    v->mst.queued = (size_t)longest;
    v->mst.materialized = v->mst.errors = longest;
    v->visible_events = v->visible_assets = v->t2_open = v->t2_streams_open = longest;
    v->t2_requests = longest;
    for (int i = 0; i < FS_OP_COUNT; i++)
        v->ops[i] = longest;
}

/* Notes the width of each line of the longest rendering, text. Returns 0 or -ENOMEM. */
static int status_measure_lines(struct status *s, const char *text)
{
    size_t n = 0;

    for (const char *p = text; *p; p++)
        n += *p == '\n';
    s->widths = calloc(n ? n : 1, sizeof(*s->widths));
    if (!s->widths)
        return -ENOMEM;
    const char *line = text;
    for (size_t i = 0; i < n; i++) {
        const char *nl = strchr(line, '\n');
        s->widths[i] = (size_t)(nl - line);
        line = nl + 1;
    }
    s->lines = n;
    return 0;
}

/* Writes text (len bytes, the last a newline) into out, size bytes, padded with spaces: each
 * line up to its width in the longest rendering or STATUS_PAD_COLUMN, whichever is less, while
 * the lines are those of the longest rendering, and what remains before the last newline. */
static void status_pad(const struct status *s, const char *text, size_t len, char *out, size_t size)
{
    size_t in = 0, o = 0;

    for (size_t i = 0; i < s->lines && in < len - 1; i++) {
        const char *nl = memchr(text + in, '\n', len - 1 - in);
        if (!nl)
            break; /* the last line: padded below */
        size_t w = (size_t)(nl - (text + in));
        size_t want = s->widths[i] < STATUS_PAD_COLUMN ? s->widths[i] : STATUS_PAD_COLUMN;
        size_t pad = want > w ? want - w : 0;
        /* what the lines below still need, their newlines and the last one included */
        if (o + w + pad + (len - in - w) > size)
            pad = 0;
        memcpy(out + o, text + in, w);
        memset(out + o + w, ' ', pad);
        o += w + pad;
        out[o++] = '\n';
        in += w + 1;
    }
    memcpy(out + o, text + in, len - 1 - in);
    o += len - 1 - in;
    memset(out + o, ' ', size - 1 - o);
    out[size - 1] = '\n';
}

int status_new(struct twinfs *fs, struct status **ret)
{
    struct status_values v;
    size_t len;

    struct status *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    status_values_longest(&v);
    char *text = status_render_values(follower_url(fs->follower), &v, &len);
    if (!text) {
        free(s);
        return -ENOMEM;
    }
    int r = status_measure_lines(s, text);
    free(text);
    if (r < 0) {
        free(s);
        return r;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->size = len;
    clock_gettime(CLOCK_REALTIME, &s->mtime);
    *ret = s;
    return 0;
}

void status_free(struct status *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->widths);
    free(s);
}

static void status_gather(struct twinfs *fs, struct status_values *v)
{
    follower_get_status(fs->follower, &v->f);
    status_clean_error(v->f.last_error);
    v->link = follower_link_name(v->f.link);
    pthread_mutex_lock(&fs->tree.lock);
    v->visible_events = fs->tree.visible_events;
    v->visible_assets = fs->tree.visible_assets;
    materializer_get_stats(fs->mat, &v->mst);
    pthread_mutex_unlock(&fs->tree.lock);
    v->t2_open = atomic_load(&fs->t2_open);
    v->t2_streams_open = t2_stream_count_open();
    v->t2_requests = atomic_load(&fs->t2_requests);
    for (int i = 0; i < FS_OP_COUNT; i++)
        v->ops[i] = atomic_load(&fs->ops[i]);
}

char *status_render(struct twinfs *fs, size_t *ret_len)
{
    struct status *s = fs->status;
    struct status_values v;
    size_t len;

    status_gather(fs, &v);
    char *text = status_render_values(follower_url(fs->follower), &v, &len);
    if (!text)
        return NULL;
    pthread_mutex_lock(&s->lock);
    if (len > s->size)
        s->size = len; /* a longer value than status_values_longest knows: never shrink */
    size_t size = s->size;
    clock_gettime(CLOCK_REALTIME, &s->mtime);
    pthread_mutex_unlock(&s->lock);
    char *out = malloc(size + 1);
    if (out) {
        status_pad(s, text, len, out, size);
        out[size] = '\0';
        *ret_len = size;
    }
    free(text);
    return out;
}

void status_fill_attr(struct status *s, struct stat *st)
{
    pthread_mutex_lock(&s->lock);
    st->st_size = (off_t)s->size;
    st->st_mtim = s->mtime;
    pthread_mutex_unlock(&s->lock);
    st->st_atim = st->st_mtim;
    st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
}
