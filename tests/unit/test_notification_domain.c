/* Notification domain (plugins/notification): the SMS process manager. Every sequence of up
 * to six messages (order, customer, each again, each again with other details, the call's
 * success or failure, the time-out) is checked against a model written here independently
 * of domain.c: one call exactly when both facts are first known, one SMS sent at most and
 * only after the call, one time-out asked for once something waits and cancelled at the
 * call, expired only while waiting, nothing after the end. Then the cases one by one with
 * their notes, and the JSON form of the state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "domain.h"

#define ORDER "0a000000-0000-4000-8000-000000000001"
#define CUSTOMER "c0000000-0000-4000-8000-000000000001"
#define OTHER_CUSTOMER "c0000000-0000-4000-8000-000000000002"
#define EXPIRY "e0000000-0000-4000-8000-000000000001" /* the id of a scheduled time-out */

static notification_input_t order_in(const char *customer) {
  return (notification_input_t){.kind = NOTIFICATION_IN_ORDER,
                                .at_ms = 1000,
                                .order_id = ORDER,
                                .order_number = "SO-1",
                                .customer_id = customer};
}

static notification_input_t customer_in(const char *phone) {
  return (notification_input_t){.kind = NOTIFICATION_IN_CUSTOMER,
                                .at_ms = 1000,
                                .customer_id = CUSTOMER,
                                .customer_name = "Ada",
                                .phone = phone};
}

static notification_input_t outcome_in(int done) {
  return (notification_input_t){.kind = done ? NOTIFICATION_IN_CALL_DONE : NOTIFICATION_IN_CALL_FAILED,
                                .at_ms = 5000,
                                .provider_message_id = "p-1",
                                .reason = "HTTP 400",
                                .attempts = 2};
}

static notification_input_t expiry_in(void) {
  return (notification_input_t){.kind = NOTIFICATION_IN_EXPIRY, .at_ms = 9000, .order_id = ORDER};
}

/* What the plugin does with a decision asking for the time-out: schedules it, keeps its id. */
static void scheduled(notification_decision_t *d, const char *id) {
  if (d->schedule_expiry) snprintf(d->next.expiry_id, sizeof d->next.expiry_id, "%s", id);
}

/* ---- every sequence against a model ------------------------------------------------------ */

enum { M_ORDER, M_CUSTOMER, M_ORDER_OTHER, M_CUSTOMER_OTHER, M_DONE, M_FAILED, M_EXPIRY, M_KINDS };
static const char *const kind_letters = "OCocDFX";

static notification_input_t input_of(int k) {
  switch (k) {
  case M_ORDER: return order_in(CUSTOMER);
  case M_CUSTOMER: return customer_in("+8613800138000");
  case M_ORDER_OTHER: return order_in(OTHER_CUSTOMER);
  case M_CUSTOMER_OTHER: return customer_in("+8613900139000");
  case M_DONE: return outcome_in(1);
  case M_FAILED: return outcome_in(0);
  default: return expiry_in();
  }
}

/* What the process manager should have done, step by step. */
typedef struct {
  int order_known;     /* an order taken (its customer: customer_of) */
  int order_other;     /* ...with the other customer */
  int customer_known;  /* a customer taken */
  int customer_phone2; /* ...with the other phone */
  int calling, ended, sent, expired;
  int expiry; /* a time-out scheduled and not cancelled */
} model_t;

/* What a decision must show. */
typedef struct {
  int call, sent, finish, change, schedule, unschedule;
} want_t;

/* Steps the model; says what the decision must show. */
static void model_step(model_t *m, int k, want_t *w) {
  memset(w, 0, sizeof *w);
  int *want_call = &w->call, *want_sent = &w->sent, *want_finish = &w->finish, *want_change = &w->change;
  int waiting = !m->calling && !m->ended;
  switch (k) {
  case M_ORDER:
  case M_ORDER_OTHER:
    /* taken only while waiting, first, and only when its customer is the one known */
    if (waiting && !m->order_known && !(m->customer_known && k == M_ORDER_OTHER)) {
      m->order_known = 1;
      m->order_other = k == M_ORDER_OTHER;
      *want_change = 1;
    }
    break;
  case M_CUSTOMER:
  case M_CUSTOMER_OTHER:
    /* the customer is CUSTOMER: never the other order's */
    if (waiting && !m->customer_known && !(m->order_known && m->order_other)) {
      m->customer_known = 1;
      m->customer_phone2 = k == M_CUSTOMER_OTHER;
      *want_change = 1;
    }
    break;
  case M_EXPIRY:
    /* expires what still waits, whatever it knows; later it is too late */
    if (waiting) {
      m->ended = m->expired = 1;
      *want_finish = *want_change = 1;
    }
    break;
  default:
    if (m->calling) {
      m->calling = 0;
      m->ended = 1;
      m->sent = k == M_DONE;
      *want_sent = m->sent;
      *want_finish = *want_change = 1;
    }
    break;
  }
  waiting = !m->calling && !m->ended;
  if (waiting && m->order_known && m->customer_known) {
    m->calling = 1;
    *want_call = 1;
    /* the time-out it waited with is cancelled */
    w->unschedule = m->expiry;
    m->expiry = 0;
  } else if (waiting && (m->order_known || m->customer_known) && !m->expiry) {
    m->expiry = w->schedule = 1;
  }
}

static int run_sequence(const int *seq, int n, char *trace, size_t tcap) {
  notification_state_t s;
  notification_state_init(&s);
  model_t m = {0};
  int calls = 0, sents = 0, finishes = 0, schedules = 0;
  char expiry[NOTIFICATION_ID_MAX + 1] = "";
  for (int i = 0; i < n; i++) {
    notification_input_t in = input_of(seq[i]);
    notification_decision_t d;
    assert_int_equal(notification_decide(&s, &in, &d), 0);
    want_t w;
    model_step(&m, seq[i], &w);
    snprintf(trace + i, tcap - (size_t)i, "%c", kind_letters[seq[i]]);
    if (d.call != w.call || d.sent != w.sent || d.finish != w.finish || d.changed != w.change ||
        d.schedule_expiry != w.schedule || (d.unschedule[0] != '\0') != w.unschedule) {
      print_error("sequence %s: step %d: call %d/%d sent %d/%d finish %d/%d changed %d/%d schedule %d/%d "
                  "unschedule '%s'/%d (%s)\n",
                  trace, i, d.call, w.call, d.sent, w.sent, d.finish, w.finish, d.changed, w.change,
                  d.schedule_expiry, w.schedule, d.unschedule, w.unschedule, d.why);
      return -1;
    }
    /* the time-out cancelled is the one scheduled; a calling state keeps none */
    if ((w.unschedule && strcmp(d.unschedule, expiry) != 0) || (d.call && d.next.expiry_id[0] != '\0')) {
      print_error("sequence %s: step %d: cancels '%s' of '%s', keeps '%s'\n", trace, i, d.unschedule, expiry,
                  d.next.expiry_id);
      return -1;
    }
    /* an expiry says so, and ends in expired: the only way to it */
    if ((d.next.phase == NOTIFICATION_EXPIRED) != m.expired ||
        (seq[i] == M_EXPIRY && d.changed && d.note != NOTIFICATION_NOTE_EXPIRED)) {
      print_error("sequence %s: step %d: phase %s, note %d\n", trace, i,
                  notification_phase_name(d.next.phase), (int)d.note);
      return -1;
    }
    if (d.schedule_expiry) snprintf(expiry, sizeof expiry, "e0000000-0000-4000-8000-%012d", i);
    scheduled(&d, expiry);
    schedules += d.schedule_expiry;
    /* nothing happens without saying why, and nothing said when something happens but a failure */
    if (!d.changed && d.note == NOTIFICATION_NOTE_NONE) {
      print_error("sequence %s: step %d: ignored without a note\n", trace, i);
      return -1;
    }
    if (d.call) {
      /* the first facts are what the SMS uses */
      if (strcmp(d.key, "sms:order:" ORDER) != 0 ||
          strcmp(d.next.customer_id, m.order_other ? OTHER_CUSTOMER : CUSTOMER) != 0 ||
          strcmp(d.next.phone, m.customer_phone2 ? "+8613900139000" : "+8613800138000") != 0) {
        print_error("sequence %s: call with key %s customer %s phone %s\n", trace, d.key, d.next.customer_id,
                    d.next.phone);
        return -1;
      }
    }
    calls += d.call;
    sents += d.sent;
    finishes += d.finish;
    s = d.next;
  }
  if (calls > 1 || sents > 1 || finishes > 1 || sents > calls || schedules > 1 || (m.expired && calls > 0)) {
    print_error("sequence %s: %d calls, %d sent, %d finished, %d time-outs\n", trace, calls, sents, finishes,
                schedules);
    return -1;
  }
  return 0;
}

static void test_every_sequence(void **state) {
  (void)state;
  enum { MAX_LEN = 6 };
  int seq[MAX_LEN];
  char trace[MAX_LEN + 1];
  long sequences = 0, failures = 0;
  for (int n = 1; n <= MAX_LEN; n++) {
    long total = 1;
    for (int i = 0; i < n; i++) total *= M_KINDS;
    for (long code = 0; code < total; code++) {
      long c = code;
      for (int i = 0; i < n; i++) {
        seq[i] = (int)(c % M_KINDS);
        c /= M_KINDS;
      }
      sequences++;
      if (run_sequence(seq, n, trace, sizeof trace) != 0 && ++failures > 5) fail_msg("too many failures");
    }
  }
  assert_int_equal(failures, 0);
  assert_int_equal(sequences, 7 + 49 + 343 + 2401 + 16807 + 117649);
}

/* Both orders of arrival, each fact twice: one call, at the second fact. */
static void test_either_first_either_twice(void **state) {
  (void)state;
  static const int orders[][4] = {{M_ORDER, M_ORDER, M_CUSTOMER, M_CUSTOMER},
                                  {M_CUSTOMER, M_CUSTOMER, M_ORDER, M_ORDER},
                                  {M_ORDER, M_CUSTOMER, M_ORDER, M_CUSTOMER},
                                  {M_CUSTOMER, M_ORDER, M_CUSTOMER, M_ORDER}};
  static const int call_at[] = {2, 2, 1, 1};
  for (size_t o = 0; o < 4; o++) {
    notification_state_t s;
    notification_state_init(&s);
    for (int i = 0; i < 4; i++) {
      notification_input_t in = input_of(orders[o][i]);
      notification_decision_t d;
      assert_int_equal(notification_decide(&s, &in, &d), 0);
      assert_int_equal(d.call, i == call_at[o]);
      if (!d.changed) assert_int_equal(d.note, NOTIFICATION_NOTE_DUPLICATE);
      s = d.next;
    }
    assert_int_equal(s.phase, NOTIFICATION_CALLING);
    assert_string_equal(s.text, "Ada, we received your order SO-1.");
  }
}

/* ---- one by one -------------------------------------------------------------------------- */

/* Order first (its time-out scheduled), then the customer: calling, the time-out cancelled. */
static notification_state_t calling_state(void) {
  notification_decision_t d;
  notification_input_t o = order_in(CUSTOMER), c = customer_in("+8613800138000");
  assert_int_equal(notification_decide(NULL, &o, &d), 0);
  assert_true(d.schedule_expiry);
  scheduled(&d, EXPIRY);
  notification_state_t s = d.next;
  assert_int_equal(notification_decide(&s, &c, &d), 0);
  assert_true(d.call);
  assert_false(d.schedule_expiry);
  assert_string_equal(d.unschedule, EXPIRY);
  assert_string_equal(d.next.expiry_id, "");
  return d.next;
}

/* Waiting asks for one time-out, whichever fact came first, and never again. */
static void test_waiting_asks_for_one_expiry(void **state) {
  (void)state;
  notification_input_t first[] = {order_in(CUSTOMER), customer_in("+1")};
  for (size_t i = 0; i < 2; i++) {
    notification_decision_t d;
    assert_int_equal(notification_decide(NULL, &first[i], &d), 0);
    assert_true(d.schedule_expiry);
    assert_string_equal(d.unschedule, "");
    scheduled(&d, EXPIRY);
    notification_state_t s = d.next;
    assert_int_equal(notification_decide(&s, &first[i], &d), 0); /* a copy */
    assert_false(d.schedule_expiry || d.changed);
    assert_string_equal(d.next.expiry_id, EXPIRY);
  }
  /* a waiting state saved before time-outs existed gets one at its next message, a copy too */
  notification_decision_t d;
  notification_input_t o = order_in(CUSTOMER);
  assert_int_equal(notification_decide(NULL, &o, &d), 0);
  notification_state_t s = d.next;
  assert_int_equal(notification_decide(&s, &o, &d), 0);
  assert_true(d.schedule_expiry);
  /* nothing known, nothing to wait for: an unexpected outcome on a new state asks for none */
  notification_input_t done = outcome_in(1);
  assert_int_equal(notification_decide(NULL, &done, &d), 0);
  assert_false(d.schedule_expiry);
}

/* The time-out while waiting: expired, no SMS, ever. */
static void test_expiry_while_waiting(void **state) {
  (void)state;
  notification_decision_t d;
  notification_input_t o = order_in(CUSTOMER), x = expiry_in();
  assert_int_equal(notification_decide(NULL, &o, &d), 0);
  scheduled(&d, EXPIRY);
  notification_state_t s = d.next;
  assert_int_equal(notification_decide(&s, &x, &d), 0);
  assert_true(d.finish && d.changed);
  assert_false(d.call || d.sent || d.schedule_expiry);
  assert_string_equal(d.unschedule, "");
  assert_int_equal(d.next.phase, NOTIFICATION_EXPIRED);
  assert_int_equal(d.next.decided_at_ms, 9000);
  assert_int_equal(d.note, NOTIFICATION_NOTE_EXPIRED);
  assert_non_null(strstr(d.why, ORDER));
  assert_non_null(strstr(d.why, "customer"));
  s = d.next;
  /* the customer coming late, the time-out again, an outcome: nothing */
  notification_input_t late[] = {customer_in("+1"), x, outcome_in(1)};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(notification_decide(&s, &late[i], &d), 0);
    assert_false(d.call || d.changed || d.finish || d.sent || d.schedule_expiry);
    assert_int_equal(d.next.phase, NOTIFICATION_EXPIRED);
  }
}

/* A time-out that had left before the call cancelled it: ignored while calling and after. */
static void test_late_expiry_is_ignored(void **state) {
  (void)state;
  notification_state_t s = calling_state();
  notification_input_t x = expiry_in(), done = outcome_in(1);
  notification_decision_t d;
  assert_int_equal(notification_decide(&s, &x, &d), 0);
  assert_false(d.changed || d.finish || d.call || d.schedule_expiry);
  assert_int_equal(d.note, NOTIFICATION_NOTE_DUPLICATE);
  assert_int_equal(d.next.phase, NOTIFICATION_CALLING);
  assert_int_equal(notification_decide(&s, &done, &d), 0);
  s = d.next;
  assert_int_equal(notification_decide(&s, &x, &d), 0);
  assert_false(d.changed || d.finish);
  assert_int_equal(d.note, NOTIFICATION_NOTE_DUPLICATE);
  assert_int_equal(d.next.phase, NOTIFICATION_SENT);
}

static void test_call_done_sends_once(void **state) {
  (void)state;
  notification_state_t s = calling_state();
  notification_input_t done = outcome_in(1);
  notification_decision_t d;
  assert_int_equal(notification_decide(&s, &done, &d), 0);
  assert_true(d.sent && d.finish && d.changed);
  assert_int_equal(d.next.phase, NOTIFICATION_SENT);
  assert_string_equal(d.next.provider_message_id, "p-1");
  assert_int_equal(d.next.attempts, 2);
  assert_int_equal(d.next.decided_at_ms, 5000);
  s = d.next;
  assert_int_equal(notification_decide(&s, &done, &d), 0);
  assert_false(d.sent || d.finish || d.changed || d.call);
  assert_int_equal(d.note, NOTIFICATION_NOTE_DUPLICATE);
  notification_input_t failed = outcome_in(0);
  assert_int_equal(notification_decide(&s, &failed, &d), 0);
  assert_int_equal(d.note, NOTIFICATION_NOTE_UNEXPECTED);
  assert_false(d.changed);
}

static void test_call_failed_ends_without_sms(void **state) {
  (void)state;
  notification_state_t s = calling_state();
  notification_input_t failed = outcome_in(0);
  notification_decision_t d;
  assert_int_equal(notification_decide(&s, &failed, &d), 0);
  assert_true(d.finish && d.changed);
  assert_false(d.sent);
  assert_int_equal(d.note, NOTIFICATION_NOTE_FAILED);
  assert_non_null(strstr(d.why, "HTTP 400"));
  assert_int_equal(d.next.phase, NOTIFICATION_FAILED);
}

static void test_outcome_while_waiting_is_unexpected(void **state) {
  (void)state;
  notification_input_t done = outcome_in(1);
  notification_decision_t d;
  assert_int_equal(notification_decide(NULL, &done, &d), 0);
  assert_int_equal(d.note, NOTIFICATION_NOTE_UNEXPECTED);
  assert_false(d.changed || d.sent);
}

static void test_conflicting_details_keep_the_first(void **state) {
  (void)state;
  notification_decision_t d;
  notification_input_t o = order_in(CUSTOMER), o2 = order_in(OTHER_CUSTOMER);
  assert_int_equal(notification_decide(NULL, &o, &d), 0);
  notification_state_t s = d.next;
  assert_int_equal(notification_decide(&s, &o2, &d), 0);
  assert_int_equal(d.note, NOTIFICATION_NOTE_CONFLICT);
  assert_non_null(strstr(d.why, OTHER_CUSTOMER));
  assert_string_equal(d.next.customer_id, CUSTOMER);
  /* a customer known first: an order of another customer is not its */
  notification_input_t c = customer_in("+1");
  assert_int_equal(notification_decide(NULL, &c, &d), 0);
  s = d.next;
  assert_int_equal(notification_decide(&s, &o2, &d), 0);
  assert_int_equal(d.note, NOTIFICATION_NOTE_CONFLICT);
  assert_false(d.changed || d.call);
  /* the customer again with another phone: the first kept */
  notification_input_t c2 = customer_in("+2");
  assert_int_equal(notification_decide(&s, &c2, &d), 0);
  assert_int_equal(d.note, NOTIFICATION_NOTE_CONFLICT);
  assert_string_equal(d.next.phone, "+1");
}

static void test_order_already_sent_finishes(void **state) {
  (void)state;
  notification_input_t o = order_in(CUSTOMER);
  o.already = NOTIFICATION_SENT;
  notification_decision_t d;
  assert_int_equal(notification_decide(NULL, &o, &d), 0);
  assert_true(d.finish && d.changed);
  assert_false(d.call || d.sent);
  assert_int_equal(d.next.phase, NOTIFICATION_SENT);
  assert_int_equal(d.note, NOTIFICATION_NOTE_DUPLICATE);
  /* the customer after it changes nothing */
  notification_state_t s = d.next;
  notification_input_t c = customer_in("+1");
  assert_int_equal(notification_decide(&s, &c, &d), 0);
  assert_false(d.call || d.changed);
}

/* Failed or expired before: finished as such, no call, no time-out. */
static void test_order_already_failed_or_expired_finishes(void **state) {
  (void)state;
  static const notification_phase_t ends[] = {NOTIFICATION_FAILED, NOTIFICATION_EXPIRED};
  for (size_t i = 0; i < 2; i++) {
    notification_input_t o = order_in(CUSTOMER);
    o.already = ends[i];
    notification_decision_t d;
    assert_int_equal(notification_decide(NULL, &o, &d), 0);
    assert_true(d.finish && d.changed);
    assert_false(d.call || d.sent || d.schedule_expiry);
    assert_int_equal(d.next.phase, ends[i]);
    assert_int_equal(d.note, NOTIFICATION_NOTE_DUPLICATE);
  }
}

static void test_provider_id_ok(void **state) {
  (void)state;
  assert_true(notification_provider_id_ok("sms-1"));
  assert_false(notification_provider_id_ok(""));
  assert_false(notification_provider_id_ok(NULL));
  char id[4 * 130 + 1];
  /* 128 code points of 4 bytes: 512 bytes, the limit */
  for (int i = 0; i < 128; i++) memcpy(id + 4 * i, "\xf0\x9f\x98\x80", 4);
  id[512] = '\0';
  assert_true(notification_provider_id_ok(id));
  /* 129 of 1 byte: too long */
  memset(id, 'a', 129);
  id[129] = '\0';
  assert_false(notification_provider_id_ok(id));
  id[128] = '\0';
  assert_true(notification_provider_id_ok(id));
  /* not UTF-8: a lone continuation, a cut sequence, overlong, a surrogate, past U+10FFFF */
  assert_false(notification_provider_id_ok("a\x80"));
  assert_false(notification_provider_id_ok("\xe4\xb8"));
  assert_false(notification_provider_id_ok("\xc0\xaf"));
  assert_false(notification_provider_id_ok("\xed\xa0\x80"));
  assert_false(notification_provider_id_ok("\xf4\x90\x80\x80"));
  assert_true(notification_provider_id_ok("\xe4\xb8\xad-1"));
}

static void test_invalid_inputs(void **state) {
  (void)state;
  notification_decision_t d;
  memset(&d, 0x5a, sizeof d);
  notification_input_t o = order_in(NULL);
  assert_int_equal(notification_decide(NULL, &o, &d), CTXD_EINVAL);
  assert_int_equal(((unsigned char *)&d)[0], 0x5a); /* untouched */
  notification_input_t c = customer_in("+1");
  c.customer_id = "";
  assert_int_equal(notification_decide(NULL, &c, &d), CTXD_EINVAL);
  notification_input_t bad = {.kind = (notification_input_kind_t)99};
  assert_int_equal(notification_decide(NULL, &bad, &d), CTXD_EINVAL);
  assert_int_equal(notification_decide(NULL, NULL, &d), CTXD_EINVAL);
}

static void test_key_and_sms_id(void **state) {
  (void)state;
  char key[NOTIFICATION_KEY_MAX + 1], a[NOTIFICATION_ID_MAX + 1], b[NOTIFICATION_ID_MAX + 1];
  notification_call_key(ORDER, key);
  assert_string_equal(key, "sms:order:" ORDER);
  notification_sms_id(ORDER, a);
  notification_sms_id(ORDER, b);
  assert_string_equal(a, b);
  assert_int_equal(strlen(a), 36);
  assert_int_equal(a[14], '8'); /* version 8 */
  assert_true(strchr("89ab", a[19]) != NULL);
  notification_sms_id("0a000000-0000-4000-8000-000000000002", b);
  assert_string_not_equal(a, b);
}

static void test_payload(void **state) {
  (void)state;
  notification_state_t s = calling_state();
  char *p = notification_call_payload(&s);
  assert_non_null(p);
  json_t *j = json_loads(p, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "to")), "+8613800138000");
  assert_string_equal(json_string_value(json_object_get(j, "text")), "Ada, we received your order SO-1.");
  assert_string_equal(json_string_value(json_object_get(j, "orderId")), ORDER);
  assert_string_equal(json_string_value(json_object_get(j, "customerId")), CUSTOMER);
  assert_string_equal(json_string_value(json_object_get(j, "smsId")), s.sms_id);
  json_decref(j);
  free(p);
}

static void test_state_json_round_trip(void **state) {
  (void)state;
  notification_state_t s = calling_state(), back;
  s.attempts = 3;
  snprintf(s.expiry_id, sizeof s.expiry_id, "%s", EXPIRY);
  s.decided_at_ms = 1234567890123LL;
  json_t *j = notification_state_to_json(&s);
  assert_non_null(j);
  assert_int_equal(notification_state_from_json(j, &back), 0);
  assert_memory_equal(&s, &back, sizeof s);
  /* saved before time-outs existed: no expiryId, none */
  json_t *copy = json_deep_copy(j);
  json_object_del(copy, "expiryId");
  assert_int_equal(notification_state_from_json(copy, &back), 0);
  assert_string_equal(back.expiry_id, "");
  json_decref(copy);
  /* expired reads back */
  s.phase = NOTIFICATION_EXPIRED;
  copy = notification_state_to_json(&s);
  assert_int_equal(notification_state_from_json(copy, &back), 0);
  assert_int_equal(back.phase, NOTIFICATION_EXPIRED);
  json_decref(copy);
  /* a member missing, a bad phase, a string too long: refused */
  copy = json_deep_copy(j);
  json_object_del(copy, "phone");
  assert_int_equal(notification_state_from_json(copy, &back), CTXD_EDECODE);
  json_decref(copy);
  copy = json_deep_copy(j);
  json_object_set_new(copy, "phase", json_string("lost"));
  assert_int_equal(notification_state_from_json(copy, &back), CTXD_EDECODE);
  json_decref(copy);
  char long_id[64];
  memset(long_id, 'x', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  copy = json_deep_copy(j);
  json_object_set_new(copy, "orderId", json_string(long_id));
  assert_int_equal(notification_state_from_json(copy, &back), CTXD_EDECODE);
  json_decref(copy);
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_sequence),
      cmocka_unit_test(test_either_first_either_twice),
      cmocka_unit_test(test_call_done_sends_once),
      cmocka_unit_test(test_call_failed_ends_without_sms),
      cmocka_unit_test(test_outcome_while_waiting_is_unexpected),
      cmocka_unit_test(test_conflicting_details_keep_the_first),
      cmocka_unit_test(test_order_already_sent_finishes),
      cmocka_unit_test(test_order_already_failed_or_expired_finishes),
      cmocka_unit_test(test_waiting_asks_for_one_expiry),
      cmocka_unit_test(test_expiry_while_waiting),
      cmocka_unit_test(test_late_expiry_is_ignored),
      cmocka_unit_test(test_provider_id_ok),
      cmocka_unit_test(test_invalid_inputs),
      cmocka_unit_test(test_key_and_sms_id),
      cmocka_unit_test(test_payload),
      cmocka_unit_test(test_state_json_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
