/* Notification against the real servers and the fake SMS provider (tests/fakeprovider): the
 * test plays Ordering and Customers (OrderCreated, CustomerCreated, published to their
 * exchanges) and a customer asking for their SMS (ListCustomerSms, request/response).
 *
 * Every case ends in the same counts, each waited for, never slept on: the provider holds
 * exactly one SMS per order (GET /sms), reached with its order's idempotency key; exactly one
 * SmsSent per order reached a queue bound to its exchange; the read model lists it; nothing
 * went to _error. Orders of arrival: order first, customer first, each twice, and many
 * orders at once on several workers. The provider fails (500) twice first; it accepts and
 * drops the connection; it accepts and holds its 200 while the host is killed -9 (the
 * provider took the SMS, the host never committed the outcome): the next host calls again
 * with the same key, the provider deduplicates, one SmsSent. And the endings without an SMS:
 * a clear refusal (404), attempts used up, an order that comes again after its process
 * manager and call were cleaned up, an outcome no process manager asked for.
 *
 * Time-outs (wait_timeout_s 2): an order whose customer never comes expires when its
 * scheduled SmsWaitExpired is handled (no call, no SMS, the customer coming later starts
 * nothing); an order whose customer is handled in time but after its time-out already left
 * (the customer's handler held on the customer's row until the relay published it) is sent,
 * and the late time-out is ignored. Every other order-first case checks that the time-out
 * was cancelled. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define ORDERING "Ctxd.Ordering.Contracts.v1:OrderCreated"
#define CUSTOMERS "Ctxd.Customers.Contracts.v1:CustomerCreated"
#define SMS_SENT "Ctxd.Notification.Contracts.v1:SmsSent"
#define LIST "Ctxd.Notification.Contracts.v1:ListCustomerSms"

/* The test's side: the fake provider, the SmsSent queue, the reply queue, what was sent. */
typedef struct {
  ctxt_proc_t provider;
  int port;
  char sent_queue[96], reply_queue[96];
  int seq;      /* messages published to the context */
  int orders;   /* orders whose call ends: one CallCompleted each for the endpoint */
  int expiries; /* time-outs that reach the endpoint */
} side_t;

static side_t side;

/* The provider's messages with key, and the POSTs that carried it (hits); 0 when none. */
static long provider_hits(const char *key) {
  json_t *j = ctxt_fakeprovider_list(side.port);
  size_t i;
  json_t *m;
  long hits = 0;
  json_array_foreach(json_object_get(j, "messages"), i, m) {
    if (strcmp(json_string_value(json_object_get(m, "key")), key) == 0)
      hits = (long)json_integer_value(json_object_get(m, "hits"));
  }
  json_decref(j);
  return hits;
}

static long provider_count(void) {
  json_t *j = ctxt_fakeprovider_list(side.port);
  long n = (long)json_array_size(json_object_get(j, "messages"));
  json_decref(j);
  return n;
}

/* Waits until the provider logged `hits` POSTs with key (its stderr line for each). */
static void provider_wait(const char *key, long hits) {
  char line[128];
  snprintf(line, sizeof line, "fakeprovider: POST /sms key %s", key);
  int64_t until = ctxt_now_ms() + CTXT_EFFECT_MS;
  for (;;) {
    long seen = 0;
    for (const char *p = side.provider.out; p != NULL && (p = strstr(p, line)) != NULL; p += strlen(line))
      seen++;
    if (seen >= hits) return;
    int64_t left = until - ctxt_now_ms();
    if (left <= 0 || !ctxt_proc_wait_output(&side.provider, line, (int)left))
      fail_msg("provider: key %s POSTed %ld times, want %ld", key, seen, hits);
  }
}

static void declare_queue(ctxt_world_t *w, const char *queue, const char *exchange) {
  amqp_exchange_declare(w->amqp, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  amqp_queue_declare(w->amqp, 1, amqp_cstring_bytes(queue), 0, 0, 0, 1, amqp_empty_table);
  amqp_queue_bind(w->amqp, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
}

/* How the host runs: the plugin's settings that differ between cases. */
typedef struct {
  int workers;
  int backoff_ms;     /* 0: 200 */
  int max_attempts;   /* 0: 5 */
  int timeout_ms;     /* 0: 2000 */
  const char *path;   /* 0: "/sms" */
  int retention_s;    /* not 0: finished sagas and calls are cleaned up after it, every second */
  int wait_timeout_s; /* 0: the plugin's default (a day) */
} host_opts_t;

/* The host with the notification plugin on the world's endpoint, talking to the provider.
 * Timings are short so the test runs fast: the relay sweeps every 100 ms, executors look
 * for calls every 50 ms, a POST may take 2 s, a retry waits backoff_ms (doubled each time). */
static void start_host_opts(ctxt_world_t *w, host_opts_t o) {
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"notification\", \"settings\": {\"endpoint\": \"%s\", "
           "\"provider_url\": \"http://127.0.0.1:%d%s\", \"call_timeout_ms\": %d, \"backoff_ms\": %d, "
           "\"max_attempts\": %d, \"wait_timeout_s\": %d}}]",
           w->endpoint, side.port, o.path ? o.path : "/sms", o.timeout_ms ? o.timeout_ms : 2000,
           o.backoff_ms ? o.backoff_ms : 200, o.max_attempts ? o.max_attempts : 5,
           o.wait_timeout_s ? o.wait_timeout_s : 86400);
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": %d", o.workers);
  int n = snprintf(w->host_settings, sizeof w->host_settings,
                   ", \"outbox\": {\"sweep_interval_ms\": 100, \"sweep_grace_ms\": 500}, "
                   "\"calls\": {\"poll_interval_ms\": 50");
  if (o.retention_s)
    snprintf(w->host_settings + n, sizeof w->host_settings - (size_t)n,
             ", \"retention_s\": %d}, \"sagas\": {\"retention_s\": %d}, \"cleanup_interval_s\": 1",
             o.retention_s, o.retention_s);
  else
    snprintf(w->host_settings + n, sizeof w->host_settings - (size_t)n, "}");
  ctxt_host_start(w, NULL);
}

static void start_host(ctxt_world_t *w, int workers) {
  start_host_opts(w, (host_opts_t){.workers = workers});
}

static int setup(void **state) {
  ctxt_world_setup(state);
  ctxt_world_t *w = *state;
  memset(&side, 0, sizeof side);
  side.port = ctxt_fakeprovider_start(&side.provider);
  snprintf(side.sent_queue, sizeof side.sent_queue, "%s-sms-sent", w->endpoint);
  snprintf(side.reply_queue, sizeof side.reply_queue, "%s-reply", w->endpoint);
  declare_queue(w, side.sent_queue, SMS_SENT);
  declare_queue(w, side.reply_queue, side.reply_queue);
  return 0;
}

static int teardown(void **state) {
  ctxt_world_t *w = *state;
  amqp_queue_delete(w->amqp, 1, amqp_cstring_bytes(side.sent_queue), 0, 0);
  amqp_queue_delete(w->amqp, 1, amqp_cstring_bytes(side.reply_queue), 0, 0);
  ctxt_proc_signal(&side.provider, SIGTERM);
  ctxt_proc_wait_exit(&side.provider, 5000);
  ctxt_proc_free(&side.provider);
  return ctxt_world_teardown(state);
}

/* ---- what the test sends ------------------------------------------------------------------ */

static void order_id(char id[37], int n) { snprintf(id, 37, "0a000000-0000-4000-8000-%012d", n); }
static void customer_id(char id[37], int n) { snprintf(id, 37, "c0000000-0000-4000-8000-%012d", n); }
/* The idempotency key of order n's SMS. */
static void order_key(char key[64], int n) {
  char o[37];
  order_id(o, n);
  snprintf(key, 64, "sms:order:%s", o);
}

static void publish(ctxt_world_t *w, const char *type, const char *message) {
  char id[37];
  snprintf(id, sizeof id, "00000000-0000-4000-9000-%012d", side.seq++);
  ctxt_publish_type(w, type, id, message);
}

static void order_created(ctxt_world_t *w, int order, int customer) {
  char o[37], c[37], m[512];
  order_id(o, order);
  customer_id(c, customer);
  snprintf(m, sizeof m,
           "{\"orderId\":\"%s\",\"orderNumber\":\"SO-%d\",\"customerId\":\"%s\",\"totalAmountMinor\":4590,"
           "\"currency\":\"CNY\",\"createdAt\":\"2026-05-01T09:00:00Z\"}",
           o, order, c);
  publish(w, ORDERING, m);
}

static void customer_created(ctxt_world_t *w, int customer) {
  char c[37], m[512];
  customer_id(c, customer);
  snprintf(m, sizeof m,
           "{\"customerId\":\"%s\",\"name\":\"Customer %d\",\"phoneNumber\":\"+86138%08d\","
           "\"createdAt\":\"2026-05-01T09:00:00Z\"}",
           c, customer, customer);
  publish(w, CUSTOMERS, m);
}

/* Waits until every message published and every call's outcome was handled, and what they
 * published left the outbox. */
static void settle(ctxt_world_t *w) {
  char sql[256];
  long want = side.seq + side.orders + side.expiries;
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.inbox WHERE endpoint = '%s'", w->endpoint);
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, want, CTXT_EFFECT_MS), want);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.calls WHERE status = 'pending'", 0, CTXT_EFFECT_MS),
      0);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
}

/* The counts every case ends with: one SMS per order at the provider, each with its order's
 * key; one SmsSent per order; the read model lists them; nothing failed. */
static void assert_one_sms_per_order(ctxt_world_t *w, int first_order, int orders) {
  settle(w);
  assert_int_equal(provider_count(), orders);
  for (int i = 0; i < orders; i++) {
    char key[64];
    order_key(key, first_order + i);
    assert_true(provider_hits(key) >= 1);
  }
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, side.sent_queue, orders, CTXT_EFFECT_MS), orders);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, side.sent_queue), orders);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM notification.sms"), orders);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.sagas WHERE finished_at IS NULL"), 0);
  /* the time-outs of orders that came first were cancelled (or have left and were handled) */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.scheduled"), 0);
  char error_queue[96];
  snprintf(error_queue, sizeof error_queue, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, error_queue), 0);
}

/* Asks for customer's SMS and returns the reply's message (new reference). */
static json_t *list_sms(ctxt_world_t *w, int customer) {
  char c[37], body[1024];
  customer_id(c, customer);
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-9000-%012d\",\"requestId\":\"00000000-0000-4000-a000-%012d\","
           "\"responseAddress\":\"rabbitmq://localhost/%s\",\"messageType\":[\"urn:message:" LIST "\"],"
           "\"message\":{\"customerId\":\"%s\"}}",
           side.seq, side.seq, side.reply_queue, c);
  side.seq++;
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, side.reply_queue, 1, CTXT_EFFECT_MS), 1);
  static char reply[1 << 16];
  char hv[8];
  assert_int_equal(ctxt_amqp_get(w->amqp, side.reply_queue, reply, sizeof reply, NULL, hv, sizeof hv), 1);
  json_t *envelope = json_loads(reply, 0, NULL);
  assert_non_null(envelope);
  json_t *m = json_incref(json_object_get(envelope, "message"));
  json_decref(envelope);
  assert_non_null(m);
  return m;
}

/* ---- the cases ---------------------------------------------------------------------------- */

static void check_listed(ctxt_world_t *w, int customer, int order, long attempts) {
  json_t *l = list_sms(w, customer);
  char c[37], o[37], text[64];
  customer_id(c, customer);
  order_id(o, order);
  snprintf(text, sizeof text, "Customer %d, we received your order SO-%d.", customer, order);
  assert_string_equal(json_string_value(json_object_get(l, "CustomerId")), c);
  assert_int_equal(json_integer_value(json_object_get(l, "Total")), 1);
  json_t *m = json_array_get(json_object_get(l, "Messages"), 0);
  assert_string_equal(json_string_value(json_object_get(m, "OrderId")), o);
  assert_string_equal(json_string_value(json_object_get(m, "Text")), text);
  assert_string_equal(json_string_value(json_object_get(m, "ProviderMessageId")), "sms-1");
  json_decref(l);
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT attempts FROM notification.sms WHERE order_id = '%s'", o);
  assert_int_equal(ctxt_pg_long(w->pg, sql), attempts);
}

static void order_first_each_twice(void **state) {
  ctxt_world_t *w = *state;
  start_host(w, 1);
  side.orders = 1;
  order_created(w, 1, 1);
  order_created(w, 1, 1);
  customer_created(w, 1);
  customer_created(w, 1);
  assert_one_sms_per_order(w, 1, 1);
  /* a late copy of the order once the SMS was sent: still one */
  order_created(w, 1, 1);
  assert_one_sms_per_order(w, 1, 1);
  char key[64];
  order_key(key, 1);
  assert_int_equal(provider_hits(key), 1); /* one POST: the provider's dedup hides any other */
  check_listed(w, 1, 1, 1);
  ctxt_host_stop(w, SIGTERM);
}

static void customer_first_each_twice(void **state) {
  ctxt_world_t *w = *state;
  start_host(w, 1);
  side.orders = 1;
  customer_created(w, 2);
  customer_created(w, 2);
  order_created(w, 2, 2);
  order_created(w, 2, 2);
  assert_one_sms_per_order(w, 2, 1);
  char key[64];
  order_key(key, 2);
  assert_int_equal(provider_hits(key), 1);
  check_listed(w, 2, 2, 1);
  /* another customer has none */
  json_t *l = list_sms(w, 3);
  assert_int_equal(json_integer_value(json_object_get(l, "Total")), 0);
  assert_int_equal(json_array_size(json_object_get(l, "Messages")), 0);
  json_decref(l);
  ctxt_host_stop(w, SIGTERM);
}

/* Forty orders of twenty customers on four workers, each message twice, orders and
 * customers interleaved both ways: the customer's row orders them, none is missed. */
static void many_orders_at_once(void **state) {
  ctxt_world_t *w = *state;
  start_host(w, 4);
  enum { CUSTOMERS_N = 20 };
  side.orders = 2 * CUSTOMERS_N;
  for (int copy = 0; copy < 2; copy++) {
    for (int c = 0; c < CUSTOMERS_N; c++) {
      if (c % 2) customer_created(w, 100 + c);
      order_created(w, 100 + 2 * c, 100 + c);
      order_created(w, 101 + 2 * c, 100 + c);
      if (c % 2 == 0) customer_created(w, 100 + c);
    }
  }
  assert_one_sms_per_order(w, 100, 2 * CUSTOMERS_N);
  for (int i = 0; i < 2 * CUSTOMERS_N; i++) {
    char key[64];
    order_key(key, 100 + i);
    assert_int_equal(provider_hits(key), 1);
  }
  ctxt_host_stop(w, SIGTERM);
}

/* One order and its customer while the provider misbehaves as told (mode, count): one SMS
 * at the provider, `hits` POSTs with its key, `attempts` runs of the call. */
static void one_order_with_provider(ctxt_world_t *w, const char *mode, int count, int n, long hits,
                                    long attempts) {
  ctxt_fakeprovider_control(side.port, mode, count);
  start_host(w, 1);
  side.orders = 1;
  order_created(w, n, n);
  customer_created(w, n);
  assert_one_sms_per_order(w, n, 1);
  char key[64];
  order_key(key, n);
  assert_int_equal(provider_hits(key), hits);
  check_listed(w, n, n, attempts);
  ctxt_host_stop(w, SIGTERM);
}

/* The provider fails twice (500): the third attempt, with the same key, is the one. */
static void provider_fails_then_accepts(void **state) { one_order_with_provider(*state, "fail", 2, 4, 1, 3); }

/* The provider accepts, then drops the connection: the outcome is lost on the wire. The
 * call runs again with the same key; the provider answers it as a duplicate; one SmsSent. */
static void accepted_then_dropped(void **state) { one_order_with_provider(*state, "drop", 1, 5, 2, 2); }

/* The window of a crash after the provider accepted: the provider took the SMS and holds
 * its 200 (the call would be done), and the host is killed -9 before the answer came, so
 * before the outcome could be committed: the call is still pending in ctxd.calls. When its
 * claim ends the next host runs it again with the same key: the provider holds one SMS (two
 * hits), one SmsSent, two attempts on record. */
static void kill9_after_provider_accepted(void **state) {
  ctxt_world_t *w = *state;
  char reply[64];
  assert_int_equal(ctxt_http_request(side.port, "POST", "/control",
                                     "{\"mode\": \"hold\", \"count\": 1, \"ms\": 1500}", reply, sizeof reply),
                   200);
  start_host(w, 1);
  side.orders = 1;
  order_created(w, 6, 6);
  customer_created(w, 6);
  char key[64];
  order_key(key, 6);
  provider_wait(key, 1);
  ctxt_proc_signal(&w->host, SIGKILL);
  assert_true(ctxt_proc_wait_exit(&w->host, CTXT_EFFECT_MS));
  ctxt_proc_free(&w->host);
  /* accepted by the provider, not done here: no outcome, no SMS recorded */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.calls WHERE status = 'pending'"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM notification.sms"), 0);
  assert_int_equal(provider_hits(key), 1);
  ctxt_host_start(w, NULL);
  assert_one_sms_per_order(w, 6, 1);
  assert_int_equal(provider_hits(key), 2);
  check_listed(w, 6, 6, 2);
  ctxt_host_stop(w, SIGTERM);
}

/* The ends without an SMS: the call failed, its outcome on record, no SmsSent, nothing
 * listed, the process manager finished. */
static void assert_failed(ctxt_world_t *w, int order, int customer) {
  settle(w);
  char sql[200], o[37];
  order_id(o, order);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM notification.outcomes WHERE order_id = '%s' AND outcome = 'failed'", o);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.calls WHERE status = 'failed'"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM notification.sms"), 0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.sagas WHERE finished_at IS NULL"), 0);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, side.sent_queue), 0);
  json_t *l = list_sms(w, customer);
  assert_int_equal(json_integer_value(json_object_get(l, "Total")), 0);
  json_decref(l);
}

/* A clear refusal (404: the provider has no such path) is final at once: one POST. */
static void provider_refuses(void **state) {
  ctxt_world_t *w = *state;
  start_host_opts(w, (host_opts_t){.workers = 1, .path = "/nosuch"});
  side.orders = 1;
  order_created(w, 7, 7);
  customer_created(w, 7);
  assert_failed(w, 7, 7);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT attempts FROM ctxd.calls"), 1);
  ctxt_host_stop(w, SIGTERM);
}

/* A provider failing (500) more often than max_attempts allows: given up after them. */
static void attempts_used_up(void **state) {
  ctxt_world_t *w = *state;
  ctxt_fakeprovider_control(side.port, "fail", 10);
  start_host_opts(w, (host_opts_t){.workers = 1, .backoff_ms = 50, .max_attempts = 3});
  side.orders = 1;
  order_created(w, 8, 8);
  customer_created(w, 8);
  assert_failed(w, 8, 8);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT attempts FROM ctxd.calls"), 3);
  assert_int_equal(provider_count(), 0);
  ctxt_host_stop(w, SIGTERM);
}

static long provider_requests(void) {
  json_t *j = ctxt_fakeprovider_list(side.port);
  long n = (long)json_integer_value(json_object_get(j, "requests"));
  json_decref(j);
  return n;
}

/* One SMS failed (500 twice, max_attempts 2) and one sent; the runtime cleans up their
 * process managers and calls after their retention; both orders come once more: their
 * outcomes are on record, no POST more, no second SmsSent. */
static void orders_again_after_cleanup(void **state) {
  ctxt_world_t *w = *state;
  ctxt_fakeprovider_control(side.port, "fail", 2);
  start_host_opts(w, (host_opts_t){.workers = 1, .backoff_ms = 50, .max_attempts = 2, .retention_s = 1});
  side.orders = 1;
  order_created(w, 13, 13);
  customer_created(w, 13);
  settle(w);
  side.orders = 2;
  order_created(w, 9, 9);
  customer_created(w, 9);
  assert_one_sms_per_order(w, 9, 1);
  assert_int_equal(provider_requests(), 3);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.sagas", 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.calls", 0, CTXT_EFFECT_MS), 0);
  order_created(w, 13, 13);
  order_created(w, 9, 9);
  settle(w);
  /* new process managers, finished at once: one as failed, one as sent */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.sagas WHERE finished_at IS NOT NULL"), 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.calls"), 0);
  assert_int_equal(provider_requests(), 3);
  assert_one_sms_per_order(w, 9, 1);
  ctxt_host_stop(w, SIGTERM);
}

/* A CallCompleted no process manager asked for ends the order's instance as failed: the
 * order and its customer coming later start no SMS whose outcome could not be recorded. And
 * a copy of an order naming another customer queues nothing under that customer. */
static void outcome_without_process_manager(void **state) {
  ctxt_world_t *w = *state;
  start_host(w, 1);
  char o[37], body[1024];
  order_id(o, 10);
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-9000-%012d\",\"messageType\":[\"urn:message:Ctxd.Runtime.v1:"
           "CallCompleted\"],\"message\":{\"kind\":\"sms.send\",\"idempotencyKey\":\"sms:order:%s\","
           "\"status\":\"done\",\"attempts\":1,\"outcome\":{\"providerMessageId\":\"x\"}}}",
           side.seq++, o);
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
  customer_created(w, 10);
  order_created(w, 10, 10);
  order_created(w, 11, 11);
  order_created(w, 11, 12); /* a copy naming another customer */
  settle(w);
  assert_int_equal(provider_count(), 0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.calls"), 0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM notification.sms"), 0);
  char sql[200], c[37];
  customer_id(c, 12);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM notification.awaiting WHERE customer_id = '%s'", c);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 0);
  customer_id(c, 11);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM notification.awaiting WHERE customer_id = '%s'", c);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
  ctxt_host_stop(w, SIGTERM);
}

/* ---- time-outs --------------------------------------------------------------------------- */

/* The id of order n's time-out, as its process manager keeps it (its message id). */
static void expiry_id(ctxt_world_t *w, int order, char id[37]) {
  char o[37], sql[200];
  order_id(o, order);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM ctxd.sagas WHERE key = '%s' AND coalesce(state->>'expiryId', '') <> ''", o);
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, 1, CTXT_EFFECT_MS), 1);
  snprintf(sql, sizeof sql, "SELECT state->>'expiryId' FROM ctxd.sagas WHERE key = '%s'", o);
  PGresult *r = PQexec(w->pg, sql);
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  assert_int_equal(PQntuples(r), 1);
  snprintf(id, 37, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
}

/* Waits until the endpoint handled message `id` (its inbox row). */
static void wait_handled(ctxt_world_t *w, const char *id) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.inbox WHERE endpoint = '%s' AND message_id = '%s'",
           w->endpoint, id);
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, 1, CTXT_EFFECT_MS), 1);
}

/* Waits until the host logged `needle` (in what it logged so far, or later). */
static void host_wait(ctxt_world_t *w, const char *needle) {
  if (w->host.out != NULL && strstr(w->host.out, needle) != NULL) return;
  if (!ctxt_proc_wait_output(&w->host, needle, CTXT_EFFECT_MS))
    fail_msg("the host never logged '%s'", needle);
}

static long order_count(ctxt_world_t *w, int order, const char *fmt) {
  char o[37], sql[300];
  order_id(o, order);
  snprintf(sql, sizeof sql, fmt, o);
  return ctxt_pg_long(w->pg, sql);
}

/* An order whose customer never comes: its time-out, handled wait_timeout_s later, expires
 * it. No call, no SMS; the customer coming afterwards starts nothing. */
static void order_expires_without_customer(void **state) {
  ctxt_world_t *w = *state;
  start_host_opts(w, (host_opts_t){.workers = 1, .wait_timeout_s = 2});
  order_created(w, 20, 20);
  char id[37];
  expiry_id(w, 20, id);
  wait_handled(w, id);
  assert_int_equal(order_count(w, 20,
                               "SELECT count(*) FROM ctxd.sagas WHERE key = '%s' AND finished_at IS NOT NULL "
                               "AND state->>'phase' = 'expired'"),
                   1);
  /* not before its time: handled at least wait_timeout_s after the process manager began */
  assert_int_equal(order_count(w, 20,
                               "SELECT count(*) FROM ctxd.sagas s JOIN ctxd.inbox i ON i.message_id::text = "
                               "s.state->>'expiryId' WHERE s.key = '%s' AND i.received_at >= s.created_at + "
                               "interval '2 s'"),
                   1);
  assert_int_equal(
      order_count(w, 20,
                  "SELECT count(*) FROM notification.outcomes WHERE order_id = '%s' AND outcome = 'expired'"),
      1);
  assert_int_equal(order_count(w, 20, "SELECT count(*) FROM notification.awaiting WHERE order_id = '%s'"), 0);
  host_wait(w, "past its time-out: expired, no SMS");
  /* the customer, too late */
  customer_created(w, 20);
  side.expiries = 1;
  settle(w);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.calls"), 0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.scheduled"), 0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM notification.sms"), 0);
  assert_int_equal(provider_requests(), 0);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, side.sent_queue), 0);
  char error_queue[96];
  snprintf(error_queue, sizeof error_queue, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, error_queue), 0);
  ctxt_host_stop(w, SIGTERM);
}

static void pg_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
}

/* An order whose customer comes in time, but is handled only after the time-out left: the
 * test holds the customer's row (the lock every handler takes first) while the customer's
 * handler waits on it, until the relay has published the time-out. The customer's handler
 * goes first (it waited first; one worker): its cancel finds the time-out gone, the SMS is
 * asked for; the time-out, handled next, finds the order calling and is ignored. */
static void late_expiry_after_customer(void **state) {
  ctxt_world_t *w = *state;
  start_host_opts(w, (host_opts_t){.workers = 1, .wait_timeout_s = 2});
  side.orders = 1;
  order_created(w, 21, 21);
  char id[37], c[37], sql[200];
  expiry_id(w, 21, id);
  customer_id(c, 21);
  pg_ok(w->pg, "BEGIN");
  snprintf(sql, sizeof sql, "SELECT 1 FROM notification.customers WHERE customer_id = '%s' FOR UPDATE", c);
  pg_ok(w->pg, sql);
  customer_created(w, 21);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg,
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'",
                        1, CTXT_EFFECT_MS),
      1);
  /* the customer's handler waits before the time-out is due (else this case proves nothing) */
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.scheduled WHERE due_at > clock_timestamp()"), 1);
  /* due, moved and published: too late to cancel */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.scheduled", 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  pg_ok(w->pg, "ROLLBACK");
  char line[160];
  snprintf(line, sizeof line, "its time-out %s has already left", id);
  host_wait(w, line);
  wait_handled(w, id);
  char o[37];
  order_id(o, 21);
  snprintf(line, sizeof line, "time-out of order %s while ", o);
  host_wait(w, line);
  side.expiries = 1;
  assert_one_sms_per_order(w, 21, 1);
  assert_int_equal(
      order_count(w, 21,
                  "SELECT count(*) FROM notification.outcomes WHERE order_id = '%s' AND outcome = 'sent'"),
      1);
  assert_int_equal(
      order_count(w, 21, "SELECT count(*) FROM ctxd.sagas WHERE key = '%s' AND state->>'phase' = 'sent'"), 1);
  check_listed(w, 21, 21, 1);
  ctxt_host_stop(w, SIGTERM);
}

int main(void) {
  /* CTXT_TEST_FILTER=name runs one case (cmocka's pattern) */
  if (getenv("CTXT_TEST_FILTER") != NULL) cmocka_set_test_filter(getenv("CTXT_TEST_FILTER"));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(order_first_each_twice, setup, teardown),
      cmocka_unit_test_setup_teardown(customer_first_each_twice, setup, teardown),
      cmocka_unit_test_setup_teardown(many_orders_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(provider_fails_then_accepts, setup, teardown),
      cmocka_unit_test_setup_teardown(accepted_then_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(kill9_after_provider_accepted, setup, teardown),
      cmocka_unit_test_setup_teardown(provider_refuses, setup, teardown),
      cmocka_unit_test_setup_teardown(attempts_used_up, setup, teardown),
      cmocka_unit_test_setup_teardown(orders_again_after_cleanup, setup, teardown),
      cmocka_unit_test_setup_teardown(outcome_without_process_manager, setup, teardown),
      cmocka_unit_test_setup_teardown(order_expires_without_customer, setup, teardown),
      cmocka_unit_test_setup_teardown(late_expiry_after_customer, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
