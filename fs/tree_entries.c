/* tree_entries: assets and events in the tree (tree.h): their states, links, indexes and the
 * directories' mtimes. */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "event_file.h"
#include "tree_internal.h"
#include "twin/name.h"

/* A directory changed now: its mtime. */
static void dir_touch(struct node *dir)
{
    clock_gettime(CLOCK_REALTIME, &dir->mtime);
}

/* The named child of assets_dir that pred accepts. */
static struct node *asset_named(struct tree *t, const char *shown,
                                bool (*pred)(const struct node *n))
{
    for (struct node *n = tree_find_child(t, t->assets_dir, shown); n; n = n->name_next) {
        if (n->parent == t->assets_dir && strcmp(n->name, shown) == 0 && pred(n))
            return n;
    }
    return NULL;
}

static bool is_current(const struct node *n)
{
    return n->state != NODE_REMOVED;
}

static bool is_linked(const struct node *n)
{
    return (n->links & NODE_LINK_MAIN) != 0;
}

struct node *tree_asset_find(struct tree *t, const char *id)
{
    char shown[TWIN_NAME_MAX + 1];

    if (twin_name_shown(id, shown, sizeof(shown)) < 0)
        return NULL;
    return asset_named(t, shown, is_current);
}

static bool is_pending(const struct node *n)
{
    return n->state == NODE_PENDING;
}

struct node *tree_asset_find_pending(struct tree *t, const char *shown)
{
    return asset_named(t, shown, is_pending);
}

struct node *tree_asset_find_linked(struct tree *t, const char *shown)
{
    return asset_named(t, shown, is_linked);
}

int tree_asset_get_or_add(struct tree *t, const char *id, bool *ret_new, struct node **ret)
{
    char shown[TWIN_NAME_MAX + 1];
    int r = twin_name_shown(id, shown, sizeof(shown));

    *ret_new = false;
    if (r < 0)
        return r;
    struct node *a = asset_named(t, shown, is_current);
    if (a) {
        *ret = a;
        return 0;
    }
    a = tree_node_new(t, t->assets_dir, NODE_ASSET, shown, true);
    if (!a)
        return -ENOMEM;
    a->asset.id = strdup(id);
    a->asset.serial = t->next_serial++;
    a->asset.events_dir = tree_node_new(t, a, NODE_EVENTS, "events", false);
    a->asset.t2_dir = tree_node_new(t, a, NODE_T2, "t2", false);
    if (!a->asset.id || !a->asset.events_dir || !a->asset.t2_dir ||
        dir_index_insert(t->assets, a->asset.serial, a) < 0) {
        if (a->asset.events_dir)
            tree_node_remove(t, a->asset.events_dir);
        if (a->asset.t2_dir)
            tree_node_remove(t, a->asset.t2_dir);
        tree_node_remove(t, a);
        return -ENOMEM;
    }
    *ret_new = true;
    *ret = a;
    return 0;
}

int tree_event_add(struct tree *t, struct node *asset, const char *fname,
                   const struct node_event *ev, struct node **ret)
{
    bool flat = ev->flat_name && t->all_events_dir->state == NODE_VISIBLE;

    if (asset->state == NODE_REMOVED || dir_index_get(asset->asset.events, ev->offset) ||
        (flat && dir_index_get(t->all_events, ev->seq)))
        return -EEXIST;
    struct node *n = tree_node_new(t, asset->asset.events_dir, NODE_EVENT, fname, false);
    if (!n)
        return -ENOMEM;
    if (dir_index_insert(asset->asset.events, ev->offset, n) < 0) {
        tree_node_remove(t, n);
        return -ENOMEM;
    }
    if (flat && dir_index_insert(t->all_events, ev->seq, n) < 0) {
        dir_index_remove(asset->asset.events, ev->offset);
        tree_node_remove(t, n);
        return -ENOMEM;
    }
    n->event = *ev;
    if (!flat) {
        free(n->event.flat_name);
        n->event.flat_name = NULL;
    }
    n->mtime = ev->stamp;
    *ret = n;
    return 0;
}

struct node *tree_event_find(struct tree *t, const struct node *dir, const char *name)
{
    uint64_t key;
    struct node *n;

    if (event_file_parse_name(name, &key) < 0)
        return NULL;
    if (dir->kind == NODE_EVENTS)
        n = dir_index_get(dir->parent->asset.events, key);
    else if (dir->kind == NODE_ALL_EVENTS)
        n = dir_index_get(t->all_events, key);
    else
        return NULL;
    if (n && strcmp(tree_event_name_in(n, dir), name) == 0)
        return n;
    return NULL;
}

const char *tree_event_name_in(const struct node *n, const struct node *dir)
{
    if (dir->kind == NODE_ALL_EVENTS)
        return n->event.flat_name ? n->event.flat_name : "";
    return n->name;
}

struct node *tree_dir_next(struct tree *t, const struct node *dir, uint64_t from, uint64_t *ret_key)
{
    if (dir->kind == NODE_ASSETS)
        return dir_index_next(t->assets, from, ret_key);
    if (dir->kind == NODE_EVENTS)
        return dir_index_next(dir->parent->asset.events, from, ret_key);
    if (dir->kind == NODE_ALL_EVENTS)
        return dir_index_next(t->all_events, from, ret_key);
    return NULL;
}

int tree_show(struct tree *t, struct node *n)
{
    if (n->state != NODE_PENDING)
        return -EEXIST;
    if (n->kind == NODE_EVENT && !node_shown(n->parent))
        return -ENOENT; /* its asset first: the kernel reaches it through that directory */
    n->state = NODE_VISIBLE;
    n->links |= NODE_LINK_MAIN;
    dir_touch(n->parent);
    if (n->kind == NODE_EVENT) {
        t->visible_events++;
    } else if (n->kind == NODE_ASSET) {
        n->asset.events_dir->state = NODE_VISIBLE;
        n->asset.events_dir->links = NODE_LINK_MAIN;
        n->asset.t2_dir->state = NODE_VISIBLE;
        n->asset.t2_dir->links = NODE_LINK_MAIN;
        clock_gettime(CLOCK_MONOTONIC, &n->asset.visible_at);
        t->visible_assets++;
    }
    return 0;
}

int tree_link_flat(struct tree *t, struct node *n)
{
    if (n->kind != NODE_EVENT || n->state != NODE_VISIBLE || !n->event.flat_name ||
        (n->links & NODE_LINK_FLAT))
        return -ENOENT;
    n->links |= NODE_LINK_FLAT;
    dir_touch(t->all_events_dir);
    return 0;
}

int tree_ack_begin(struct tree *t, struct node *n)
{
    if (n->kind != NODE_EVENT || n->state != NODE_VISIBLE)
        return -ENOENT;
    n->state = NODE_ACKING;
    t->visible_events--;
    return 0;
}

/* Takes event n, REMOVED, out of the indexes of the names it no longer has. */
static void event_unindex(struct tree *t, struct node *n)
{
    struct node *asset = n->parent->parent;

    if (!(n->links & NODE_LINK_MAIN) && dir_index_get(asset->asset.events, n->event.offset) == n)
        dir_index_remove(asset->asset.events, n->event.offset);
    if (!(n->links & NODE_LINK_FLAT) && dir_index_get(t->all_events, n->event.seq) == n)
        dir_index_remove(t->all_events, n->event.seq);
}

unsigned tree_ack_end(struct tree *t, struct node *n, unsigned link, bool acked)
{
    if (n->state == NODE_ACKING) {
        n->state = acked ? NODE_REMOVED : NODE_VISIBLE; /* not on disk: the event stays */
        if (!acked)
            t->visible_events++;
    }
    if (!acked)
        return n->links;
    unsigned left = n->links & ~link;
    tree_name_gone(t, n, link); /* may free n */
    return left;
}

void tree_name_gone(struct tree *t, struct node *n, unsigned link)
{
    if (!(n->links & link))
        return;
    n->links &= ~link;
    if (n->kind == NODE_EVENT)
        dir_touch(link == NODE_LINK_FLAT ? t->all_events_dir : n->parent);
    else if (n->parent)
        dir_touch(n->parent);
    if (n->state != NODE_REMOVED)
        return;
    if (n->kind == NODE_EVENT)
        event_unindex(t, n);
    else if (n->kind == NODE_ASSET)
        tree_name_tab_remove(t, n);
    tree_maybe_free(t, n);
}

void tree_asset_drop(struct tree *t, struct node *asset)
{
    struct dir_index *events = asset->asset.events;
    uint64_t key = 0;

    if (asset->state == NODE_REMOVED)
        return;
    for (struct node *ev = dir_index_next(events, 0, &key); ev;
         ev = key < UINT64_MAX ? dir_index_next(events, key + 1, &key) : NULL) {
        if (ev->state == NODE_VISIBLE)
            t->visible_events--;
        ev->state = NODE_REMOVED;
        event_unindex(t, ev);
        tree_maybe_free(t, ev);
    }
    if (asset->state == NODE_VISIBLE)
        t->visible_assets--;
    dir_index_remove(t->assets, asset->asset.serial);
    tree_node_remove(t, asset->asset.events_dir);
    tree_node_remove(t, asset->asset.t2_dir);
    tree_node_remove(t, asset);
}
