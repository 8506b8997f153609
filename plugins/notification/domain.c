/* Notification's process manager: see domain.h for the table this code follows. */
#include "domain.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ctxd/errno.h>

#include "text.h"

static const char *const phase_names[] = {"waiting", "calling", "sent", "failed", "expired"};

const char *notification_phase_name(notification_phase_t p) {
  return (unsigned)p < sizeof phase_names / sizeof *phase_names ? phase_names[p] : "unknown";
}

void notification_state_init(notification_state_t *s) { memset(s, 0, sizeof *s); }

static const char *str(const char *s) { return s != NULL ? s : ""; }

static void copy(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", str(src)); }

#define COPY(dst, src) copy((dst), sizeof(dst), (src))

void notification_call_key(const char *order_id, char key[NOTIFICATION_KEY_MAX + 1]) {
  snprintf(key, NOTIFICATION_KEY_MAX + 1, "sms:order:%s", str(order_id));
}

/* FNV-1a over the key with two offset bases: 128 bits, written as a version-8 UUID (RFC
 * 9562: custom), so the same order always gets the same SMS id. */
void notification_sms_id(const char *order_id, char id[NOTIFICATION_ID_MAX + 1]) {
  uint64_t h[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
  for (int k = 0; k < 2; k++) {
    for (const unsigned char *p = (const unsigned char *)"sms:"; *p; p++)
      h[k] = (h[k] ^ *p) * 0x100000001b3ull;
    for (const unsigned char *p = (const unsigned char *)str(order_id); *p; p++)
      h[k] = (h[k] ^ *p) * 0x100000001b3ull;
  }
  unsigned char b[16];
  for (int i = 0; i < 8; i++) {
    b[i] = (unsigned char)(h[0] >> (56 - 8 * i));
    b[8 + i] = (unsigned char)(h[1] >> (56 - 8 * i));
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x80);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf(id, NOTIFICATION_ID_MAX + 1,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
           b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void note(notification_decision_t *d, notification_note_t n, const char *fmt, const char *a,
                 const char *b) {
  d->note = n;
  snprintf(d->why, sizeof d->why, fmt, a, b);
}

/* Both facts known while waiting: ask for the call. */
static void maybe_call(notification_decision_t *d) {
  notification_state_t *n = &d->next;
  if (n->phase != NOTIFICATION_WAITING || !n->has_order || !n->has_customer) return;
  n->phase = NOTIFICATION_CALLING;
  notification_sms_id(n->order_id, n->sms_id);
  snprintf(n->text, sizeof n->text, "%s, we received your order %s.", n->customer_name, n->order_number);
  notification_call_key(n->order_id, d->key);
  d->call = 1;
  /* no time-out while calling: the call ends it */
  COPY(d->unschedule, n->expiry_id);
  n->expiry_id[0] = '\0';
}

static void take_order(notification_state_t *n, const notification_input_t *in) {
  n->has_order = 1;
  COPY(n->order_id, in->order_id);
  COPY(n->order_number, in->order_number);
  COPY(n->customer_id, in->customer_id);
}

static void on_order(const notification_input_t *in, notification_decision_t *d) {
  notification_state_t *n = &d->next;
  if (n->phase != NOTIFICATION_WAITING) {
    note(d, NOTIFICATION_NOTE_DUPLICATE, "order %s again while %s: its SMS is under way or done",
         in->order_id, notification_phase_name(n->phase));
  } else if (n->has_order) {
    if (strcmp(n->customer_id, in->customer_id) != 0 || strcmp(n->order_number, str(in->order_number)) != 0)
      note(d, NOTIFICATION_NOTE_CONFLICT, "order %s again with other details (customer %s): the first kept",
           in->order_id, in->customer_id);
    else
      note(d, NOTIFICATION_NOTE_DUPLICATE, "order %s again%s", in->order_id, "");
  } else if (n->has_customer && strcmp(n->customer_id, in->customer_id) != 0) {
    note(d, NOTIFICATION_NOTE_CONFLICT, "order %s is of customer %s, not of the one this order waited for",
         in->order_id, in->customer_id);
  } else if (in->already == NOTIFICATION_SENT || in->already == NOTIFICATION_FAILED ||
             in->already == NOTIFICATION_EXPIRED) {
    take_order(n, in);
    n->phase = in->already;
    d->changed = d->finish = 1;
    note(d, NOTIFICATION_NOTE_DUPLICATE, "order %s again: its SMS ended as %s before", in->order_id,
         notification_phase_name(in->already));
  } else {
    take_order(n, in);
    d->changed = 1;
    maybe_call(d);
  }
}

static void on_customer(const notification_input_t *in, notification_decision_t *d) {
  notification_state_t *n = &d->next;
  if (n->has_order && strcmp(n->customer_id, in->customer_id) != 0) {
    note(d, NOTIFICATION_NOTE_CONFLICT, "customer %s is not the customer of order %s", in->customer_id,
         n->order_id);
  } else if (n->has_customer) {
    if (strcmp(n->phone, str(in->phone)) != 0 || strcmp(n->customer_name, str(in->customer_name)) != 0)
      note(d, NOTIFICATION_NOTE_CONFLICT, "customer %s again with other details%s: the first kept",
           in->customer_id, n->phase == NOTIFICATION_WAITING ? "" : " after its SMS was asked for");
    else
      note(d, NOTIFICATION_NOTE_DUPLICATE, "customer %s again%s", in->customer_id, "");
  } else if (n->phase != NOTIFICATION_WAITING) {
    note(d, NOTIFICATION_NOTE_DUPLICATE, "customer %s while %s: nothing to do", in->customer_id,
         notification_phase_name(n->phase));
  } else {
    n->has_customer = 1;
    COPY(n->customer_id, in->customer_id);
    COPY(n->customer_name, in->customer_name);
    COPY(n->phone, in->phone);
    d->changed = 1;
    maybe_call(d);
  }
}

static void on_outcome(const notification_input_t *in, notification_decision_t *d) {
  notification_state_t *n = &d->next;
  int done = in->kind == NOTIFICATION_IN_CALL_DONE;
  if (n->phase != NOTIFICATION_CALLING) {
    /* the same outcome again is a duplicate; any other is a surprise */
    int same = (done && n->phase == NOTIFICATION_SENT) || (!done && n->phase == NOTIFICATION_FAILED);
    note(d, same ? NOTIFICATION_NOTE_DUPLICATE : NOTIFICATION_NOTE_UNEXPECTED, "call %s while %s: ignored",
         done ? "done" : "failed", notification_phase_name(n->phase));
    return;
  }
  n->phase = done ? NOTIFICATION_SENT : NOTIFICATION_FAILED;
  n->attempts = in->attempts;
  n->decided_at_ms = in->at_ms;
  if (done) COPY(n->provider_message_id, in->provider_message_id);
  d->changed = d->finish = 1;
  d->sent = done;
  if (!done)
    note(d, NOTIFICATION_NOTE_FAILED, "the SMS of order %s failed for good: %s", n->order_id,
         in->reason != NULL && in->reason[0] ? in->reason : "no reason given");
}

static void on_expiry(const notification_input_t *in, notification_decision_t *d) {
  notification_state_t *n = &d->next;
  if (n->phase != NOTIFICATION_WAITING) {
    /* it had left when the step to calling cancelled it */
    note(d, NOTIFICATION_NOTE_DUPLICATE, "time-out of order %s while %s: ignored", n->order_id,
         notification_phase_name(n->phase));
    return;
  }
  n->phase = NOTIFICATION_EXPIRED;
  n->decided_at_ms = in->at_ms;
  d->changed = d->finish = 1;
  note(d, NOTIFICATION_NOTE_EXPIRED, "order %s waited for its %s past its time-out: expired, no SMS",
       n->order_id[0] ? n->order_id : "(unknown)", n->has_order ? "customer" : "order");
}

static int valid(const notification_input_t *in) {
  switch (in->kind) {
  case NOTIFICATION_IN_ORDER:
    return in->order_id != NULL && in->order_id[0] && in->customer_id && in->customer_id[0];
  case NOTIFICATION_IN_CUSTOMER: return in->customer_id != NULL && in->customer_id[0];
  case NOTIFICATION_IN_CALL_DONE:
  case NOTIFICATION_IN_CALL_FAILED:
  case NOTIFICATION_IN_EXPIRY: return 1;
  }
  return 0;
}

int notification_decide(const notification_state_t *s, const notification_input_t *in,
                        notification_decision_t *d) {
  if (in == NULL || !valid(in)) return CTXD_EINVAL;
  memset(d, 0, sizeof *d);
  if (s != NULL)
    d->next = *s;
  else
    notification_state_init(&d->next);
  switch (in->kind) {
  case NOTIFICATION_IN_ORDER: on_order(in, d); break;
  case NOTIFICATION_IN_CUSTOMER: on_customer(in, d); break;
  case NOTIFICATION_IN_EXPIRY: on_expiry(in, d); break;
  default: on_outcome(in, d); break;
  }
  /* waiting for something without a time-out (new, or saved before time-outs existed) */
  const notification_state_t *n = &d->next;
  d->schedule_expiry =
      n->phase == NOTIFICATION_WAITING && (n->has_order || n->has_customer) && n->expiry_id[0] == '\0';
  return 0;
}

char *notification_call_payload(const notification_state_t *s) {
  json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "to", s->phone, "text", s->text, "smsId", s->sms_id,
                        "orderId", s->order_id, "customerId", s->customer_id);
  char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  return text;
}

/* ---- the state as JSON ------------------------------------------------------------------ */

/* The string members, with where each lives in the state; an optional one may be missing
 * (a state saved before it existed): "". */
#define FIELD_OPT(name, member, optional)                                                                    \
  { name, offsetof(notification_state_t, member), sizeof(((notification_state_t *)0)->member), optional }
#define FIELD(name, member) FIELD_OPT(name, member, 0)
static const struct {
  const char *name;
  size_t offset, size;
  int optional;
} string_fields[] = {
    FIELD("orderId", order_id),
    FIELD("orderNumber", order_number),
    FIELD("customerId", customer_id),
    FIELD("customerName", customer_name),
    FIELD("phone", phone),
    FIELD("smsId", sms_id),
    FIELD("text", text),
    FIELD("providerMessageId", provider_message_id),
    FIELD_OPT("expiryId", expiry_id, 1),
};

json_t *notification_state_to_json(const notification_state_t *s) {
  json_t *j = json_pack("{s:s, s:b, s:b, s:I, s:I}", "phase", notification_phase_name(s->phase), "hasOrder",
                        s->has_order, "hasCustomer", s->has_customer, "attempts", (json_int_t)s->attempts,
                        "decidedAtMs", (json_int_t)s->decided_at_ms);
  for (size_t i = 0; j != NULL && i < sizeof string_fields / sizeof *string_fields; i++) {
    const char *v = (const char *)s + string_fields[i].offset;
    if (json_object_set_new(j, string_fields[i].name, json_string(v)) != 0) {
      json_decref(j);
      return NULL;
    }
  }
  return j;
}

int notification_state_from_json(const json_t *j, notification_state_t *s) {
  notification_state_init(s);
  const char *phase = json_string_value(json_object_get(j, "phase"));
  int found = 0;
  for (int p = 0; phase != NULL && p < (int)(sizeof phase_names / sizeof *phase_names); p++) {
    if (strcmp(phase, phase_names[p]) == 0) {
      s->phase = (notification_phase_t)p;
      found = 1;
    }
  }
  json_t *has_order = json_object_get(j, "hasOrder"), *has_customer = json_object_get(j, "hasCustomer");
  json_t *attempts = json_object_get(j, "attempts"), *at = json_object_get(j, "decidedAtMs");
  if (!found || !json_is_boolean(has_order) || !json_is_boolean(has_customer) || !json_is_integer(attempts) ||
      !json_is_integer(at))
    return CTXD_EDECODE;
  s->has_order = json_is_true(has_order);
  s->has_customer = json_is_true(has_customer);
  s->attempts = json_integer_value(attempts);
  s->decided_at_ms = json_integer_value(at);
  for (size_t i = 0; i < sizeof string_fields / sizeof *string_fields; i++) {
    const json_t *v = json_object_get(j, string_fields[i].name);
    if (v == NULL && string_fields[i].optional) continue;
    if (!json_is_string(v) || json_string_length(v) >= string_fields[i].size) return CTXD_EDECODE;
    memcpy((char *)s + string_fields[i].offset, json_string_value(v), json_string_length(v) + 1);
  }
  return 0;
}

/* ---- the executor's rules ------------------------------------------------------------------ */

int notification_provider_id_ok(const char *s) {
  if (s == NULL || s[0] == '\0') return 0;
  size_t cps = 0;
  for (const char *p = s; *p; cps++) {
    size_t n = plugin_utf8_len(p);
    if (n == 0 || cps == NOTIFICATION_PROVIDER_CP) return 0;
    p += n;
  }
  return 1;
}
