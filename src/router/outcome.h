/*
 * outcome.h: the upstream outcome -> action table of SPEC section 4, as data. Given what
 * an attempt ended with (an HTTP status, or a network error code), it says what to do
 * next and what fail2ban and the circuit breaker should count.
 */
#ifndef AR_ROUTER_OUTCOME_H
#define AR_ROUTER_OUTCOME_H

#include <stdbool.h>

typedef enum ar_action {
    AR_ACT_RETURN = 0,      /* success: answer the client */
    AR_ACT_RETURN_ERROR,    /* the request itself is wrong: answer the upstream error */
    AR_ACT_NEXT,            /* try the next candidate */
    AR_ACT_RETRY_SAME,      /* retry this deployment (rate_limit_retries), then the next */
    AR_ACT_NEXT_CREDENTIAL, /* the credential is bad: skip its other deployments too */
} ar_action_t;

typedef enum ar_breaker_effect {
    AR_BRK_NONE = 0,
    AR_BRK_SUCCESS,
    AR_BRK_FAILURE,
    AR_BRK_UNAVAILABLE, /* PERMANENTLY_UNAVAILABLE: the model does not exist there */
} ar_breaker_effect_t;

typedef struct ar_outcome {
    ar_action_t action;
    bool ban_reset; /* fail2ban: a success resets the count */
    int ban_code;   /* fail2ban: the code counted (0: not counted) */
    ar_breaker_effect_t breaker;
    int client_status; /* the status the client sees if this is the last attempt */
} ar_outcome_t;

/**
 * Classifies an attempt. err is 0 when an HTTP status arrived (status is then that
 * status), or the AR_E* of a network failure (status ignored).
 */
ar_outcome_t ar_outcome_classify(int status, int err);

#endif
