/* Feeds: traffic that makes every context work in the demo.
 *
 *  - materials: DataCatalog's MaterialType (the .NET service in production). The first
 *    tick publishes the whole catalog, later ticks one material each with a higher
 *    version; materials no audit counts get a tombstone every third update.
 *  - inventory: an auditor's tablet. StartInventory, a measurement of each material of
 *    each zone of the template, an edit of the first one, FinishInventory, sent to the
 *    inventory endpoint one delay apart (so they arrive in order).
 *  - compensation: back office, customer service and the app. ApplyCompensation with each
 *    strategy in turn, then SubmitCompensation and ApproveCompensation.
 *  - paying: the order system opens a paying order, the payment system calls back for each
 *    payment (once more for some: gateways repeat callbacks), a customer cancels; one flow
 *    per tick, each kind and each of the context's rules in turn.
 *  - orders: Customers' CustomerCreated and Ordering's OrderCreated for a new customer's
 *    order, in either order, every third order published twice (another copy, another
 *    message id), so Notification shows both orders of arrival and a duplicate.
 * The audited materials are the template's (config/inventory-templates.json unless
 * templates_file names another), so the inventory knows them from the materials feed. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ctxd_contracts.h"
#include "sim.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *const sim_feed_names[SIM_FEEDS] = {"materials", "inventory", "compensation", "paying", "orders"};

/* config/inventory-templates.json's template, used when templates_file is not set */
static const char builtin_templates[] =
    "[{\"id\": \"3f1a0c55-6d1e-4b7a-9c1e-5a0d2b7c9e01\", \"unitId\": "
    "\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\","
    " \"zones\": [{\"id\": \"8e9d5a40-1b2c-4d3e-8f40-000000000001\","
    " \"materialTypeIds\": [\"6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10\"]},"
    " {\"id\": \"8e9d5a40-1b2c-4d3e-8f40-000000000002\","
    " \"materialTypeIds\": [\"7a2e3a52-3a55-4d47-9a0e-2b1c6f3d9a11\"]}]}]";

enum {
  INGREDIENT = CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_CATEGORY_INGREDIENT,
  FINISHED = CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_CATEGORY_FINISHED_PRODUCT,
  PACKAGING = CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_CATEGORY_PACKAGING,
  CONSUMABLES = CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_CATEGORY_CONSUMABLES,
  PIECES = CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_BASIC_UNIT_OF_MEASURE_QUANTITY,
  GRAMS = CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_BASIC_UNIT_OF_MEASURE_GRAM,
  MILLILITERS = CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_BASIC_UNIT_OF_MEASURE_MILLILITER,
};

typedef struct {
  const char *id; /* NULL: the template's material of that rank */
  const char *name;
  int32_t category, unit;
} material_row_t;

/* The audited materials by rank in the template, then the ones no audit counts. */
static const material_row_t audited[] = {
    {NULL, "Mozzarella", INGREDIENT, GRAMS},         {NULL, "Flour", INGREDIENT, GRAMS},
    {NULL, "Tomato sauce", INGREDIENT, MILLILITERS}, {NULL, "Pepperoni", INGREDIENT, GRAMS},
    {NULL, "Olive oil", INGREDIENT, MILLILITERS},    {NULL, "Basil", INGREDIENT, GRAMS},
};
static const material_row_t unaudited[] = {
    {"9b0c0000-5e1f-4d00-8000-000000000001", "Pizza box 30 cm", PACKAGING, PIECES},
    {"9b0c0000-5e1f-4d00-8000-000000000002", "Napkins", CONSUMABLES, PIECES},
    {"9b0c0000-5e1f-4d00-8000-000000000003", "Cola 0.5 l", FINISHED, PIECES},
};

#define COUNTRY_ID 643
#define DEPARTMENT_ID "000d3a24-0c71-9a87-11e6-8aba13f7fe8e"

/* The compensation cases, one strategy each, used in turn. */
static const struct {
  int32_t strategy, channel, party, benefit;
  const char *applied_by, *reason;
} cases[] = {
    {CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_STRATEGY_PRODUCT_REFUND,
     CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_CHANNEL_CUSTOMER_SERVICE,
     CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_RESPONSIBLE_PARTY_MERCHANT, 0, "cs-2048",
     "Pizza arrived cold"},
    {CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_STRATEGY_RESHIP,
     CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_CHANNEL_BACK_OFFICE,
     CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_RESPONSIBLE_PARTY_LOGISTICS, 0, "staff-1024",
     "A pizza was missing from the delivery"},
    {CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_STRATEGY_NON_PRODUCT,
     CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_CHANNEL_CUSTOMER_APP,
     CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_RESPONSIBLE_PARTY_PLATFORM,
     CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_NON_PRODUCT_KIND_VOUCHER, NULL,
     "Delivery was 40 minutes late"},
};

/* The order lines a refund or a reship compensates. */
static const struct {
  const char *sku, *name;
  int64_t quantity, amount_minor;
} order_lines[] = {
    {"SKU-10023", "Margherita 30 cm", 1, 2990},
    {"SKU-10047", "Pepperoni 30 cm", 2, 7180},
};

/* ---- the template and the catalog -------------------------------------------------------- */

static const char *string_field(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

/* Reads the first template of a templates file's JSON: its id, unit and zones. */
static int template_read(sim_template_t *tpl, const json_t *all) {
  const json_t *t = json_array_get(all, 0), *zones = json_object_get(t, "zones");
  if (sim_id_copy(tpl->id, string_field(t, "id")) != 0 ||
      sim_id_copy(tpl->unit_id, string_field(t, "unitId")) != 0 || json_array_size(zones) == 0 ||
      json_array_size(zones) > SIM_MAX_ZONES)
    return CTXD_ECONFIG;
  tpl->nzones = json_array_size(zones);
  for (size_t z = 0; z < tpl->nzones; z++) {
    sim_zone_t *zone = &tpl->zones[z];
    const json_t *j = json_array_get(zones, z), *ids = json_object_get(j, "materialTypeIds");
    zone->nmaterials = json_array_size(ids);
    if (sim_id_copy(zone->id, string_field(j, "id")) != 0 || zone->nmaterials == 0 ||
        zone->nmaterials > SIM_MAX_ZONE_MATERIALS)
      return CTXD_ECONFIG;
    for (size_t m = 0; m < zone->nmaterials; m++)
      if (sim_id_copy(zone->materials[m], json_string_value(json_array_get(ids, m))) != 0)
        return CTXD_ECONFIG;
  }
  return 0;
}

static void catalog_add(sim_t *sim, const char *id, const material_row_t *row, bool removable) {
  for (size_t i = 0; i < sim->nmaterials; i++)
    if (strcmp(sim->materials[i].id, id) == 0) return; /* counted in two zones */
  if (sim->nmaterials == SIM_MAX_MATERIALS) return;
  sim_material_t *m = &sim->materials[sim->nmaterials++];
  snprintf(m->id, sizeof m->id, "%s", id);
  if (row != NULL)
    snprintf(m->name, sizeof m->name, "%s", row->name);
  else
    snprintf(m->name, sizeof m->name, "Material %zu", sim->nmaterials);
  m->category = row != NULL ? row->category : INGREDIENT;
  m->unit = row != NULL ? row->unit : GRAMS;
  m->removable = removable;
}

int sim_feeds_init(sim_t *sim) {
  const char *path = sim->s->templates_file;
  json_error_t e;
  json_t *all = path[0] ? json_load_file(path, 0, &e) : json_loads(builtin_templates, 0, &e);
  if (template_read(&sim->tpl, all) != 0) {
    sim->api->log(sim->plugin, NULL, CTXD_LOG_ERROR, "templates_file '%s': %s", path,
                  all == NULL ? e.text
                              : "the first template needs id, unitId and 1..8 zones of 1..8 materialTypeIds");
    json_decref(all);
    return CTXD_ECONFIG;
  }
  json_decref(all);
  for (size_t z = 0; z < sim->tpl.nzones; z++)
    for (size_t m = 0; m < sim->tpl.zones[z].nmaterials; m++)
      catalog_add(sim, sim->tpl.zones[z].materials[m],
                  sim->nmaterials < COUNT(audited) ? &audited[sim->nmaterials] : NULL, false);
  for (size_t i = 0; i < COUNT(unaudited); i++) catalog_add(sim, unaudited[i].id, &unaudited[i], true);
  return 0;
}

static const sim_material_t *material_find(const sim_t *sim, const char *id) {
  for (size_t i = 0; i < sim->nmaterials; i++)
    if (strcmp(sim->materials[i].id, id) == 0) return &sim->materials[i];
  return NULL;
}

/* ---- materials ----------------------------------------------------------------------------- */

static int publish_material(sim_t *sim, sim_material_t *m, int64_t due) {
  m->version = m->version + 1 > sim_version_floor() ? m->version + 1 : sim_version_floor();
  ctxd_c_data_catalog_products_v1_material_type_t mt = {.version = m->version,
                                                        .country_id = COUNTRY_ID,
                                                        .name = m->name,
                                                        .category = m->category,
                                                        .basic_unit_of_measure = m->unit,
                                                        .is_removed = m->removable && m->updates % 3 == 2};
  m->updates++;
  memcpy(mt.id, m->id, sizeof mt.id);
  memcpy(mt.department_id, DEPARTMENT_ID, sizeof mt.department_id);
  sim_out_t out = {.type = CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_TYPE, .correlation_id = m->id};
  return sim_later(sim, due, &out, ctxd_c_data_catalog_products_v1_material_type_encode(&mt),
                   "datacatalog: material %s '%s' version %" PRId64 "%s", m->id, m->name, m->version,
                   mt.is_removed ? " removed" : "");
}

static int feed_materials(sim_t *sim, int64_t now) {
  size_t n = sim->catalog_sent ? 1 : sim->nmaterials;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = publish_material(sim, &sim->materials[sim->next_material++ % sim->nmaterials], now);
  sim->catalog_sent = true;
  return rc;
}

/* ---- inventory ------------------------------------------------------------------------------- */

typedef struct {
  sim_out_t out;
  char inventory[37], auditor[37];
  unsigned n;
} audit_t;

static int measure(sim_t *sim, audit_t *a, int64_t due, const sim_zone_t *zone, const char *material,
                   const char *measurement, int64_t version) {
  const sim_material_t *m = material_find(sim, material);
  char value[32];
  snprintf(value, sizeof value, "%" PRId64 ".%" PRId64, sim_random(50, 5000), sim_random(0, 9));
  ctxd_c_inventory_v1_add_measurement_t c = {.version = version, .value = value, .unit_of_measure = m->unit};
  memcpy(c.inventory_id, a->inventory, sizeof c.inventory_id);
  memcpy(c.measurement_id, measurement, sizeof c.measurement_id);
  memcpy(c.material_type_id, material, sizeof c.material_type_id);
  memcpy(c.inventory_zone_id, zone->id, sizeof c.inventory_zone_id);
  memcpy(c.user_id, a->auditor, sizeof c.user_id);
  a->out.type = CTXD_C_INVENTORY_V1_ADD_MEASUREMENT_TYPE;
  return sim_later(sim, due, &a->out, ctxd_c_inventory_v1_add_measurement_encode(&c),
                   "auditor: audit %u %s %s '%s' = %s in zone %s", a->n,
                   version > 1 ? "corrected" : "measured", material, m->name, value, zone->id);
}

static int feed_inventory(sim_t *sim, int64_t now) {
  audit_t a = {.n = ++sim->audits};
  char first[37], at[32], edited[37] = "";
  sim_uuid_new(a.inventory);
  sim_uuid_new(a.auditor);
  sim_uuid_new(first);
  a.out = (sim_out_t){.exchange = sim->s->inventory_endpoint,
                      .type = CTXD_C_INVENTORY_V1_START_INVENTORY_TYPE,
                      .id = first,
                      .correlation_id = a.inventory,
                      .conversation_id = first};
  sim_iso_at(now, at);
  ctxd_c_inventory_v1_start_inventory_t start = {.started_at = at};
  memcpy(start.inventory_id, a.inventory, sizeof start.inventory_id);
  memcpy(start.unit_id, sim->tpl.unit_id, sizeof start.unit_id);
  memcpy(start.inventory_template_id, sim->tpl.id, sizeof start.inventory_template_id);
  memcpy(start.started_by, a.auditor, sizeof start.started_by);
  int rc = sim_later(sim, now, &a.out, ctxd_c_inventory_v1_start_inventory_encode(&start),
                     "auditor: audit %u started: inventory %s of unit %s with template %s", a.n, a.inventory,
                     sim->tpl.unit_id, sim->tpl.id);
  a.out.id = NULL;
  int64_t due = now;
  for (size_t z = 0; z < sim->tpl.nzones; z++) {
    for (size_t m = 0; m < sim->tpl.zones[z].nmaterials && rc == 0; m++) {
      char measurement[37];
      sim_uuid_new(measurement);
      if (z == 0 && m == 0) memcpy(edited, measurement, sizeof edited);
      rc = measure(sim, &a, due += sim_delay(sim), &sim->tpl.zones[z], sim->tpl.zones[z].materials[m],
                   measurement, 1);
    }
  }
  /* the auditor counts the first material again: the next version replaces the value */
  if (rc == 0)
    rc = measure(sim, &a, due += sim_delay(sim), &sim->tpl.zones[0], sim->tpl.zones[0].materials[0], edited,
                 2);
  if (rc == 0) {
    due += sim_delay(sim);
    sim_iso_at(due, at);
    ctxd_c_inventory_v1_finish_inventory_t finish = {.finished_at = at};
    memcpy(finish.inventory_id, a.inventory, sizeof finish.inventory_id);
    memcpy(finish.finished_by, a.auditor, sizeof finish.finished_by);
    a.out.type = CTXD_C_INVENTORY_V1_FINISH_INVENTORY_TYPE;
    rc = sim_later(sim, due, &a.out, ctxd_c_inventory_v1_finish_inventory_encode(&finish),
                   "auditor: audit %u finished: inventory %s", a.n, a.inventory);
  }
  return rc;
}

/* ---- compensation ------------------------------------------------------------------------------ */

static int feed_compensation(sim_t *sim, int64_t now) {
  unsigned n = sim->compensations++;
  size_t k = n % COUNT(cases);
  char compensation[37], customer[37], first[37], order[32], at[32];
  sim_uuid_new(compensation);
  sim_uuid_new(customer);
  sim_uuid_new(first);
  sim_iso_at(now, at);
  snprintf(order, sizeof order, "SO%.4s%.2s%.2s%06" PRId64, at, at + 5, at + 8, sim_random(0, 999999));
  ctxd_c_compensation_v1_apply_compensation_items_item_t items[COUNT(order_lines)];
  for (size_t i = 0; i < COUNT(order_lines); i++)
    items[i] = (ctxd_c_compensation_v1_apply_compensation_items_item_t){
        .sku = (char *)order_lines[i].sku,
        .name = (char *)order_lines[i].name,
        .quantity = order_lines[i].quantity,
        .has_refund_amount_minor =
            cases[k].strategy == CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_STRATEGY_PRODUCT_REFUND,
        .refund_amount_minor = order_lines[i].amount_minor};
  bool non_product = cases[k].benefit != 0;
  /* the app applies in the customer's name */
  const char *applicant = cases[k].applied_by != NULL ? cases[k].applied_by : customer;
  ctxd_c_compensation_v1_apply_compensation_t apply = {
      .order_number = order,
      .channel = cases[k].channel,
      .applied_by = (char *)applicant,
      .reason = (char *)cases[k].reason,
      .has_responsible_party = true,
      .responsible_party = cases[k].party,
      .strategy = cases[k].strategy,
      .has_items = !non_product,
      .items = non_product ? NULL : items,
      .items_count = non_product ? 0 : COUNT(items),
      .has_non_product = non_product,
      .non_product = {.kind = cases[k].benefit, .amount_minor = 1000, .note = "Sorry for the wait"},
      .currency = "CNY"};
  memcpy(apply.compensation_id, compensation, sizeof apply.compensation_id);
  memcpy(apply.customer_id, customer, sizeof apply.customer_id);
  sim_out_t out = {.exchange = sim->s->compensation_endpoint,
                   .type = CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_TYPE,
                   .id = first,
                   .correlation_id = compensation,
                   .conversation_id = first};
  int rc = sim_later(sim, now, &out, ctxd_c_compensation_v1_apply_compensation_encode(&apply),
                     "customer service: compensation %s applied for order %s (strategy %d: %s)", compensation,
                     order, cases[k].strategy, cases[k].reason);
  out.id = NULL;
  int64_t due = now + sim_delay(sim);
  ctxd_c_compensation_v1_submit_compensation_t submit = {.submitted_by = (char *)applicant};
  memcpy(submit.compensation_id, compensation, sizeof submit.compensation_id);
  out.type = CTXD_C_COMPENSATION_V1_SUBMIT_COMPENSATION_TYPE;
  if (rc == 0)
    rc = sim_later(sim, due, &out, ctxd_c_compensation_v1_submit_compensation_encode(&submit),
                   "customer service: compensation %s submitted", compensation);
  due += sim_delay(sim);
  ctxd_c_compensation_v1_approve_compensation_t approve = {.approved_by = "lead-0001",
                                                           .comment = "Approved by the simulator"};
  memcpy(approve.compensation_id, compensation, sizeof approve.compensation_id);
  out.type = CTXD_C_COMPENSATION_V1_APPROVE_COMPENSATION_TYPE;
  if (rc == 0)
    rc = sim_later(sim, due, &out, ctxd_c_compensation_v1_approve_compensation_encode(&approve),
                   "back office: compensation %s approved", compensation);
  return rc;
}

/* ---- paying ---------------------------------------------------------------------------------- */

/* A step of a paying flow: 'p' a payment (n: the flow's payment number: the same number
 * again is a repeated callback), 'f' a free pay, 'c' a cancel. */
typedef struct {
  char op;
  int n;
  int64_t amount_minor;
} paying_step_t;

static const struct {
  int32_t kind;
  int64_t amount_minor;
  const char *what;
  paying_step_t steps[3];
} paying_flows[] = {
    {CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_KIND_NORMAL,
     7180,
     "paid in two payments, the last callback repeated",
     {{'p', 1, 2990}, {'p', 2, 4190}, {'p', 2, 4190}}},
    {CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_KIND_NORMAL, 2990, "over-paid", {{'p', 1, 3000}}},
    {CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_KIND_NORMAL,
     7180,
     "canceled after a payment, then paid again",
     {{'p', 1, 2990}, {'c', 0, 0}, {'p', 2, 4190}}},
    {CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_KIND_GROUP_BUY, 2990, "a group-buy order paid", {{'p', 1, 2990}}},
    {CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_KIND_FREE, 0, "a free order", {{'f', 1, 0}}},
};

static int feed_paying(sim_t *sim, int64_t now) {
  size_t k = sim->payings++ % COUNT(paying_flows);
  char order[32], group[40], correlation[37], at[32];
  snprintf(order, sizeof order, "PO%010" PRId64, sim_random(0, 9999999999));
  snprintf(group, sizeof group, "GB-%s", order);
  sim_uuid_derive(order, "paying", correlation);
  sim_out_t out = {.exchange = sim->s->paying_endpoint,
                   .type = CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_TYPE,
                   .correlation_id = correlation};
  ctxd_c_paying_v1_open_paying_order_t open = {
      .order_number = order,
      .kind = paying_flows[k].kind,
      .group_id = paying_flows[k].kind == CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_KIND_GROUP_BUY ? group : NULL,
      .amount_minor = paying_flows[k].amount_minor,
      .currency = "CNY"};
  int rc = sim_later(sim, now, &out, ctxd_c_paying_v1_open_paying_order_encode(&open),
                     "ordering: paying order %s opened for %" PRId64 " (%s)", order,
                     paying_flows[k].amount_minor, paying_flows[k].what);
  int64_t due = now;
  for (size_t i = 0; rc == 0 && i < COUNT(paying_flows[k].steps) && paying_flows[k].steps[i].op; i++) {
    const paying_step_t *st = &paying_flows[k].steps[i];
    due += sim_delay(sim);
    if (st->op == 'c') {
      ctxd_c_paying_v1_cancel_order_t c = {
          .order_number = order, .reason = "customer changed their mind", .canceled_by = "customer"};
      out.type = CTXD_C_PAYING_V1_CANCEL_ORDER_TYPE;
      rc = sim_later(sim, due, &out, ctxd_c_paying_v1_cancel_order_encode(&c), "customer: order %s canceled",
                     order);
      continue;
    }
    char payment[48];
    snprintf(payment, sizeof payment, "PAY-%s-%d", order, st->n);
    sim_iso_at(due, at);
    ctxd_c_paying_v1_pay_order_t p = {.order_number = order,
                                      .payment_id = payment,
                                      .amount_minor = st->amount_minor,
                                      .currency = "CNY",
                                      .has_free_pay = st->op == 'f',
                                      .free_pay = st->op == 'f',
                                      .paid_at = at};
    out.type = CTXD_C_PAYING_V1_PAY_ORDER_TYPE;
    rc = sim_later(sim, due, &out, ctxd_c_paying_v1_pay_order_encode(&p),
                   "payment: callback for order %s: payment %s of %" PRId64 "%s", order, payment,
                   st->amount_minor, st->op == 'f' ? " (free pay)" : "");
  }
  return rc;
}

/* ---- orders and customers ---------------------------------------------------------------------- */

static int feed_orders(sim_t *sim, int64_t now) {
  unsigned n = sim->orders++;
  char customer[37], order[37], number[32], at[32], phone[24], name[32];
  sim_uuid_new(customer);
  sim_uuid_new(order);
  sim_iso_at(now, at);
  snprintf(number, sizeof number, "SO%.4s%.2s%.2s%06" PRId64, at, at + 5, at + 8, sim_random(0, 999999));
  snprintf(phone, sizeof phone, "+86138%08" PRId64, sim_random(0, 99999999));
  snprintf(name, sizeof name, "Customer %u", n + 1);
  ctxd_c_customers_v1_customer_created_t c = {.name = name, .phone_number = phone, .created_at = at};
  memcpy(c.customer_id, customer, sizeof c.customer_id);
  ctxd_c_ordering_v1_order_created_t o = {.order_number = number,
                                          .total_amount_minor = 4590 + 100 * (n % 10),
                                          .currency = "CNY",
                                          .created_at = at};
  memcpy(o.order_id, order, sizeof o.order_id);
  memcpy(o.customer_id, customer, sizeof o.customer_id);
  /* events: to their types' exchanges, each with a new message id */
  sim_out_t customer_out = {.type = CTXD_C_CUSTOMERS_V1_CUSTOMER_CREATED_TYPE};
  sim_out_t order_out = {.type = CTXD_C_ORDERING_V1_ORDER_CREATED_TYPE, .correlation_id = order};
  bool order_first = n % 2 == 1;
  int64_t first = now, second = now + sim_delay(sim);
  int rc = sim_later(sim, order_first ? second : first, &customer_out,
                     ctxd_c_customers_v1_customer_created_encode(&c), "customers: customer %s (%s) created",
                     customer, phone);
  if (rc == 0)
    rc = sim_later(sim, order_first ? first : second, &order_out, ctxd_c_ordering_v1_order_created_encode(&o),
                   "ordering: order %s of customer %s created%s", number, customer,
                   order_first ? ", before its customer" : "");
  if (rc == 0 && n % 3 == 2)
    rc = sim_later(sim, second + sim_delay(sim), &order_out, ctxd_c_ordering_v1_order_created_encode(&o),
                   "ordering: order %s published again", number);
  return rc;
}

int sim_feed_tick(sim_t *sim, int feed, int64_t now_ms) {
  static int (*const run[SIM_FEEDS])(sim_t *, int64_t) = {feed_materials, feed_inventory, feed_compensation,
                                                          feed_paying, feed_orders};
  return run[feed](sim, now_ms);
}
