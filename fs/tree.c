/* tree: see tree.h. */
#include "tree.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_file.h"
#include "tree_internal.h"
#include "twin/hash.h"

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_name(uint64_t parent, const char *name)
{
    return twin_fnv1a(TWIN_FNV1A_INIT ^ hash_u64(parent), name, strlen(name));
}

/* The link to the next node in a bucket of the name table (names) or of the inode table. */
static struct node **bucket_next(struct node *n, bool names)
{
    return names ? &n->name_next : &n->ino_next;
}

static uint64_t bucket_hash(const struct node *n, bool names)
{
    return names ? hash_name(n->parent->ino, n->name) : hash_u64(n->ino);
}

/* Doubles the name table (names) or the inode table, rehashing what it holds. */
static int tab_grow(struct node ***tab, size_t *cap, bool names)
{
    size_t ncap = *cap ? *cap * 2 : 1024;
    struct node **nt = calloc(ncap, sizeof(struct node *));

    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i < *cap; i++) {
        struct node *n = (*tab)[i];
        while (n) {
            struct node *next = *bucket_next(n, names);
            size_t b = bucket_hash(n, names) & (ncap - 1);
            *bucket_next(n, names) = nt[b];
            nt[b] = n;
            n = next;
        }
    }
    free(*tab);
    *tab = nt;
    *cap = ncap;
    return 0;
}

struct node *tree_get(struct tree *t, uint64_t ino)
{
    if (!t->ino_cap)
        return NULL;
    for (struct node *n = t->ino_tab[hash_u64(ino) & (t->ino_cap - 1)]; n; n = n->ino_next)
        if (n->ino == ino)
            return n;
    return NULL;
}

struct node *tree_find_child(struct tree *t, const struct node *parent, const char *name)
{
    if (!t->name_cap)
        return NULL;
    size_t b = hash_name(parent->ino, name) & (t->name_cap - 1);
    for (struct node *n = t->name_tab[b]; n; n = n->name_next)
        if (n->parent == parent && strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

static void ino_tab_remove(struct tree *t, struct node *node)
{
    struct node **pp = &t->ino_tab[hash_u64(node->ino) & (t->ino_cap - 1)];

    for (; *pp; pp = &(*pp)->ino_next) {
        if (*pp == node) {
            *pp = node->ino_next;
            t->ino_count--;
            return;
        }
    }
}

void tree_name_tab_remove(struct tree *t, struct node *node)
{
    if (!node->in_name_table)
        return;
    struct node **pp = &t->name_tab[hash_name(node->parent->ino, node->name) & (t->name_cap - 1)];
    for (; *pp; pp = &(*pp)->name_next) {
        if (*pp == node) {
            *pp = node->name_next;
            t->name_count--;
            break;
        }
    }
    node->in_name_table = false;
}

struct node *tree_node_new(struct tree *t, struct node *parent, enum node_kind kind,
                           const char *name, bool named)
{
    struct node *n;

    if (t->ino_count + 1 > t->ino_cap && tab_grow(&t->ino_tab, &t->ino_cap, false) < 0)
        return NULL;
    if (named && t->name_count + 1 > t->name_cap && tab_grow(&t->name_tab, &t->name_cap, true) < 0)
        return NULL;
    n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->name = strdup(name);
    if (kind == NODE_ASSET)
        n->asset.events = dir_index_new();
    if (!n->name || (kind == NODE_ASSET && !n->asset.events)) {
        free(n->name);
        free(n);
        return NULL;
    }
    n->ino = t->next_ino++;
    n->kind = kind;
    n->state = NODE_PENDING;
    n->parent = parent;
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    if (parent)
        parent->nchildren++;
    size_t b = hash_u64(n->ino) & (t->ino_cap - 1);
    n->ino_next = t->ino_tab[b];
    t->ino_tab[b] = n;
    t->ino_count++;
    if (named && parent) { /* only the root has no parent, and no name */
        b = hash_name(parent->ino, n->name) & (t->name_cap - 1);
        n->name_next = t->name_tab[b];
        t->name_tab[b] = n;
        t->name_count++;
        n->in_name_table = true;
    }
    return n;
}

static bool is_t2_kind(enum node_kind k)
{
    return k == NODE_T2_TYPE || k == NODE_T2_FILE;
}

static void t2_lru_remove(struct tree *t, struct node *n)
{
    if (!n->in_t2_lru)
        return;
    if (n->lru_prev)
        n->lru_prev->lru_next = n->lru_next;
    else
        t->t2_lru_first = n->lru_next;
    if (n->lru_next)
        n->lru_next->lru_prev = n->lru_prev;
    else
        t->t2_lru_last = n->lru_prev;
    n->lru_prev = n->lru_next = NULL;
    n->in_t2_lru = false;
}

/* Puts a T2 node on the droppable list (as the most recent) or takes it off, as its children
 * and open files say. */
static void t2_lru_update(struct tree *t, struct node *n)
{
    if (!is_t2_kind(n->kind))
        return;
    bool droppable = n->nchildren == 0 && n->opens == 0;
    if (droppable == n->in_t2_lru)
        return;
    if (!droppable) {
        t2_lru_remove(t, n);
        return;
    }
    n->lru_prev = t->t2_lru_last;
    n->lru_next = NULL;
    if (t->t2_lru_last)
        t->t2_lru_last->lru_next = n;
    else
        t->t2_lru_first = n;
    t->t2_lru_last = n;
    n->in_t2_lru = true;
}

static void node_free_data(struct node *n)
{
    if (n->kind == NODE_EVENT) {
        free(n->event.type_name);
        free(n->event.flat_name);
        free(n->event.time);
        free(n->event.source);
        free(n->event.content);
    } else if (n->kind == NODE_ASSET) {
        dir_index_free(n->asset.events);
        free(n->asset.id);
    }
    free(n->mime);
    free(n->name);
    free(n);
}

void tree_maybe_free(struct tree *t, struct node *n)
{
    while (n && n->state == NODE_REMOVED && n->nlookup == 0 && !n->queued && n->nchildren == 0 &&
           n->opens == 0 && n->links == 0 && n->ino > TREE_INO_FIXED_MAX) {
        struct node *parent = n->parent;
        tree_name_tab_remove(t, n);
        ino_tab_remove(t, n);
        if (is_t2_kind(n->kind)) {
            t2_lru_remove(t, n);
            t->t2_nodes--;
        }
        node_free_data(n);
        if (!parent)
            break;
        parent->nchildren--;
        t2_lru_update(t, parent);
        n = parent; /* the parent may have been waiting for its last child */
    }
}

void tree_node_remove(struct tree *t, struct node *n)
{
    if (!(n->links & NODE_LINK_MAIN) || n->kind != NODE_ASSET)
        tree_name_tab_remove(t, n); /* a linked asset stays findable by the caller */
    n->state = NODE_REMOVED;
    /* An event's bytes stay until the kernel forgets the node: a file open when it was acked
     * still reads whole, as on any filesystem. The kernel forgets an unlinked inode as soon as
     * nothing holds it open, so memory stays bounded by the unacked and the open events. */
    tree_maybe_free(t, n);
}

void tree_lookup_ref(struct tree *t, struct node *node)
{
    (void)t;
    node->nlookup++;
}

void tree_set_mime(struct tree *t, struct node *node, char *mime)
{
    (void)t;
    free(node->mime);
    node->mime = mime;
}

void tree_forget(struct tree *t, struct node *node, uint64_t n)
{
    node->nlookup = node->nlookup > n ? node->nlookup - n : 0;
    if (node->kind == NODE_T2_TYPE || node->kind == NODE_T2_FILE) {
        /* Made on demand by lookup: once forgotten, nothing else refers to them. */
        if (node->nlookup == 0 && node->state != NODE_REMOVED) {
            node->state = NODE_REMOVED;
            node->links = 0;
        }
    }
    tree_maybe_free(t, node);
}

/* Drops least recently used T2 nodes while there are too many, never keep. The kernel may
 * still hold a lookup of a dropped node: its later requests find no such inode, and its
 * forget finds nothing to do. */
static void t2_drop_excess(struct tree *t, const struct node *keep)
{
    while (t->t2_nodes > TREE_T2_MAX_NODES && t->t2_lru_first && t->t2_lru_first != keep) {
        struct node *n = t->t2_lru_first;
        t2_lru_remove(t, n);
        tree_name_tab_remove(t, n);
        n->state = NODE_REMOVED;
        n->links = 0;
        n->nlookup = 0;
        tree_maybe_free(t, n);
    }
}

struct node *tree_t2_child(struct tree *t, struct node *parent, const char *name)
{
    struct node *n = tree_find_child(t, parent, name);

    if (!n) {
        n = tree_node_new(t, parent, parent->kind == NODE_T2 ? NODE_T2_TYPE : NODE_T2_FILE, name,
                          true);
        if (!n)
            return NULL;
        t->t2_nodes++;
        t2_lru_update(t, parent); /* it has a child now */
    }
    n->state = NODE_VISIBLE; /* any type and any name exist */
    n->links = NODE_LINK_MAIN;
    t2_lru_remove(t, n);
    t2_lru_update(t, n); /* the most recently used */
    t2_drop_excess(t, n);
    return n;
}

void tree_t2_pin(struct tree *t, struct node *n)
{
    n->opens++;
    t2_lru_update(t, n);
}

void tree_t2_unpin(struct tree *t, struct node *n)
{
    n->opens--;
    t2_lru_update(t, n);
    tree_maybe_free(t, n);
}

struct node *tree_asset_of(struct node *n)
{
    while (n && n->kind != NODE_ASSET)
        n = n->parent;
    return n;
}

static struct node *fixed_node(struct tree *t, struct node *parent, enum node_kind kind,
                               const char *name)
{
    struct node *n = tree_node_new(t, parent, kind, name, parent != NULL);

    if (n) {
        n->state = NODE_VISIBLE;
        n->links = NODE_LINK_MAIN;
        n->nlookup = 1; /* never freed before tree_destroy */
    }
    return n;
}

int tree_init(struct tree *t, bool all_events)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->next_ino = TREE_INO_ROOT;
    t->next_serial = 1;
    t->assets = dir_index_new();
    t->all_events = dir_index_new();
    if (!t->assets || !t->all_events)
        goto fail;
    t->root = fixed_node(t, NULL, NODE_ROOT, "");
    if (!t->root)
        goto fail;
    t->assets_dir = fixed_node(t, t->root, NODE_ASSETS, "assets");
    if (!t->assets_dir)
        goto fail;
    t->meta_dir = fixed_node(t, t->root, NODE_META, ".twinfs");
    if (!t->meta_dir)
        goto fail;
    t->status = fixed_node(t, t->meta_dir, NODE_STATUS, "status");
    if (!t->status)
        goto fail;
    t->all_events_dir = fixed_node(t, t->root, NODE_ALL_EVENTS, "events");
    if (!t->all_events_dir)
        goto fail;
    if (!all_events) {
        t->all_events_dir->state = NODE_PENDING; /* never shown */
        t->all_events_dir->links = 0;
    }
    return 0;
fail:
    tree_destroy(t);
    return -ENOMEM;
}

void tree_destroy(struct tree *t)
{
    for (size_t i = 0; i < t->ino_cap; i++) {
        struct node *n = t->ino_tab[i];
        while (n) {
            struct node *next = n->ino_next;
            node_free_data(n);
            n = next;
        }
    }
    free(t->ino_tab);
    free(t->name_tab);
    dir_index_free(t->assets);
    dir_index_free(t->all_events);
    pthread_mutex_destroy(&t->lock);
    memset(t, 0, sizeof(*t));
}
