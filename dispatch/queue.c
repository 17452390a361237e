/* queue: see queue.h. */
#include "queue.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"

enum item_state { I_LISTED, I_RUNNING, I_PARKED, I_GIVEN_UP };
enum asset_state { A_IDLE, A_READY, A_WAITING, A_BUSY };

struct dq_asset {
    struct hnode node; /* key: id */
    char *id;
    struct dq_item *head, *tail;    /* the items to run, in order */
    struct dq_asset *lprev, *lnext; /* in the ready or the waiting line */
    enum asset_state st;
    double not_before;
    bool present;
    unsigned mark;
    unsigned long refs; /* items that point here */
};

struct dq_item {
    struct hnode node;           /* events only; key: name */
    struct dq_item *prev, *next; /* in the asset's list or the parked list */
    struct dq_asset *asset;
    enum dq_kind kind;
    enum item_state state;
    uint64_t seq;
    unsigned attempts;
    unsigned mark;
    bool gone;
    bool logged;
    char *name;
};

struct line {
    struct dq_asset *first, *last;
};

struct dq {
    struct dq_policy policy;
    struct htab items;  /* events by flat name */
    struct htab assets; /* assets by id */
    struct line ready, waiting;
    struct dq_item *parked;
    unsigned mark;
    struct dq_counts counts;
};

static void line_append(struct line *l, struct dq_asset *a)
{
    a->lnext = NULL;
    a->lprev = l->last;
    if (l->last)
        l->last->lnext = a;
    else
        l->first = a;
    l->last = a;
}

/* Puts a (which has a head) into the ready line before the first asset whose head comes later,
 * searching from the end: with one job the twin's order across assets is kept as far as the
 * per-asset order allows. */
static void line_insert_ready(struct line *l, struct dq_asset *a)
{
    struct dq_asset *after = l->last;
    while (after && after->head && after->head->seq > a->head->seq)
        after = after->lprev;
    a->lprev = after;
    a->lnext = after ? after->lnext : l->first;
    if (a->lnext)
        a->lnext->lprev = a;
    else
        l->last = a;
    if (after)
        after->lnext = a;
    else
        l->first = a;
}

static void line_unlink(struct line *l, struct dq_asset *a)
{
    if (a->lprev)
        a->lprev->lnext = a->lnext;
    else
        l->first = a->lnext;
    if (a->lnext)
        a->lnext->lprev = a->lprev;
    else
        l->last = a->lprev;
    a->lprev = a->lnext = NULL;
}

struct dq *dq_new(const struct dq_policy *policy)
{
    struct dq *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->policy = *policy;
    return q;
}

static void item_free(struct dq_item *item)
{
    free(item->name);
    free(item);
}

void dq_free(struct dq *q)
{
    if (!q)
        return;
    /* first what no asset lists (running, parked, given up), then the lists */
    for (size_t i = 0; i < q->items.nb; i++) {
        struct hnode *n = q->items.b[i];
        while (n) {
            struct dq_item *it = (struct dq_item *)n;
            n = n->next;
            if (it->state != I_LISTED)
                item_free(it);
        }
    }
    for (size_t i = 0; i < q->assets.nb; i++) {
        struct hnode *n = q->assets.b[i];
        while (n) {
            struct dq_asset *a = (struct dq_asset *)n;
            n = n->next;
            for (struct dq_item *it = a->head, *next; it; it = next) {
                next = it->next;
                item_free(it);
            }
            free(a->id);
            free(a);
        }
    }
    free(q->assets.b);
    free(q->items.b);
    free(q);
}

static struct dq_asset *asset_get(struct dq *q, const char *id)
{
    struct dq_asset *a = (struct dq_asset *)htab_find(&q->assets, id);
    if (a)
        return a;
    a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->id = strdup(id);
    a->node.key = a->id;
    if (!a->id || htab_insert(&q->assets, &a->node) < 0) {
        free(a->id);
        free(a);
        return NULL;
    }
    return a;
}

static void asset_maybe_free(struct dq *q, struct dq_asset *a)
{
    if (a->refs || a->present || a->st != A_IDLE)
        return;
    htab_remove(&q->assets, &a->node);
    free(a->id);
    free(a);
}

/* Puts an asset that is not busy in the line its state calls for. */
static void asset_reschedule(struct dq *q, struct dq_asset *a, double now)
{
    if (a->st == A_BUSY)
        return;
    if (a->st == A_READY)
        line_unlink(&q->ready, a);
    else if (a->st == A_WAITING)
        line_unlink(&q->waiting, a);
    if (!a->head) {
        a->st = A_IDLE;
        asset_maybe_free(q, a);
    } else if (a->not_before > now) {
        a->st = A_WAITING;
        line_append(&q->waiting, a);
    } else {
        a->st = A_READY;
        line_insert_ready(&q->ready, a);
    }
}

/* An idle asset that got an item is ready; a ready or waiting one stays where it is. */
static void asset_touch(struct dq *q, struct dq_asset *a)
{
    if (a->st == A_IDLE && a->head) {
        a->st = A_READY;
        line_insert_ready(&q->ready, a);
    }
}

/* Links item into its asset's list: events by seq (from the end), a created callback before
 * the first event, a deleted one at the end. */
static void list_insert(struct dq_asset *a, struct dq_item *item)
{
    struct dq_item *after = a->tail;
    if (item->kind == DQ_EVENT) {
        while (after && after->kind == DQ_EVENT && after->seq > item->seq)
            after = after->prev;
    } else if (item->kind == DQ_ASSET_CREATED) {
        after = a->head;
        while (after && after->kind != DQ_EVENT)
            after = after->next;
        after = after ? after->prev : a->tail;
    }
    item->prev = after;
    item->next = after ? after->next : a->head;
    if (item->next)
        item->next->prev = item;
    else
        a->tail = item;
    if (after)
        after->next = item;
    else
        a->head = item;
    item->state = I_LISTED;
}

static void list_unlink(struct dq_asset *a, struct dq_item *item)
{
    if (item->prev)
        item->prev->next = item->next;
    else
        a->head = item->next;
    if (item->next)
        item->next->prev = item->prev;
    else
        a->tail = item->prev;
    item->prev = item->next = NULL;
}

static void parked_unlink(struct dq *q, struct dq_item *item)
{
    if (item->prev)
        item->prev->next = item->next;
    else
        q->parked = item->next;
    if (item->next)
        item->next->prev = item->prev;
    item->prev = item->next = NULL;
    q->counts.parked--;
}

static struct dq_item *item_new(struct dq *q, const char *asset, enum dq_kind kind)
{
    struct dq_asset *a = asset_get(q, asset);
    if (!a)
        return NULL;
    struct dq_item *item = calloc(1, sizeof(*item));
    if (!item) {
        asset_maybe_free(q, a);
        return NULL;
    }
    item->asset = a;
    item->kind = kind;
    item->mark = q->mark;
    a->refs++;
    return item;
}

/* Frees an item that is in no list; its asset stays (the caller frees it if it may go). */
static void item_forget(struct dq *q, struct dq_item *item)
{
    if (item->kind == DQ_EVENT)
        htab_remove(&q->items, &item->node);
    item->asset->refs--;
    item_free(item);
}

/* Drops an item that is in no list, and its asset if nothing else keeps it. */
static void item_drop(struct dq *q, struct dq_item *item)
{
    struct dq_asset *a = item->asset;
    item_forget(q, item);
    asset_maybe_free(q, a);
}

int dq_add_event(struct dq *q, const char *name, const char *asset, uint64_t seq)
{
    struct dq_item *item = (struct dq_item *)htab_find(&q->items, name);
    if (item) {
        item->mark = q->mark;
        return 0;
    }
    item = item_new(q, asset, DQ_EVENT);
    if (!item)
        return -ENOMEM;
    item->seq = seq;
    item->name = strdup(name);
    item->node.key = item->name;
    if (!item->name || htab_insert(&q->items, &item->node) < 0) {
        struct dq_asset *a = item->asset;
        item_free(item);
        a->refs--;
        asset_maybe_free(q, a);
        return -ENOMEM;
    }
    list_insert(item->asset, item);
    q->counts.queued++;
    asset_touch(q, item->asset);
    return 1;
}

int dq_add_callback(struct dq *q, const char *asset, enum dq_kind kind)
{
    struct dq_item *item = item_new(q, asset, kind);
    if (!item)
        return -ENOMEM;
    list_insert(item->asset, item);
    q->counts.queued++;
    asset_touch(q, item->asset);
    return 0;
}

void dq_remove(struct dq *q, const char *name)
{
    struct dq_item *item = (struct dq_item *)htab_find(&q->items, name);
    if (!item)
        return;
    struct dq_asset *a = item->asset;
    switch (item->state) {
    case I_RUNNING:
        item->gone = true;
        return;
    case I_LISTED: {
        bool was_head = a->head == item;
        list_unlink(a, item);
        q->counts.queued--;
        if (a->st == A_READY && !a->head) {
            line_unlink(&q->ready, a);
            a->st = A_IDLE;
        } else if (a->st == A_WAITING && (was_head || !a->head)) {
            /* the retry waited for this head: what follows may run now */
            line_unlink(&q->waiting, a);
            a->st = A_IDLE;
            a->not_before = 0;
            asset_touch(q, a);
        }
        break;
    }
    case I_PARKED:
        parked_unlink(q, item);
        break;
    case I_GIVEN_UP:
        break;
    }
    item_drop(q, item);
}

int dq_asset_seen(struct dq *q, const char *asset)
{
    struct dq_asset *a = asset_get(q, asset);
    if (!a)
        return -ENOMEM;
    a->mark = q->mark;
    if (a->present)
        return 0;
    a->present = true;
    return 1;
}

int dq_asset_gone(struct dq *q, const char *asset)
{
    struct dq_asset *a = (struct dq_asset *)htab_find(&q->assets, asset);
    if (!a || !a->present)
        return 0;
    a->present = false;
    asset_maybe_free(q, a);
    return 1;
}

void dq_scan_begin(struct dq *q)
{
    q->mark++;
}

void dq_scan_end(struct dq *q, bool assets, void (*gone)(const char *asset, void *arg), void *arg)
{
    for (size_t i = 0; i < q->items.nb; i++) {
        struct hnode *n = q->items.b[i];
        while (n) {
            struct dq_item *it = (struct dq_item *)n;
            n = n->next;
            if (it->mark != q->mark && it->state != I_RUNNING)
                dq_remove(q, it->name);
        }
    }
    if (!assets)
        return;
    /* The callback adds to assets that exist (refs keep them): the table does not change. */
    for (size_t i = 0; i < q->assets.nb; i++)
        for (struct hnode *n = q->assets.b[i]; n; n = n->next) {
            struct dq_asset *a = (struct dq_asset *)n;
            if (a->present && a->mark != q->mark) {
                a->present = false;
                a->refs++;
                gone(a->id, arg);
                a->refs--;
            }
        }
    for (size_t i = 0; i < q->assets.nb; i++) {
        struct hnode *n = q->assets.b[i];
        while (n) {
            struct dq_asset *a = (struct dq_asset *)n;
            n = n->next;
            asset_maybe_free(q, a);
        }
    }
}

struct dq_item *dq_next(struct dq *q, double now)
{
    for (struct dq_asset *a = q->waiting.first, *next; a; a = next) {
        next = a->lnext;
        if (a->not_before <= now) {
            line_unlink(&q->waiting, a);
            a->st = A_READY;
            line_insert_ready(&q->ready, a);
        }
    }
    struct dq_asset *a = q->ready.first;
    if (!a)
        return NULL;
    line_unlink(&q->ready, a);
    a->st = A_BUSY;
    struct dq_item *item = a->head;
    list_unlink(a, item);
    item->state = I_RUNNING;
    q->counts.queued--;
    q->counts.running++;
    return item;
}

static double backoff(const struct dq_policy *p, unsigned attempts)
{
    double d = p->backoff_s;
    for (unsigned i = 1; i < attempts && d < p->backoff_max_s; i++)
        d *= 2;
    return d < p->backoff_max_s ? d : p->backoff_max_s;
}

/* Puts a running item back at the head of its asset's list. */
static void push_front(struct dq *q, struct dq_item *item)
{
    struct dq_asset *a = item->asset;
    item->prev = NULL;
    item->next = a->head;
    if (a->head)
        a->head->prev = item;
    else
        a->tail = item;
    a->head = item;
    item->state = I_LISTED;
    q->counts.queued++;
}

bool dq_done(struct dq *q, struct dq_item *item, enum dq_result r, double now)
{
    struct dq_asset *a = item->asset;
    bool report = false;

    q->counts.running--;
    a->st = A_IDLE; /* asset_reschedule below frees a if nothing keeps it */
    if (item->gone)
        r = DQ_OK;
    switch (r) {
    case DQ_OK:
        a->not_before = 0;
        item_forget(q, item);
        break;
    case DQ_FAILED:
        item->attempts++;
        if (q->policy.retries && item->attempts >= q->policy.retries) {
            q->counts.given_up++;
            report = true;
            a->not_before = 0;
            if (item->kind == DQ_EVENT)
                item->state = I_GIVEN_UP;
            else
                item_forget(q, item);
        } else {
            push_front(q, item);
            a->not_before = now + backoff(&q->policy, item->attempts);
        }
        break;
    case DQ_HELD:
        push_front(q, item);
        a->not_before = now + q->policy.held_s;
        break;
    case DQ_NO_HANDLER:
        report = !item->logged;
        item->logged = true;
        item->state = I_PARKED;
        item->prev = NULL;
        item->next = q->parked;
        if (q->parked)
            q->parked->prev = item;
        q->parked = item;
        q->counts.parked++;
        a->not_before = 0;
        break;
    }
    asset_reschedule(q, a, now);
    return report;
}

void dq_unpark(struct dq *q)
{
    while (q->parked) {
        struct dq_item *item = q->parked;
        parked_unlink(q, item);
        list_insert(item->asset, item);
        q->counts.queued++;
        asset_touch(q, item->asset);
    }
}

double dq_next_wakeup(const struct dq *q)
{
    double t = INFINITY;
    for (const struct dq_asset *a = q->waiting.first; a; a = a->lnext)
        if (a->not_before < t)
            t = a->not_before;
    return t;
}

void dq_counts(const struct dq *q, struct dq_counts *ret)
{
    *ret = q->counts;
}

enum dq_kind dq_item_kind(const struct dq_item *item)
{
    return item->kind;
}

const char *dq_item_name(const struct dq_item *item)
{
    return item->name;
}

const char *dq_item_asset(const struct dq_item *item)
{
    return item->asset->id;
}

uint64_t dq_item_seq(const struct dq_item *item)
{
    return item->seq;
}

unsigned dq_item_attempts(const struct dq_item *item)
{
    return item->attempts;
}

bool dq_item_gone(const struct dq_item *item)
{
    return item->gone;
}
