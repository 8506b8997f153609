// The operator console in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; never a browser download). One scenario per run, chosen by the driver
// (tests/browser/test_console_browser.c), which starts the host and makes the traffic:
//
//   node console.test.js SCENARIO BASE_URL [name=value ...]
//
// Every scenario fails on a console error, an uncaught exception, a failed request, an
// HTTP error answer or a request to another origin. Nothing sleeps: each step waits for
// what the page shows, with a deadline. Screenshots go to CTXD_BROWSER_SHOTS.
// Exit status 0: passed; otherwise the reason is on stderr.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const { chromium } = require(path.join(process.env.CTXD_BROWSER_MODULES || path.join(__dirname, 'node_modules'), 'playwright-core'));

const STEP_MS = 30000;
const SCENARIO_MS = 180000;
const CHROMIUM = process.env.CTXD_CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-quic',
  '--disable-component-update', '--disable-sync'];

const [scenario, base, ...rest] = process.argv.slice(2);
const arg = Object.fromEntries(rest.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const shots = process.env.CTXD_BROWSER_SHOTS || path.join(os.tmpdir(), 'ctxd-browser-shots');

const log = (...a) => console.error('browser:', ...a);

// Waits until fn(arg) is true in the page; the failure names what was awaited.
async function until(page, what, fn, fnArg, ms = STEP_MS) {
  try {
    await page.waitForFunction(fn, fnArg, { timeout: ms, polling: 100 });
  } catch (e) {
    throw new Error(`${what}: not within ${ms} ms`);
  }
}

// The text of the element at selector, once it exists.
const textOf = async (page, selector) => (await page.locator(selector).first().textContent()).trim();

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `console-${name}.png`) });
}

// cells of the group row for endpoint and exception type
const groupRow = (endpoint, exception) => `#groups tr[data-endpoint="${endpoint}"][data-exception="${exception}"]`;

async function groupCount(page, endpoint, exception, want) {
  await until(page, `group ${endpoint}/${exception} shows ${want} messages`,
    ([sel, n]) => {
      const cell = document.querySelector(`${sel} td.count`);
      // digits only: the page groups thousands as the browser's locale does
      return n === 0 ? !cell : !!cell && cell.textContent.replace(/\D/g, '') === String(n);
    }, [groupRow(endpoint, exception), want]);
}

async function statusCount(page, status, want) {
  await until(page, `summary shows ${want} ${status}`,
    ([st, n]) => {
      const el = document.querySelector(`#failed-summary .stat.${st} .n`);
      return !!el && el.textContent.trim() === String(n);
    }, [status, want]);
}

async function useToken(page, token) {
  await page.fill('#operator', 'browser-test');
  await page.fill('#token', token);
  await page.click('#access button[type=submit]');
}

// Clicks button (a locator), confirms in the dialog and waits for the result toast.
async function confirmAndWait(page, button, result, shotName) {
  await button.click();
  await page.locator('dialog#confirm[open]').waitFor({ timeout: STEP_MS });
  if (shotName) await shot(page, shotName);
  await page.click('#confirm-ok');
  await until(page, `result "${result}"`,
    (want) => [...document.querySelectorAll('#toasts .toast')].some((t) => t.textContent.includes(want)), result);
}

async function allActionButtonsDisabled(page, why) {
  await until(page, `every action button disabled (${why})`,
    (reason) => {
      const buttons = [...document.querySelectorAll('button[data-act]')];
      return buttons.length > 0 && buttons.every((b) => b.disabled && b.title.includes(reason));
    }, why);
}

const scenarios = {
  // Every view loads and shows the host's data; the endpoint table shows a rate above zero
  // while the driver publishes.
  async traffic(page) {
    await page.goto(`${base}/`);
    await page.locator(`#endpoints tr[data-endpoint="${arg.endpoint}"]`).waitFor({ timeout: STEP_MS });
    await until(page, `endpoint ${arg.endpoint} shows a rate above 0`,
      (ep) => {
        const el = document.querySelector(`#endpoints tr[data-endpoint="${ep}"] .rate`);
        return !!el && parseFloat(el.textContent) > 0;
      }, arg.endpoint);
    // a chart of a few samples at least (samples=N; 2 s each), for a telling screenshot
    await until(page, `the rate chart has ${arg.samples || 2} points`,
      ([ep, n]) => {
        const line = document.querySelector(`#endpoints tr[data-endpoint="${ep}"] svg.spark.rate polyline`);
        return !!line && line.getAttribute('points').split(' ').length >= n;
      }, [arg.endpoint, +(arg.samples || 2)]);
    await until(page, 'the host is connected and ready',
      () => /broker connected/.test(document.getElementById('host-state').textContent) && /ready/.test(document.getElementById('host-state').textContent));
    await shot(page, 'endpoints');
    await page.goto(`${base}/#topology`);
    await until(page, `the topology shows endpoint ${arg.endpoint} and plugin ${arg.plugin}`,
      ([ep, plugin]) => {
        const texts = [...document.querySelectorAll('svg.topology .node text')].map((t) => t.textContent);
        return texts.includes(ep) && texts.includes(plugin);
      }, [arg.endpoint, arg.plugin]);
    await shot(page, 'topology');
    await page.goto(`${base}/#outbox`);
    await page.locator('#outbox-stats .stat-card').first().waitFor({ timeout: STEP_MS });
    await shot(page, 'outbox');
  },

  // The failed group opens; one message shows its fault, headers and body.
  async failed(page) {
    await page.goto(`${base}/#failed`);
    await groupCount(page, arg.endpoint, arg.exception, +arg.count);
    await shot(page, 'failed');
    await page.click(groupRow(arg.endpoint, arg.exception));
    const row = `#messages tr[data-message-id="${arg.message}"]`;
    await page.locator(row).waitFor({ timeout: STEP_MS });
    await until(page, `the group lists ${arg.count} messages`, (n) => document.querySelectorAll('#messages tbody tr').length === n, +arg.count);
    await shot(page, 'group');
    await page.click(row);
    await page.locator('#message').waitFor({ timeout: STEP_MS });
    const fault = await textOf(page, '#message-fault .exc');
    if (fault !== arg.exception) throw new Error(`the fault shows ${fault}, not ${arg.exception}`);
    const headers = await textOf(page, '#message-headers');
    for (const h of ['MT-Fault-ExceptionType', 'MT-Fault-Message', 'ctxd-Fault-Id']) {
      if (!headers.includes(h)) throw new Error(`header ${h} not shown`);
    }
    const body = await textOf(page, '#message-body');
    if (!body.includes(arg.body)) throw new Error(`the body shows ${body.slice(0, 200)}, without ${arg.body}`);
    await shot(page, 'message');
  },

  // No token entered yet: the buttons are disabled and say why; with it they are enabled.
  // Retry of one message: the result shows, the group's count drops, and once the host
  // handled it the summary counts it resolved (the driver checks its effect in the database).
  async retry(page) {
    await page.goto(`${base}/#failed`);
    await groupCount(page, arg.endpoint, arg.exception, +arg.count);
    await allActionButtonsDisabled(page, 'Enter the admin token');
    await useToken(page, arg.token);
    await until(page, 'the buttons are enabled with the token', () => [...document.querySelectorAll('#groups button[data-act]')].every((b) => !b.disabled));
    await page.click(groupRow(arg.endpoint, arg.exception));
    const row = `#messages tr[data-message-id="${arg.message}"]`;
    await page.locator(row).waitFor({ timeout: STEP_MS });
    await page.check(`${row} input[type=checkbox]`);
    await confirmAndWait(page, page.locator('button[data-act=retry]', { hasText: 'Retry selected' }), 'Retried 1', 'confirm');
    await shot(page, 'retried');
    await page.goto(`${base}/#failed`);
    await groupCount(page, arg.endpoint, arg.exception, +arg.count - 1);
    await statusCount(page, 'resolved', +arg.resolved);
  },

  // Archive one message from its page: it leaves the unresolved group and shows under
  // Archived; unarchive brings it back.
  async archive(page) {
    await page.goto(`${base}/`);
    await useToken(page, arg.token);
    await page.goto(`${base}/#failed`);
    await groupCount(page, arg.endpoint, arg.exception, +arg.count);
    await page.click(groupRow(arg.endpoint, arg.exception));
    await page.locator(`#messages tr[data-message-id="${arg.message}"]`).click();
    await page.locator('#message').waitFor({ timeout: STEP_MS });
    await confirmAndWait(page, page.locator('#message button[data-act=archive]'), 'Archived 1');
    await until(page, 'the message shows archived', () => document.querySelector('#message[data-status=archived]') !== null);
    await page.goto(`${base}/#failed`);
    await groupCount(page, arg.endpoint, arg.exception, +arg.count - 1);
    await statusCount(page, 'archived', +arg.archived + 1);
    await page.click('#failed-summary .stat.archived');
    await groupCount(page, arg.endpoint, arg.exception, 1);
    await confirmAndWait(page, page.locator(`${groupRow(arg.endpoint, arg.exception)} button[data-act=unarchive]`), 'Unarchived 1');
    await statusCount(page, 'archived', +arg.archived);
    await page.click('#failed-summary .stat.unresolved');
    await groupCount(page, arg.endpoint, arg.exception, +arg.count);
  },

  // "Archive all" on a group larger than one request takes (1000 rows): the page asks
  // again until none remain, and the result counts them all.
  async bulk(page) {
    await page.goto(`${base}/`);
    await useToken(page, arg.token);
    await page.goto(`${base}/#failed`);
    await groupCount(page, arg.endpoint, arg.exception, +arg.count);
    await until(page, 'the buttons are enabled with the token', () => [...document.querySelectorAll('#groups button[data-act]')].every((b) => !b.disabled));
    await confirmAndWait(page, page.locator(`${groupRow(arg.endpoint, arg.exception)} button[data-act=archive]`), `Archived ${arg.count}`);
  },

  // A host without admin.token: read-only, every action button disabled and saying why.
  async readonly(page) {
    await page.goto(`${base}/#failed`);
    await groupCount(page, arg.endpoint, arg.exception, +arg.count);
    await until(page, 'the page says read-only', () => !document.getElementById('readonly').hidden && document.getElementById('access').hidden);
    await allActionButtonsDisabled(page, 'admin.token');
    await page.click(groupRow(arg.endpoint, arg.exception));
    await page.locator('#messages tbody tr').first().click();
    await page.locator('#message').waitFor({ timeout: STEP_MS });
    await allActionButtonsDisabled(page, 'admin.token');
    await shot(page, 'readonly');
  },
};

async function main() {
  const run = scenarios[scenario];
  if (!run || !base) throw new Error(`usage: console.test.js (${Object.keys(scenarios).join('|')}) BASE_URL [name=value ...]`);
  const origin = new URL(base).origin;
  fs.mkdirSync(shots, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ctxd-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 800 },
  });
  const problems = [];
  const toasts = [];
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure().errorText}`));
    page.on('request', (r) => new URL(r.url()).origin !== origin && !r.url().startsWith('data:') && problems.push(`request elsewhere: ${r.url()}`));
    page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`));
    // what the page told the operator, for the failure message (toasts go away)
    await page.exposeBinding('ctxdToast', (source, text) => toasts.push(text));
    await page.addInitScript(() => new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach((n) => n.classList && n.classList.contains('toast') && window.ctxdToast(n.textContent))))
      .observe(document, { childList: true, subtree: true }));
    await run(page);
    if (problems.length) throw new Error(problems.join('\n'));
  } catch (e) {
    if (problems.length && !e.message.includes(problems[0])) e.message += `\nalso seen:\n${problems.join('\n')}`;
    if (toasts.length) e.message += `\nresults shown:\n${toasts.join('\n')}`;
    try {
      const page = context.pages()[0];
      if (page) await page.screenshot({ path: path.join(shots, `failed-${scenario}.png`) });
    } catch (ignored) {
      // the failure is what counts
    }
    throw e;
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

// a last resort: the driver's own deadline is longer
setTimeout(() => {
  log(`${scenario}: still running after ${SCENARIO_MS} ms`);
  process.exit(3);
}, SCENARIO_MS).unref();

main().then(
  () => log(`${scenario}: passed`),
  (e) => {
    log(`${scenario}: FAILED: ${e.message}`);
    process.exitCode = 1;
  },
);
