#include "send.h"

#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cli.h"
#include "contract.h"
#include "envelope.h"
#include "envelope_out.h"
#include "topology.h"
#include "uuid.h"

static json_t *load_message(const char *message, char *err, size_t errlen) {
  json_error_t e;
  json_t *m = message[0] == '@' ? json_load_file(message + 1, 0, &e) : json_loads(message, 0, &e);
  if (m == NULL)
    snprintf(err, errlen, "the message is not JSON (line %d column %d: %s)", e.line, e.column, e.text);
  else if (!json_is_object(m))
    snprintf(err, errlen, "the message is not a JSON object");
  if (m != NULL && !json_is_object(m)) {
    json_decref(m);
    return NULL;
  }
  return m;
}

int ctxd__send(const ctxd__config_t *cfg, const char *type, const char *message, const char *endpoint,
               FILE *out) {
  char err[1024], id[37], exchange[256];
  ctxd__contracts_t *contracts = NULL;
  json_t *m = load_message(message, err, sizeof err);
  const ctxd__contract_t *k = NULL;
  int bad =
      m == NULL || ctxd__contracts_new(&contracts, err, sizeof err) != 0 ||
      ((k = ctxd__contracts_find(contracts, type)) != NULL && ctxd__contract_validate(k, m, err, sizeof err));
  if (!bad && endpoint != NULL)
    snprintf(exchange, sizeof exchange, "%s", endpoint);
  else if (!bad && ctxd__contracts_exchange(contracts, type, exchange, sizeof exchange) != 0)
    bad = snprintf(err, sizeof err, "not a message type MassTransit can name") > 0;
  if (bad) {
    fprintf(stderr, "ctxd: %s: %s\n", type, err);
    json_decref(m);
    ctxd__contracts_free(contracts);
    return CTXD__EXIT_FAILURE;
  }
  ctxd__uuid_new(id);
  ctxd__envelope_out_t env = {.message_id = id,
                              .message_type = type,
                              .contract = k,
                              .conversation_id = id,
                              .destination_address = exchange,
                              .message = m};
  char *text = ctxd__envelope_encode(&env);
  json_decref(m);
  ctxd__broker_t b;
  int rc = text == NULL
               ? CTXD_EINVAL
               : ctxd__broker_connect_any(&b, cfg->broker_urls, cfg->nbroker_urls, cfg->broker_password,
                                          &cfg->broker_tls, 0, (int)cfg->rpc_timeout_ms, err, sizeof err);
  if (rc == 0) {
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    props.content_type = amqp_cstring_bytes(CTXD__ENVELOPE_CONTENT_TYPE);
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = amqp_cstring_bytes(id);
    uint64_t seq;
    /* declared here too: the first message of a type may precede every consumer */
    rc = endpoint != NULL ? ctxd__broker_exchange(&b, CTXD__PUBLISH_CHANNEL, exchange, err, sizeof err)
                          : ctxd__topology_publish_exchange(&b, contracts, exchange, err, sizeof err);
    if (rc == 0) rc = ctxd__broker_publish(&b, exchange, "", 0, &props, amqp_cstring_bytes(text), &seq);
    if (rc == 0) rc = ctxd__broker_wait_confirm(&b, seq, (int)cfg->rpc_timeout_ms);
    if (rc != 0 && err[0] == '\0')
      snprintf(err, sizeof err, "the broker did not confirm it: %s", ctxd_strerror(rc));
    ctxd__broker_close(&b, 1);
  }
  free(text);
  ctxd__contracts_free(contracts);
  if (rc != 0) {
    fprintf(stderr, "ctxd: %s: %s\n", type, err);
    return CTXD__EXIT_FAILURE;
  }
  fprintf(out, "%s\n", id);
  return CTXD__EXIT_OK;
}
