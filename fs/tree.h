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
 * the only writers of a node's state, of the directories' indexes and of the visible_events and
 * visible_assets counters, which they keep equal to the nodes in state VISIBLE. Others read.
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
    NODE_ASSETS,  /* /assets */
    NODE_META,    /* /.twinfs */
    NODE_STATUS,  /* /.twinfs/status */
    NODE_ASSET,   /* /assets/<asset> */
    NODE_EVENTS,  /* /assets/<asset>/events */
    NODE_T2,      /* /assets/<asset>/t2 */
    NODE_T2_TYPE, /* /assets/<asset>/t2/<type>, made by lookup */
    NODE_T2_FILE, /* /assets/<asset>/t2/<type>/<name>, made by lookup */
    NODE_EVENT,   /* /assets/<asset>/events/<offset>-<Name>.json */
};

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
    char *time;      /* may be NULL */
    char *source;    /* may be NULL */
    char *content;   /* the event file's bytes (event_file.h) */
    size_t content_len;
};

struct node_asset {
    uint64_t serial;          /* creation order: the assets readdir key */
    struct dir_index *events; /* offset -> struct node * (the event) */
    struct node *events_dir;
    struct node *t2_dir;
    bool was_visible;
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
    time_t mtime;
    char *mime;     /* NODE_T2_FILE: the mime of the last successful open */
    unsigned opens; /* NODE_T2_FILE: open files (and opens in progress) */
    bool in_t2_lru; /* a T2 node that may be dropped: no children, nothing open */
    struct node *lru_prev, *lru_next;
    union {
        struct node_event event; /* NODE_EVENT */
        struct node_asset asset; /* NODE_ASSET */
    };
};

#define TREE_INO_ROOT   1
#define TREE_INO_ASSETS 2
#define TREE_INO_META   3
#define TREE_INO_STATUS 4

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
    struct dir_index *assets; /* serial -> struct node * (the asset) */
    size_t visible_events;    /* events in state VISIBLE */
    size_t visible_assets;    /* assets in state VISIBLE */
    struct node *root, *assets_dir, *meta_dir, *status;
    size_t t2_nodes;                         /* NODE_T2_TYPE and NODE_T2_FILE nodes allocated */
    struct node *t2_lru_first, *t2_lru_last; /* the droppable ones, least recently used first */
};

/* Sets up the lock, the tables and the fixed nodes. Returns 0 or -ENOMEM. */
int tree_init(struct tree *t);

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

/* The asset called name, made PENDING with its events/ and t2/ directories if there is none
 * (*ret_new then true). Returns NULL on ENOMEM. */
struct node *tree_asset_get_or_add(struct tree *t, const char *name, bool *ret_new);

/* A new PENDING event under asset, called fname, indexed by ev->offset. Takes ev's strings
 * on success only. Returns 0, -EEXIST (the asset has that offset, or is removed), -ENOMEM. */
int tree_event_add(struct tree *t, struct node *asset, const char *fname,
                   const struct node_event *ev, struct node **ret);

/* The event called name in the events directory dir (any state), or NULL. */
struct node *tree_event_find(struct tree *t, const struct node *dir, const char *name);

/* The entry of the assets directory or of an events directory with the smallest key >= from
 * (assets by serial, events by offset), any state, its key in *ret_key; NULL if none. */
struct node *tree_dir_next(struct tree *t, const struct node *dir, uint64_t from,
                           uint64_t *ret_key);

/* PENDING -> VISIBLE: an event, or an asset with its events/ and t2/. Returns 0, or -EEXIST
 * if n is not pending. */
int tree_show(struct tree *t, struct node *n);

/* VISIBLE -> ACKING: an unlink acks event n; it is out of sight meanwhile. Returns 0, or
 * -ENOENT if n is not visible (of racing unlinks exactly one gets 0). */
int tree_ack_begin(struct tree *t, struct node *n);

/* Ends the ack of the event at offset of the asset called asset: acked, it is REMOVED; not,
 * it is VISIBLE again. Nothing if it went meanwhile (its asset was deleted). */
void tree_ack_end(struct tree *t, const char *asset, uint64_t offset, bool acked);

/* Takes asset and everything under it out of the tree (REMOVED); frees what nothing holds.
 * A caller that still needs the asset node (to tell the kernel) holds it first. */
void tree_asset_drop(struct tree *t, struct node *asset);
