/*
 * store_int.h: what store.c and the backends share. Nothing outside src/store includes it.
 */
#ifndef AR_STORE_STORE_INT_H
#define AR_STORE_STORE_INT_H

#include "store/store.h"

/* sqlite.c */
extern const ar_store_backend_t ar_store_sqlite;
/* postgres.c */
extern const ar_store_backend_t ar_store_postgres;

#endif
