/* Notification: the pure domain of the SMS process manager (seed 000).
 *
 * One process manager per order waits for both facts the SMS needs: the order
 * (OrderCreated: its number and its customer) and the customer (CustomerCreated: name and
 * phone). Either may come first, either may come twice. Once both are known it asks for one
 * external call, kind "sms.send", with an idempotency key derived from the order, and waits
 * for its outcome; the provider's acceptance makes the SMS sent (record it, publish SmsSent,
 * finish), a failure ends it as failed. Nothing is ever sent twice: every later message for a
 * finished or calling order is ignored, and says why.
 *
 * Waiting does not last for ever: a waiting instance asks for its time-out, once (a
 * scheduled message, SmsWaitExpired, whose id the state keeps: expiry_id); going to calling
 * cancels it; the time-out handled while still waiting ends the instance as expired (no
 * SMS); one coming later (it had left when it was cancelled) is ignored.
 *
 *   phase     input                       -> phase     effects
 *   waiting   order (first)                  waiting   remember it; calling if the customer is known
 *   waiting   customer (first, its order's)  waiting   remember it; calling if the order is known
 *   waiting   order, customer again          waiting   ignored (a duplicate; another customer or
 *                                                       other details: the first is kept, warned)
 *   waiting   order already sent earlier     sent      finished (the read model has its SMS)
 *   waiting   order already failed earlier   failed    finished (its outcome is on record)
 *   waiting   order already expired earlier  expired   finished (its outcome is on record)
 *   waiting   time-out                       expired   finish (warned): no SMS, ever
 *   calling   call done                      sent      record + SmsSent + finish
 *   calling   call failed                    failed    finish (warned)
 *   calling/sent/failed/expired  order, customer  same ignored (a duplicate)
 *   waiting/sent/failed/expired  call outcome     same ignored (warned unless a duplicate)
 *   calling/sent/failed/expired  time-out         same ignored (it left before its cancel)
 *
 * Besides: any decision leaving the instance waiting, knowing the order or the customer, and
 * without a time-out asks for one (schedule_expiry); the step to calling cancels the one it
 * has (unschedule).
 *
 * notification_decide() turns (state, input) into the next state and what to do. No I/O, no
 * globals, no clock: times and ids come with the input. The state is plain data, copied with
 * `=`, stored as JSON (notification_state_to_json / _from_json). */
#ifndef CTXD_NOTIFICATION_DOMAIN_H
#define CTXD_NOTIFICATION_DOMAIN_H

#include <stddef.h>

#include <jansson.h>

/* Bytes of the texts, without the NUL: the contracts' code-point limits times 4 (UTF-8). */
#define NOTIFICATION_ID_MAX 36        /* a UUID */
#define NOTIFICATION_NUMBER_MAX 256   /* OrderNumber: 64 code points */
#define NOTIFICATION_NAME_MAX 400     /* Name: 100 code points */
#define NOTIFICATION_PHONE_MAX 128    /* PhoneNumber: 32 code points */
#define NOTIFICATION_TEXT_MAX 1920    /* Text: 480 code points */
#define NOTIFICATION_PROVIDER_MAX 512 /* ProviderMessageId: 128 code points */
#define NOTIFICATION_PROVIDER_CP 128  /* ProviderMessageId's limit in code points */
#define NOTIFICATION_KEY_MAX 64       /* the idempotency key */
#define NOTIFICATION_WHY_SIZE 256

#define NOTIFICATION_CALL_KIND "sms.send"

typedef enum {
  NOTIFICATION_WAITING = 0, /* for the order, the customer or both */
  NOTIFICATION_CALLING = 1, /* the call is recorded; waiting for its outcome */
  NOTIFICATION_SENT = 2,    /* the provider accepted it: finished */
  NOTIFICATION_FAILED = 3,  /* refused for good, or given up after max_attempts: finished */
  NOTIFICATION_EXPIRED = 4, /* still waiting at its time-out: finished, no SMS */
} notification_phase_t;

/* The state of one order's process manager. */
typedef struct {
  notification_phase_t phase;
  int has_order, has_customer;
  char order_id[NOTIFICATION_ID_MAX + 1];
  char order_number[NOTIFICATION_NUMBER_MAX + 1];
  char customer_id[NOTIFICATION_ID_MAX + 1]; /* the order's customer, or the customer's */
  char customer_name[NOTIFICATION_NAME_MAX + 1];
  char phone[NOTIFICATION_PHONE_MAX + 1];
  char sms_id[NOTIFICATION_ID_MAX + 1]; /* set when calling */
  char text[NOTIFICATION_TEXT_MAX + 1]; /* set when calling */
  char provider_message_id[NOTIFICATION_PROVIDER_MAX + 1];
  char expiry_id[NOTIFICATION_ID_MAX + 1]; /* the scheduled time-out while waiting; "" none */
  long long attempts;                      /* of the call, when it ended */
  long long decided_at_ms;
} notification_state_t;

typedef enum {
  NOTIFICATION_IN_ORDER = 1,     /* OrderCreated */
  NOTIFICATION_IN_CUSTOMER = 2,  /* CustomerCreated */
  NOTIFICATION_IN_CALL_DONE = 3, /* the provider accepted the SMS */
  NOTIFICATION_IN_CALL_FAILED = 4,
  NOTIFICATION_IN_EXPIRY = 5 /* the time-out (SmsWaitExpired) */
} notification_input_kind_t;

/* What happened. Strings are borrowed for the call; NULL reads as "". */
typedef struct {
  notification_input_kind_t kind;
  long long at_ms;
  /* order */
  const char *order_id;
  const char *order_number;
  const char *customer_id; /* order and customer */
  /* customer */
  const char *customer_name;
  const char *phone;
  /* order: how this order's SMS ended before, on record (NOTIFICATION_SENT, _FAILED or
   * _EXPIRED; NOTIFICATION_WAITING: it did not): the process manager was cleaned up after
   * its retention, and the order came once more */
  notification_phase_t already;
  /* call outcome */
  const char *provider_message_id;
  const char *reason;
  long long attempts;
} notification_input_t;

typedef enum {
  NOTIFICATION_NOTE_NONE = 0,
  NOTIFICATION_NOTE_DUPLICATE,  /* seen before: nothing to do (info) */
  NOTIFICATION_NOTE_CONFLICT,   /* seen before with other details: the first kept (warning) */
  NOTIFICATION_NOTE_UNEXPECTED, /* a call outcome while not calling (warning) */
  NOTIFICATION_NOTE_FAILED,     /* the SMS failed for good (warning) */
  NOTIFICATION_NOTE_EXPIRED     /* waited past its time-out: no SMS (warning) */
} notification_note_t;

typedef struct {
  notification_state_t next;
  int changed; /* next differs from the state: save it */
  int call;    /* record the external call (key, payload below) */
  int sent;    /* record the SMS in the read model and publish SmsSent */
  int finish;  /* the process manager is over */
  /* schedule the time-out and keep its id in next.expiry_id (next is waiting without one) */
  int schedule_expiry;
  char unschedule[NOTIFICATION_ID_MAX + 1]; /* cancel this time-out ("": none) */
  notification_note_t note;
  char why[NOTIFICATION_WHY_SIZE]; /* for the log, with the note */
  char key[NOTIFICATION_KEY_MAX + 1];
} notification_decision_t;

/* A new process manager: waiting for everything. */
void notification_state_init(notification_state_t *s);

/* Decides in on s (NULL: a new one) into *d. 0, or CTXD_EINVAL for an input without the
 * fields its kind needs (d untouched). */
int notification_decide(const notification_state_t *s, const notification_input_t *in,
                        notification_decision_t *d);

/* The external call's payload for a calling state: {"to", "text", "smsId", "orderId",
 * "customerId"}. New JSON text, free() it; NULL when out of memory. */
char *notification_call_payload(const notification_state_t *s);

/* The idempotency key of an order's SMS: "sms:order:<order id>". */
void notification_call_key(const char *order_id, char key[NOTIFICATION_KEY_MAX + 1]);

/* The SMS id of an order: a UUID derived from the order id (the same every time). */
void notification_sms_id(const char *order_id, char id[NOTIFICATION_ID_MAX + 1]);

/* The state as a JSON object (new reference) and back: 0 or CTXD_EDECODE (missing or bad
 * member; *s then undefined). "expiryId" may be missing (a state saved before time-outs
 * existed): "". */
json_t *notification_state_to_json(const notification_state_t *s);
int notification_state_from_json(const json_t *j, notification_state_t *s);

const char *notification_phase_name(notification_phase_t p);

/* ---- the executor's rules ----------------------------------------------------------------- */

/* 1 when s can be the SMS's ProviderMessageId: 1 to 128 code points of valid UTF-8. */
int notification_provider_id_ok(const char *s);

#endif
