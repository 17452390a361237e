/* tree: the nodes of the mounted tree, the inode table (hash by ino) and the name table (hash
 * by parent ino and name), under one lock.
 *
 * A node lives while it is linked in the tree, while the kernel holds lookups on it (nlookup,
 * dropped by forget), while the materializer has it queued, while it has live children and
 * while a T2 file of it is open; a node taken out of the tree (acked event, deleted asset) is
 * freed when the last of these goes.
 *
 * Nodes under t2/ (types and names) are made by lookup, for any name, so they are not left to
 * the kernel to drop: the kernel keeps an inode until memory runs short, and the daemon's node
 * with it. At most TREE_T2_MAX_NODES of them are kept; past that the least recently looked-up
 * one without children or open files is dropped as if the kernel had forgotten it. Their
 * entries are never cached by the kernel (timeout 0), so the next use of such a path looks it
 * up again and gets a new node.
 *
 * A node's state moves PENDING -> VISIBLE (tree_show) -> ACKING (tree_ack_begin) -> REMOVED
 * (tree_ack_end, tree_asset_drop), or back to VISIBLE when an ack fails; the functions here are
 * the only writers of a node's state, of its links, of the directories' indexes and mtimes and
 * of the visible_events and visible_assets counters, which they keep equal to the nodes in
 * state VISIBLE. Others read.
 *
 * A node's links are the names the kernel knows for it because they were made through the mount
 * (the materializer's calls) and not yet removed through it. An event has two: its name in its
 * asset's events/ (NODE_LINK_MAIN) and its name in the mount's events/ (NODE_LINK_FLAT); an asset
 * directory has one. A removed node keeps its directory entries, and stays findable by the
 * materializer's caller, until its links are removed through the mount too (tree_name_gone):
 * that is how watchers see IN_DELETE for every name.
 *
 * Every function here expects the caller to hold tree->lock unless it says otherwise. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "dir_index.h"

enum node_kind {
    NODE_ROOT,
    NODE_ASSETS,     /* /assets */
    NODE_META,       /* /.twinfs */
    NODE_STATUS,     /* /.twinfs/status */
    NODE_ASSET,      /* /assets/<asset> */
    NODE_EVENTS,     /* /assets/<asset>/events */
    NODE_T2,         /* /assets/<asset>/t2 */
    NODE_T2_TYPE,    /* /assets/<asset>/t2/<type>, made by lookup */
    NODE_T2_FILE,    /* /assets/<asset>/t2/<type>/<name>, made by lookup */
    NODE_EVENT,      /* /assets/<asset>/events/<offset>-<Name>.json, and /events/<flat_name> */
    NODE_ALL_EVENTS, /* /events: every event of every asset, by seq */
};

/* Bits of node->links: the names the kernel knows for a node (see above). */
#define NODE_LINK_MAIN 1u /* its name in its parent; for an event, in its asset's events/ */
#define NODE_LINK_FLAT 2u /* an event's name in /events */

enum node_state {
    NODE_PENDING, /* known, not yet materialized: invisible to lookup and readdir */
    NODE_VISIBLE, /* in the tree */
    NODE_ACKING,  /* an unlink is acking it: invisible, VISIBLE again if the ack fails */
    NODE_REMOVED, /* out of the tree for good; lives until forgotten */
};

/* An event file's data; its strings are the node's (freed with it). */
struct node_event {
    uint64_t seq;
    uint64_t offset;
    int version;
    char *type_name; /* the event's name as in its file name, e.g. NewDocSet */
    char *flat_name; /* its name in /events: <seq>-<asset>-<Name>.json; NULL without /events */
    struct timespec stamp; /* its mtime and ctime: the record's systime */
    char *time;            /* may be NULL */
    char *source;          /* may be NULL */
    char *content;         /* the event file's bytes (event_file.h) */
    size_t content_len;
};

struct node_asset {
    char *id;                 /* the twin's asset id; the node's name is its shown form */
    uint64_t serial;          /* creation order: the assets readdir key */
    struct dir_index *events; /* offset -> struct node * (the event) */
    struct node *events_dir;
    struct node *t2_dir;
    struct timespec visible_at; /* CLOCK_MONOTONIC; the materializer waits after it */
};

struct node {
    uint64_t ino;
    enum node_kind kind;
    enum node_state state;
    char *name;
    struct node *parent;
    uint64_t nlookup;
    unsigned nchildren; /* nodes whose parent this is and that are still allocated */
    bool in_name_table;
    bool queued; /* on the materializer's queue */
    struct node *ino_next;
    struct node *name_next;
    struct node *queue_next;
    unsigned links;        /* NODE_LINK_* */
    struct timespec mtime; /* an event's stamp; a directory's last change */
    char *mime;            /* NODE_T2_FILE: the mime of the last successful open */
    unsigned opens;        /* NODE_T2_FILE: open files (and opens in progress) */
    bool in_t2_lru;        /* a T2 node that may be dropped: no children, nothing open */
    struct node *lru_prev, *lru_next;
    union {
        struct node_event event; /* NODE_EVENT */
        struct node_asset asset; /* NODE_ASSET */
    };
};

#define TREE_INO_ROOT       1
#define TREE_INO_ASSETS     2
#define TREE_INO_META       3
#define TREE_INO_STATUS     4
#define TREE_INO_ALL_EVENTS 5
#define TREE_INO_FIXED_MAX  5 /* the fixed nodes: never freed before tree_destroy */

/* The T2 nodes (types and names) kept at most, besides those with open files or children. */
#define TREE_T2_MAX_NODES 4096

struct tree {
    pthread_mutex_t lock;
    struct node **ino_tab;
    size_t ino_cap;
    size_t ino_count;
    struct node **name_tab;
    size_t name_cap;
    size_t name_count;
    uint64_t next_ino;
    uint64_t next_serial;
    struct dir_index *assets;     /* serial -> struct node * (the asset) */
    struct dir_index *all_events; /* seq -> struct node * (the event), for /events */
    size_t visible_events;        /* events in state VISIBLE */
    size_t visible_assets;        /* assets in state VISIBLE */
    struct node *root, *assets_dir, *meta_dir, *status;
    struct node *all_events_dir; /* /events: VISIBLE when enabled, PENDING (hidden) otherwise */
    size_t t2_nodes;             /* NODE_T2_TYPE and NODE_T2_FILE nodes allocated */
    struct node *t2_lru_first, *t2_lru_last; /* the droppable ones, least recently used first */
};

/* Sets up the lock, the tables and the fixed nodes; /events is shown if all_events is true.
 * Returns 0 or -ENOMEM. */
int tree_init(struct tree *t, bool all_events);

/* Frees every node and the tables. No lock needed: nothing else runs. */
void tree_destroy(struct tree *t);

/* The node with this inode number, or NULL. */
struct node *tree_get(struct tree *t, uint64_t ino);

/* The named child of parent (any state), or NULL. */
struct node *tree_find_child(struct tree *t, const struct node *parent, const char *name);

/* Counts one more lookup the kernel holds on node (an entry replied). Lock held. */
void tree_lookup_ref(struct tree *t, struct node *node);

/* Sets a T2 file node's mime (steals mime, a malloc'd string). Lock held. */
void tree_set_mime(struct tree *t, struct node *node, char *mime);

/* Drops n nlookups (forget); frees the node when nothing holds it any more. */
void tree_forget(struct tree *t, struct node *node, uint64_t n);

/* Frees node if nothing holds it (after queued, nlookup or state changed). */
void tree_maybe_free(struct tree *t, struct node *n);

/* The child called name of parent (a NODE_T2 or NODE_T2_TYPE), made if it is not there, now
 * the most recently used; may drop the least recently used T2 node. Returns NULL on ENOMEM. */
struct node *tree_t2_child(struct tree *t, struct node *parent, const char *name);

/* Holds a T2 file node for an open file (it is neither dropped nor freed), and lets it go. */
void tree_t2_pin(struct tree *t, struct node *n);
void tree_t2_unpin(struct tree *t, struct node *n);

/* The asset a node lies under, or NULL. */
struct node *tree_asset_of(struct node *n);

/* True if n is in the tree for everyone to see (not pending, not removed). */
static inline bool node_shown(const struct node *n)
{
    return n && n->state == NODE_VISIBLE;
}

/* True if the kernel may be told of n under its name link (NODE_LINK_*): for a user, n is
 * shown and that name was made; for the materializer's caller, that name was made through the
 * mount and not yet removed through it, whatever n's state (it removes the names of removed
 * nodes). */
static inline bool node_seen(const struct node *n, unsigned link, bool caller)
{
    return n && (n->links & link) && (caller || n->state == NODE_VISIBLE);
}

/* The current asset with the twin's id (not removed), or NULL. */
struct node *tree_asset_find(struct tree *t, const char *id);

/* The pending asset called shown (its directory not made yet), or NULL. */
struct node *tree_asset_find_pending(struct tree *t, const char *shown);

/* The asset whose directory is called shown in the kernel (NODE_LINK_MAIN), removed or not;
 * at most one is. NULL if none. */
struct node *tree_asset_find_linked(struct tree *t, const char *shown);

/* The asset with the twin's id, made PENDING with its events/ and t2/ directories if there is
 * none (*ret_new then true); its name is the id's shown form (twin/name.h). Returns 0,
 * -ENAMETOOLONG (the shown form is longer than a name may be), -ENOMEM. */
int tree_asset_get_or_add(struct tree *t, const char *id, bool *ret_new, struct node **ret);

/* A new PENDING event under asset, called fname (and ev->flat_name in /events when that is
 * shown), indexed by ev->offset (and ev->seq); its mtime is ev->stamp. Takes ev's strings on
 * success only. Returns 0, -EEXIST (the asset has that offset, or is removed, or /events has
 * that seq), -ENOMEM. */
int tree_event_add(struct tree *t, struct node *asset, const char *fname,
                   const struct node_event *ev, struct node **ret);

/* The event called name in dir, an asset's events directory or /events (any state), or NULL. */
struct node *tree_event_find(struct tree *t, const struct node *dir, const char *name);

/* The name of event n in dir (its asset's events directory or /events). */
const char *tree_event_name_in(const struct node *n, const struct node *dir);

/* The entry of the assets directory, of an events directory or of /events with the smallest
 * key >= from (assets by serial, events by offset, /events by seq), any state, its key in
 * *ret_key; NULL if none. */
struct node *tree_dir_next(struct tree *t, const struct node *dir, uint64_t from,
                           uint64_t *ret_key);

/* PENDING -> VISIBLE, its NODE_LINK_MAIN name made: an event, or an asset with its events/ and
 * t2/. Returns 0, -EEXIST if n is not pending, or -ENOENT for an event whose asset is not
 * shown. */
int tree_show(struct tree *t, struct node *n);

/* The NODE_LINK_FLAT name of a shown event made. Returns 0, or -ENOENT if n is not shown,
 * has no such name, or has it already. */
int tree_link_flat(struct tree *t, struct node *n);

/* VISIBLE -> ACKING: an unlink acks event n; it is out of sight meanwhile. Returns 0, or
 * -ENOENT if n is not visible (of racing unlinks exactly one gets 0). */
int tree_ack_begin(struct tree *t, struct node *n);

/* Ends the ack of event n by an unlink of its name link: acked, n is REMOVED and that name
 * gone; not, n is VISIBLE again. n may have been removed meanwhile (its asset deleted): an
 * acked unlink still removes its name. Returns the links n still has (names the materializer
 * removes through the mount). */
unsigned tree_ack_end(struct tree *t, struct node *n, unsigned link, bool acked);

/* The kernel no longer has n's name link (it was removed through the mount, or could not be):
 * a removed node leaves that name's directory, and is freed once nothing holds it. */
void tree_name_gone(struct tree *t, struct node *n, unsigned link);

/* Takes asset and everything under it out of the tree (REMOVED); frees what nothing holds.
 * Names the kernel has (links) stay until tree_name_gone, so that the materializer removes
 * them through the mount. */
void tree_asset_drop(struct tree *t, struct node *asset);
