/*
 * list.h: an intrusive doubly-linked list (libuv queue.h style). The links live inside
 * the elements, so adding and removing never allocate; ar_container_of gets the element.
 */
#ifndef AR_CORE_LIST_H
#define AR_CORE_LIST_H

#include <stdbool.h>

typedef struct ar_list {
    struct ar_list *prev, *next;
} ar_list_t;

static inline void ar_list_init(ar_list_t *head)
{
    head->prev = head->next = head;
}

static inline bool ar_list_empty(const ar_list_t *head)
{
    return head->next == head;
}

static inline void ar_list_insert_tail(ar_list_t *head, ar_list_t *item)
{
    item->next = head;
    item->prev = head->prev;
    head->prev->next = item;
    head->prev = item;
}

/** Unlinks item; removing an item twice is harmless (it points at itself after). */
static inline void ar_list_insert_head(ar_list_t *head, ar_list_t *item)
{
    ar_list_insert_tail(head->next, item);
}

static inline void ar_list_remove(ar_list_t *item)
{
    item->prev->next = item->next;
    item->next->prev = item->prev;
    item->prev = item->next = item;
}

#define ar_list_foreach_safe(pos, tmp, head)                                                       \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
