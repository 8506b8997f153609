/* The simulator plugin's shared declarations: the systems outside ctxd for the demo.
 *
 * One thread (started in start(), joined in stop()) owns one AMQP connection of its own:
 * it is an outside system, so it never goes through the host's inbox or outbox. It answers
 * the payment and order systems' requests after a delay, and feeds traffic to the
 * contexts. Everything it publishes waits in a schedule (a min-heap on due time) so that
 * delays never block the consumer. All state below belongs to that thread, except the
 * stop flag (mu, cond). */
#ifndef CTXD_SIMULATOR_SIM_H
#define CTXD_SIMULATOR_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include <ctxd/ctxd.h>

/* ---- settings --------------------------------------------------------------------------- */

enum {
  SIM_FEED_MATERIALS,
  SIM_FEED_INVENTORY,
  SIM_FEED_COMPENSATION,
  SIM_FEED_PAYING,
  SIM_FEED_ORDERS,
  SIM_FEEDS
};
/* The queues the simulator consumes: the payment and order systems' requests, and the
 * agent desk's CaseStatusChanged (only with feed_agents). */
enum { SIM_PAYMENT, SIM_ORDERING, SIM_AGENT_DESK, SIM_SYSTEMS };

typedef struct {
  int on;
  int64_t interval_ms;
} sim_feed_settings_t;

typedef struct {
  const char *amqp_url;
  const char *queues[SIM_SYSTEMS];
  int64_t prefetch;
  int64_t delay_min_ms, delay_max_ms;
  int64_t failure_percent;
  int64_t confirm_timeout_ms;
  sim_feed_settings_t feeds[SIM_FEEDS];
  const char *inventory_endpoint;
  const char *compensation_endpoint;
  const char *paying_endpoint;
  const char *templates_file;
  /* the agent desk (desk.c) */
  int feed_agents;
  const char *case_endpoint;
  const char *skill_group_id, *rule_id;
  const char *agent_ids; /* comma-separated */
  int64_t reject_back_percent;
} sim_settings_t;

/* ---- the audit template and the material catalog (feeds.c) ----------------------------- */

#define SIM_MAX_ZONES 8
#define SIM_MAX_ZONE_MATERIALS 8
#define SIM_MAX_MATERIALS (SIM_MAX_ZONES * SIM_MAX_ZONE_MATERIALS + 3) /* + the unaudited ones */

typedef struct {
  char id[37];
  size_t nmaterials;
  char materials[SIM_MAX_ZONE_MATERIALS][37];
} sim_zone_t;

typedef struct {
  char id[37], unit_id[37];
  size_t nzones;
  sim_zone_t zones[SIM_MAX_ZONES];
} sim_template_t;

typedef struct {
  char id[37];
  char name[64];
  int32_t category, unit;
  bool removable; /* not counted by the audits, so it may get a tombstone */
  int64_t version;
  unsigned updates;
} sim_material_t;

/* ---- the schedule (schedule.c) ---------------------------------------------------------- */

/* Something to do at due_ms (CLOCK_MONOTONIC): a feed's tick, or a publish. */
typedef struct {
  int64_t due_ms;
  uint64_t seq; /* FIFO among equal due times, so a flow's steps keep their order */
  int feed;     /* SIM_FEED_*: the feed's tick; -1: a publish */
  /* a publish: the envelope's fields */
  char exchange[128];
  const char *type;                                                       /* static string */
  char *body;                                                             /* the message, JSON text */
  char id[37], correlation_id[37], conversation_id[37], initiator_id[37]; /* "" when none */
  uint64_t delivery; /* the request delivery this answers; 0 for fed messages */
  bool ack;          /* acknowledge `delivery` once this is published */
  char note[256];    /* the log line's text */
} sim_job_t;

typedef struct {
  sim_job_t **items;
  size_t n, cap;
  uint64_t seq;
} sim_schedule_t;

/* Takes job (new with calloc). A job coming back (seq set) keeps its place among jobs
 * due at the same time. 0, or CTXD_ENOMEM (job freed). */
int sim_schedule_push(sim_schedule_t *s, sim_job_t *job);
/* The earliest job, still in the schedule; NULL when empty. */
sim_job_t *sim_schedule_peek(const sim_schedule_t *s);
/* Removes the earliest job and returns it (the caller frees it with sim_job_free). */
sim_job_t *sim_schedule_pop(sim_schedule_t *s);
/* Drops every answer to a request: their delivery tags die with the connection, and the
 * broker delivers those requests again. */
void sim_schedule_drop_answers(sim_schedule_t *s);
/* Drops every job and frees the heap. */
void sim_schedule_clear(sim_schedule_t *s);
void sim_job_free(sim_job_t *job);

/* ---- the agent desk (desk.c) ------------------------------------------------------------- */

#define SIM_MAX_AGENTS 4
#define SIM_AGENT_LEN 65        /* the contracts' 64 characters */
#define SIM_MAX_DESK_CASES 1024 /* cases followed at once; the oldest is forgotten beyond */

/* A case one of the desk's agents holds: what the agent did that a redelivery must repeat. */
typedef struct {
  char case_id[37];
  char rejected_by[37]; /* the status message answered with RejectCaseBack; "" when none */
} sim_desk_case_t;

typedef struct {
  char agents[SIM_MAX_AGENTS][SIM_AGENT_LEN];
  size_t nagents;
  int64_t version; /* of the definitions, fixed for the run: repeats after a reconnect are ignored */
  char on_duty_at[32];
  sim_desk_case_t *cases;
  size_t ncases;
} sim_desk_t;

/* ---- the simulator ---------------------------------------------------------------------- */

typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
  const sim_settings_t *s;
  char url[512];
  char machine[256];
  sim_template_t tpl;
  sim_material_t materials[SIM_MAX_MATERIALS];
  size_t nmaterials, next_material;
  bool catalog_sent;
  unsigned audits, compensations, payings, orders;
  sim_desk_t desk;

  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool stopping;

  /* the thread's */
  amqp_connection_state_t conn;
  uint64_t published; /* publishes on the channel: the next confirm's delivery tag */
  sim_schedule_t sched;
} sim_t;

/* What a publish is; sim_later copies it into a job. */
typedef struct {
  const char *exchange; /* an endpoint for a command; NULL: the type's exchange (an event) */
  const char *type;
  const char *id;                                              /* NULL: a new random id */
  const char *correlation_id, *conversation_id, *initiator_id; /* NULL: none */
  uint64_t delivery;
  bool ack;
} sim_out_t;

/* Schedules body (taken, freed whatever happens; NULL when its encoder refused it) for
 * publishing at due_ms; the note is what the log line says once it is published. 0,
 * CTXD_EINVAL (no body: the message broke its contract) or CTXD_ENOMEM. */
int sim_later(sim_t *sim, int64_t due_ms, const sim_out_t *out, char *body, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* A delay of delay_min_ms..delay_max_ms, uniformly. */
int64_t sim_delay(const sim_t *sim);

/* ---- answers to requests (answers.c) ---------------------------------------------------- */

/* A delivery's envelope fields its answers carry on. */
typedef struct {
  const char *id, *correlation_id, *conversation_id;
  uint64_t delivery;
} sim_request_t;

typedef struct {
  const char *name;         /* consumer tag and log word: "payment", "ordering", "agent desk" */
  const char *request_type; /* the exchange its queue is bound to */
  /* schedules the answers to the message text (the envelope's message) */
  int (*answer)(sim_t *sim, const sim_request_t *req, const char *text, char *err, size_t errlen);
} sim_system_t;

extern const sim_system_t sim_systems[SIM_SYSTEMS];

/* The envelope of an answer of `type` to req (last: it acknowledges the delivery); id
 * receives its message id, derived from the request's, so a redelivery is answered alike. */
sim_out_t sim_answer_out(const sim_request_t *req, const char *type, bool last, char id[37]);

/* What an answer function returns when the delivery needs no answer: acknowledge it now. */
#define SIM_NOTHING 1

/* Schedules the answers to one delivery of system's queue, the last one acknowledging
 * `delivery`. 0; SIM_NOTHING (nothing to answer: the caller acknowledges it); CTXD_EDECODE
 * or CTXD_EVALIDATION with the reason in err (the request can never be answered);
 * CTXD_ENOMEM. */
int sim_answer(sim_t *sim, int system, uint64_t delivery, const void *body, size_t len, char *err,
               size_t errlen);

/* desk.c: parses the agents, fixes the definitions' version. 0 or CTXD_ECONFIG (logged). */
int sim_desk_init(sim_t *sim);
/* Schedules the skill group, the rule and each agent on duty from now_ms on (after every
 * connect: the same message ids and versions each time, so a repeat changes nothing). */
int sim_desk_announce(sim_t *sim, int64_t now_ms);
/* The agent desk's answer to a CaseStatusChanged (sim_system_t.answer). */
int sim_desk_answer(sim_t *sim, const sim_request_t *req, const char *text, char *err, size_t errlen);
void sim_desk_free(sim_t *sim);

/* ---- feeds (feeds.c) -------------------------------------------------------------------- */

extern const char *const sim_feed_names[SIM_FEEDS];

/* Loads the audit template (templates_file, or the built-in one) and builds the material
 * catalog. 0 or CTXD_ECONFIG (logged). */
int sim_feeds_init(sim_t *sim);
/* Runs one tick of feed: schedules its messages from now_ms on. 0 or a negative code. */
int sim_feed_tick(sim_t *sim, int feed, int64_t now_ms);

/* ---- the connection (bus.c) -------------------------------------------------------------- */

/* Connects, declares the topology and starts consuming. 0 or CTXD_EBROKER (logged;
 * sim->conn NULL). */
int sim_bus_connect(sim_t *sim);
/* Closes the connection (gracefully: with the close handshake, for a healthy one). Unacked
 * requests go back to their queues. */
void sim_bus_close(sim_t *sim, bool graceful);
/* Publishes job in a MassTransit envelope and waits for the broker's confirm (a nack is
 * published again). 0, or CTXD_EBROKER: not confirmed, the connection must go. */
int sim_bus_publish(sim_t *sim, const sim_job_t *job);
/* Acknowledges a request once its answers are out. 0 or CTXD_EBROKER. */
int sim_bus_ack(sim_t *sim, uint64_t delivery);
/* Waits up to timeout_ms for a frame and handles it (a request is scheduled). 0, or
 * CTXD_EBROKER when the connection is lost. */
int sim_bus_pump(sim_t *sim, int64_t timeout_ms);

/* ---- ids and clocks (util.c) -------------------------------------------------------------- */

void sim_uuid_new(char out[37]);
/* A name-based id: the same (name, kind) always give the same UUID. */
void sim_uuid_derive(const char *name, const char *kind, char out[37]);
/* A stable 64-bit hash of (name, kind). */
uint64_t sim_hash(const char *name, const char *kind);
/* Uniform in lo..hi (inclusive), from getrandom. */
int64_t sim_random(int64_t lo, int64_t hi);
int64_t sim_now_ms(void); /* CLOCK_MONOTONIC */
/* The UTC time at monotonic due_ms, ISO 8601 as MassTransit writes it. */
void sim_iso_at(int64_t due_ms, char out[32]);
/* Seconds since 2024: versions keep growing across restarts of the simulator, so the
 * receivers never ignore a new run's definitions or updates as old ones. */
int64_t sim_version_floor(void);
/* Copies a UUID-shaped string (36 characters) into out; 0 or CTXD_EINVAL. */
int sim_id_copy(char out[37], const char *in);
/* Whether s is a UUID as the contracts write it (lowercase 8-4-4-4-12). */
bool sim_uuid_valid(const char *s);

#endif
