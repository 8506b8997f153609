/* simulator: the systems around ctxd, for the demo (never in a production configuration).
 *
 * It plays the payment system (RefundRequested -> RefundCompleted or RefundFailed), the
 * order system (ReshipOrderRequested -> ReshipOrderCreated, then ReshipOrderShipped or
 * ReshipOrderFailed), DataCatalog (MaterialType updates), an auditor's tablet (inventory
 * audits), the compensation desks (apply, submit, approve) and the payment system's
 * callbacks of paying orders (open, pay, cancel) and the customer and order systems
 * (CustomerCreated, OrderCreated, for Notification's SMS), so that every context has
 * work and a new user sees it in the logs.
 *
 * An outside system does not share the host's inbox and outbox: start() starts one
 * thread with its own AMQP connection (sim.h), stop() ends and joins it. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

#define DEFAULT_AMQP_URL "amqp://guest:guest@127.0.0.1:5682"
#define WAIT_SLICE_MS 100 /* how soon the thread notices stop() while the socket is quiet */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 10000

#define S(field) offsetof(sim_settings_t, field)

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "amqp_url", "", S(amqp_url),
     "broker of the simulated systems; \"\": $CTXD_AMQP_URL, else " DEFAULT_AMQP_URL},
    {CTXD_CONF_STR, "payment_queue", "simulator-payment", S(queues[SIM_PAYMENT]),
     "the payment system's queue, bound to the RefundRequested exchange"},
    {CTXD_CONF_STR, "ordering_queue", "simulator-ordering", S(queues[SIM_ORDERING]),
     "the order system's queue, bound to the ReshipOrderRequested exchange"},
    {CTXD_CONF_INT, "prefetch", "100", S(prefetch),
     "requests answered at once (each is acknowledged once its answers are published)"},
    {CTXD_CONF_INT, "delay_min_ms", "200", S(delay_min_ms),
     "shortest delay of an answer, and between a feed's steps"},
    {CTXD_CONF_INT, "delay_max_ms", "1500", S(delay_max_ms),
     "longest delay of an answer, and between a feed's steps"},
    {CTXD_CONF_INT, "failure_percent", "20", S(failure_percent),
     "share of refunds and reships that fail, 0..100 (decided by the refund's or reship's id, so a request "
     "delivered twice gets the same answer)"},
    {CTXD_CONF_INT, "confirm_timeout_ms", "5000", S(confirm_timeout_ms),
     "how long a publish waits for the broker's confirm before the simulator reconnects and publishes it "
     "again"},
    {CTXD_CONF_BOOL, "feed_materials", "true", S(feeds[SIM_FEED_MATERIALS].on),
     "publish DataCatalog MaterialType updates (the first tick the whole catalog, then one material per "
     "tick)"},
    {CTXD_CONF_INT, "materials_interval_ms", "5000", S(feeds[SIM_FEED_MATERIALS].interval_ms),
     "time between two material updates"},
    {CTXD_CONF_BOOL, "feed_inventory", "true", S(feeds[SIM_FEED_INVENTORY].on),
     "send inventory audits (StartInventory, AddMeasurement per zone material, an edit, FinishInventory) to "
     "inventory_endpoint; their materials come from the materials feed"},
    {CTXD_CONF_INT, "inventory_interval_ms", "20000", S(feeds[SIM_FEED_INVENTORY].interval_ms),
     "time between two audits"},
    {CTXD_CONF_BOOL, "feed_compensation", "true", S(feeds[SIM_FEED_COMPENSATION].on),
     "send compensations (ApplyCompensation with each strategy in turn, SubmitCompensation, "
     "ApproveCompensation) "
     "to compensation_endpoint"},
    {CTXD_CONF_INT, "compensation_interval_ms", "15000", S(feeds[SIM_FEED_COMPENSATION].interval_ms),
     "time between two compensations"},
    {CTXD_CONF_BOOL, "feed_paying", "true", S(feeds[SIM_FEED_PAYING].on),
     "send paying orders to paying_endpoint, one flow per tick in turn: a partial payment, the rest and its "
     "callback again; an over-payment; a cancel after a partial payment, then a payment of the canceled "
     "order; a "
     "group-buy order; a free order's free pay"},
    {CTXD_CONF_INT, "paying_interval_ms", "10000", S(feeds[SIM_FEED_PAYING].interval_ms),
     "time between two paying flows"},
    {CTXD_CONF_STR, "paying_endpoint", "paying", S(paying_endpoint),
     "endpoint receiving OpenPayingOrder, PayOrder and CancelOrder"},
    {CTXD_CONF_BOOL, "feed_orders", "true", S(feeds[SIM_FEED_ORDERS].on),
     "publish customers and their orders (CustomerCreated and OrderCreated, in either order, every third "
     "order twice), for the notification context's SMS"},
    {CTXD_CONF_INT, "orders_interval_ms", "10000", S(feeds[SIM_FEED_ORDERS].interval_ms),
     "time between two orders"},
    {CTXD_CONF_STR, "inventory_endpoint", "inventory", S(inventory_endpoint),
     "endpoint receiving the audits"},
    {CTXD_CONF_STR, "compensation_endpoint", "compensation", S(compensation_endpoint),
     "endpoint receiving the compensation commands"},
    {CTXD_CONF_BOOL, "feed_agents", "true", S(feed_agents),
     "play the agent desk: define skill_group_id with agent_ids and rule_id sending it every case (round "
     "robin), "
     "put the agents on duty, and have them accept, process and complete the cases they are given"},
    {CTXD_CONF_STR, "case_endpoint", "case", S(case_endpoint),
     "endpoint receiving the agent desk's commands"},
    {CTXD_CONF_STR, "agent_desk_queue", "simulator-agent-desk", S(queues[SIM_AGENT_DESK]),
     "the agent desk's queue, bound to the CaseStatusChanged exchange"},
    {CTXD_CONF_STR, "skill_group_id", "5d1e0000-a6e0-4c1a-9000-000000000001", S(skill_group_id),
     "the agent desk's skill group (a UUID)"},
    {CTXD_CONF_STR, "rule_id", "5d1e0000-a6e0-4c1a-9000-000000000002", S(rule_id),
     "the distribution rule sending every case to skill_group_id (a UUID)"},
    {CTXD_CONF_STR, "agent_ids", "sim-agent-001,sim-agent-002", S(agent_ids),
     "the desk's agents, comma-separated (1..4 staff numbers of at most 64 characters)"},
    {CTXD_CONF_INT, "reject_back_percent", "20", S(reject_back_percent),
     "share of cases whose processed work is rejected back once before it is completed, 0..100 (decided by "
     "the "
     "case's id)"},
    {CTXD_CONF_STR, "templates_file", "", S(templates_file),
     "inventory templates in the format of config/inventory-templates.json, whose first template the audits "
     "use; \"\": a built-in copy of config/inventory-templates.json"},
    {0, NULL, NULL, 0, NULL},
};

/* Bounds of the integer settings, checked in init. */
static const struct {
  const char *name;
  size_t offset;
  int64_t min, max;
} ranges[] = {
    {"prefetch", S(prefetch), 1, 65535},
    {"delay_min_ms", S(delay_min_ms), 0, 3600000},
    {"delay_max_ms", S(delay_max_ms), 0, 3600000},
    {"failure_percent", S(failure_percent), 0, 100},
    {"confirm_timeout_ms", S(confirm_timeout_ms), 1, 600000},
    {"materials_interval_ms", S(feeds[SIM_FEED_MATERIALS].interval_ms), 1, 86400000},
    {"inventory_interval_ms", S(feeds[SIM_FEED_INVENTORY].interval_ms), 1, 86400000},
    {"compensation_interval_ms", S(feeds[SIM_FEED_COMPENSATION].interval_ms), 1, 86400000},
    {"paying_interval_ms", S(feeds[SIM_FEED_PAYING].interval_ms), 1, 86400000},
    {"orders_interval_ms", S(feeds[SIM_FEED_ORDERS].interval_ms), 1, 86400000},
    {"reject_back_percent", S(reject_back_percent), 0, 100},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- scheduling ----------------------------------------------------------------------------- */

int64_t sim_delay(const sim_t *sim) { return sim_random(sim->s->delay_min_ms, sim->s->delay_max_ms); }

int sim_later(sim_t *sim, int64_t due_ms, const sim_out_t *out, char *body, const char *fmt, ...) {
  if (body == NULL) {
    sim->api->log(sim->plugin, NULL, CTXD_LOG_ERROR, "%s not sent: it breaks its contract", out->type);
    return CTXD_EINVAL;
  }
  sim_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    free(body);
    return CTXD_ENOMEM;
  }
  job->due_ms = due_ms;
  job->feed = -1;
  job->type = out->type;
  job->body = body;
  job->delivery = out->delivery;
  job->ack = out->ack;
  snprintf(job->exchange, sizeof job->exchange, "%s", out->exchange != NULL ? out->exchange : out->type);
  if (out->id != NULL)
    snprintf(job->id, sizeof job->id, "%s", out->id);
  else
    sim_uuid_new(job->id);
  snprintf(job->correlation_id, sizeof job->correlation_id, "%s",
           out->correlation_id ? out->correlation_id : "");
  /* a message that names no conversation starts one */
  snprintf(job->conversation_id, sizeof job->conversation_id, "%s",
           out->conversation_id ? out->conversation_id : job->id);
  snprintf(job->initiator_id, sizeof job->initiator_id, "%s", out->initiator_id ? out->initiator_id : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(job->note, sizeof job->note, fmt, ap);
  va_end(ap);
  return sim_schedule_push(&sim->sched, job);
}

/* ---- the thread ------------------------------------------------------------------------------ */

static bool stopping(sim_t *sim) {
  pthread_mutex_lock(&sim->mu);
  bool s = sim->stopping;
  pthread_mutex_unlock(&sim->mu);
  return s;
}

/* Waits ms, or less when stop() is called meanwhile. */
static void nap(sim_t *sim, int64_t ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += (time_t)(ms / 1000);
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&sim->mu);
  while (!sim->stopping && pthread_cond_timedwait(&sim->cond, &sim->mu, &until) == 0) {
  }
  pthread_mutex_unlock(&sim->mu);
}

/* A feed's tick: schedules its messages, and the next tick. */
static void tick(sim_t *sim, sim_job_t *job, int64_t now) {
  int feed = job->feed, rc = sim_feed_tick(sim, feed, now);
  if (rc != 0)
    sim->api->log(sim->plugin, NULL, CTXD_LOG_WARN, "feed %s: %s", sim_feed_names[feed], ctxd_strerror(rc));
  int64_t interval = sim->s->feeds[feed].interval_ms;
  /* after an outage, go on from now rather than catch up with a burst */
  job->due_ms = job->due_ms + interval > now ? job->due_ms + interval : now + interval;
  job->seq = 0;
  if (sim_schedule_push(&sim->sched, job) != 0)
    sim->api->log(sim->plugin, NULL, CTXD_LOG_ERROR, "feed %s stopped: out of memory", sim_feed_names[feed]);
}

/* Publishes everything due (each waits for its confirm; requests arriving meanwhile are
 * scheduled). 0, or a negative code when the connection must be made again: the job
 * that failed stays scheduled. */
static int run_due(sim_t *sim) {
  int64_t now = sim_now_ms();
  int rc = 0;
  sim_job_t *job;
  while (rc == 0 && (job = sim_schedule_peek(&sim->sched)) != NULL && job->due_ms <= now && !stopping(sim)) {
    /* popped first: while it is published, new requests may schedule earlier answers */
    sim_schedule_pop(&sim->sched);
    if (job->feed >= 0) {
      tick(sim, job, now);
      continue;
    }
    rc = sim_bus_publish(sim, job);
    if (rc != 0) {
      sim_schedule_push(&sim->sched, job);
      break;
    }
    sim->api->log(sim->plugin, NULL, CTXD_LOG_INFO, "%s (%s %s)", job->note, job->type, job->id);
    if (job->ack) rc = sim_bus_ack(sim, job->delivery);
    sim_job_free(job);
  }
  return rc;
}

/* How long the socket may be waited on: until the next job, at most a slice. */
static int64_t idle_ms(const sim_t *sim) {
  const sim_job_t *next = sim_schedule_peek(&sim->sched);
  int64_t left = next != NULL ? next->due_ms - sim_now_ms() : WAIT_SLICE_MS;
  return left < 0 ? 0 : left > WAIT_SLICE_MS ? WAIT_SLICE_MS : left;
}

static void *run(void *arg) {
  sim_t *sim = arg;
  int64_t backoff = BACKOFF_MIN_MS, now = sim_now_ms();
  for (int f = 0; f < SIM_FEEDS; f++) {
    if (!sim->s->feeds[f].on) continue;
    sim_job_t *job = calloc(1, sizeof *job);
    if (job != NULL) {
      job->feed = f;
      job->due_ms = now + sim->s->feeds[f].interval_ms;
    }
    if (job == NULL || sim_schedule_push(&sim->sched, job) != 0)
      sim->api->log(sim->plugin, NULL, CTXD_LOG_ERROR, "feed %s not started: out of memory",
                    sim_feed_names[f]);
  }
  while (!stopping(sim)) {
    bool fresh = sim->conn == NULL;
    if (fresh && sim_bus_connect(sim) != 0) {
      nap(sim, backoff);
      backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
      continue;
    }
    backoff = BACKOFF_MIN_MS;
    /* after every connect: the case context may have lost nothing, or everything */
    if (fresh && sim->s->feed_agents && sim_desk_announce(sim, sim_now_ms()) != 0)
      sim->api->log(sim->plugin, NULL, CTXD_LOG_ERROR, "agent desk: not announced: out of memory");
    int rc = run_due(sim);
    if (rc == 0) rc = sim_bus_pump(sim, idle_ms(sim));
    if (rc != 0) {
      /* the broker hands the unacknowledged requests out again; their answers, scheduled
       * again, get the same message ids */
      sim_bus_close(sim, false);
      sim_schedule_drop_answers(&sim->sched);
      sim->api->log(sim->plugin, NULL, CTXD_LOG_WARN, "disconnected; connecting again");
    }
  }
  size_t unsent = 0;
  for (size_t i = 0; i < sim->sched.n; i++) unsent += sim->sched.items[i]->feed < 0;
  sim->api->log(sim->plugin, NULL, CTXD_LOG_INFO,
                "stopped with %zu messages not yet due (unanswered requests stay in their queues)", unsent);
  sim_bus_close(sim, true);
  sim_schedule_clear(&sim->sched);
  sim_desk_free(sim);
  return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void destroy(void *state) {
  sim_t *sim = state;
  pthread_cond_destroy(&sim->cond);
  pthread_mutex_destroy(&sim->mu);
  free(sim);
}

/* Refuses settings the simulator cannot run with, saying why. 0 or CTXD_ECONFIG. */
static int check_settings(const sim_t *sim) {
  const sim_settings_t *s = sim->s;
  char why[256] = "";
  for (size_t i = 0; i < COUNT(ranges) && !why[0]; i++) {
    int64_t v = *(const int64_t *)((const char *)s + ranges[i].offset);
    if (v < ranges[i].min || v > ranges[i].max)
      snprintf(why, sizeof why, "%s: %" PRId64 " is not in %" PRId64 "..%" PRId64, ranges[i].name, v,
               ranges[i].min, ranges[i].max);
  }
  if (!why[0] && s->delay_max_ms < s->delay_min_ms)
    snprintf(why, sizeof why, "delay_max_ms is less than delay_min_ms");
  /* one consumer per queue: a shared queue would hand requests to the wrong system */
  for (int i = 0; i < SIM_SYSTEMS && !why[0]; i++)
    for (int j = i + 1; j < SIM_SYSTEMS && !why[0]; j++)
      if (!s->queues[i][0] || strcmp(s->queues[i], s->queues[j]) == 0)
        snprintf(why, sizeof why, "payment_queue, ordering_queue and agent_desk_queue need three names");
  /* a job keeps its exchange's name in a fixed buffer */
  const struct {
    const char *name, *value;
  } endpoints[] = {{"inventory_endpoint", s->inventory_endpoint},
                   {"compensation_endpoint", s->compensation_endpoint},
                   {"paying_endpoint", s->paying_endpoint},
                   {"case_endpoint", s->case_endpoint}};
  for (size_t i = 0; i < COUNT(endpoints) && !why[0]; i++)
    if (!endpoints[i].value[0] || strlen(endpoints[i].value) >= sizeof((sim_job_t *)0)->exchange)
      snprintf(why, sizeof why, "%s: empty or longer than %zu characters", endpoints[i].name,
               sizeof((sim_job_t *)0)->exchange - 1);
  if (!why[0] && (!sim_uuid_valid(s->skill_group_id) || !sim_uuid_valid(s->rule_id)))
    snprintf(why, sizeof why, "skill_group_id and rule_id must be lowercase UUIDs");
  if (!why[0]) return 0;
  sim->api->log(sim->plugin, NULL, CTXD_LOG_ERROR, "settings: %s", why);
  return CTXD_ECONFIG;
}

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  sim_t *sim = calloc(1, sizeof *sim);
  if (sim == NULL) return CTXD_ENOMEM;
  sim->api = api;
  sim->plugin = plugin;
  sim->s = api->settings(plugin);
  pthread_mutex_init(&sim->mu, NULL);
  /* nap() waits on the monotonic clock, immune to wall-clock jumps */
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&sim->cond, &attr);
  pthread_condattr_destroy(&attr);
  *state = sim;
  const char *env = getenv("CTXD_AMQP_URL");
  snprintf(sim->url, sizeof sim->url, "%s",
           sim->s->amqp_url[0]     ? sim->s->amqp_url
           : env != NULL && env[0] ? env
                                   : DEFAULT_AMQP_URL);
  char url[sizeof sim->url];
  struct amqp_connection_info ci;
  snprintf(url, sizeof url, "%s", sim->url);
  if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK) {
    api->log(plugin, NULL, CTXD_LOG_ERROR, "amqp_url: not an amqp:// URL");
    return CTXD_ECONFIG;
  }
  if (gethostname(sim->machine, sizeof sim->machine) != 0)
    snprintf(sim->machine, sizeof sim->machine, "unknown");
  sim->machine[sizeof sim->machine - 1] = '\0'; /* gethostname may not terminate it */
  int rc = check_settings(sim);
  if (rc == 0) rc = sim_feeds_init(sim);
  return rc != 0 ? rc : sim_desk_init(sim);
}

static int start(void *state) {
  sim_t *sim = state;
  int rc = pthread_create(&sim->thread, NULL, run, sim);
  if (rc != 0) {
    sim->api->log(sim->plugin, NULL, CTXD_LOG_ERROR, "cannot start the thread: %s", strerror(rc));
    return CTXD_EPLUGIN;
  }
  sim->thread_started = true;
  return 0;
}

static void stop(void *state) {
  sim_t *sim = state;
  if (!sim->thread_started) return;
  pthread_mutex_lock(&sim->mu);
  sim->stopping = true;
  pthread_cond_broadcast(&sim->cond);
  pthread_mutex_unlock(&sim->mu);
  pthread_join(sim->thread, NULL);
  sim->thread_started = false;
}

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "simulator",
    .version = "1.0.0",
    .description =
        "the payment and order systems, DataCatalog, auditors and compensation desks, for the demo",
    .config_map = config_map,
    .settings_size = sizeof(sim_settings_t),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
