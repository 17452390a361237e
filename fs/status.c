/* status: the content of /.twinfs/status, a JSON snapshot for operators and benchmarks. It
 * never contains the token. */
#include "fs_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "twin/t2_stream.h"

char *status_render(struct twinfs *fs, size_t *ret_len)
{
    struct follower_status st;
    struct materializer_stats mst;
    size_t visible_events, visible_assets;

    follower_get_status(fs->follower, &st);
    pthread_mutex_lock(&fs->tree.lock);
    visible_events = fs->tree.visible_events;
    visible_assets = fs->tree.visible_assets;
    materializer_get_stats(fs->mat, &mst);
    pthread_mutex_unlock(&fs->tree.lock);

    json_t *ops = json_object();
    for (int i = 0; i < FS_OP_COUNT; i++)
        json_object_set_new(ops, fs_op_names[i],
                            json_integer((json_int_t)atomic_load(&fs->ops[i])));
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?,"
        " s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
        "url", follower_url(fs->follower), "link", follower_link_name(st.link), "last_seq",
        (json_int_t)st.last_seq, "head", (json_int_t)st.head, "watermark", (json_int_t)st.watermark,
        "replay_done", st.replay_done, "pending", (json_int_t)st.pending, "pending_bytes",
        (json_int_t)st.pending_bytes, "delivered", (json_int_t)st.delivered, "acked",
        (json_int_t)st.acked, "visible_events", (json_int_t)visible_events, "assets",
        (json_int_t)visible_assets, "bad_records", (json_int_t)st.bad_records, "decode_errors",
        (json_int_t)st.decode_errors, "reconnects", (json_int_t)st.reconnects, "last_error",
        st.last_error[0] ? st.last_error : NULL, "materialize_queue", (json_int_t)mst.queued,
        "materialized", (json_int_t)mst.materialized, "materialize_errors", (json_int_t)mst.errors,
        "t2_open", (json_int_t)atomic_load(&fs->t2_open), "t2_streams_open",
        (json_int_t)t2_stream_count_open(), "t2_requests",
        (json_int_t)atomic_load(&fs->t2_requests), "requests", ops);
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
