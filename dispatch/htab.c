/* htab: see htab.h. */
#include "htab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "twin/hash.h"

static uint64_t hash_str(const char *s)
{
    return twin_fnv1a(TWIN_FNV1A_INIT, s, strlen(s));
}

struct hnode *htab_find(const struct htab *t, const char *key)
{
    if (t->nb == 0)
        return NULL;
    uint64_t h = hash_str(key);
    for (struct hnode *n = t->b[h & (t->nb - 1)]; n; n = n->next)
        if (n->h == h && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

int htab_insert(struct htab *t, struct hnode *node)
{
    if (t->n >= t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        struct hnode **b = calloc(nb, sizeof(struct hnode *));
        if (!b)
            return -ENOMEM;
        for (size_t i = 0; i < t->nb; i++) {
            struct hnode *n = t->b[i];
            while (n) {
                struct hnode *next = n->next;
                n->next = b[n->h & (nb - 1)];
                b[n->h & (nb - 1)] = n;
                n = next;
            }
        }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    node->h = hash_str(node->key);
    node->next = t->b[node->h & (t->nb - 1)];
    t->b[node->h & (t->nb - 1)] = node;
    t->n++;
    return 0;
}

void htab_remove(struct htab *t, struct hnode *node)
{
    struct hnode **p = &t->b[node->h & (t->nb - 1)];
    while (*p != node)
        p = &(*p)->next;
    *p = node->next;
    t->n--;
}
