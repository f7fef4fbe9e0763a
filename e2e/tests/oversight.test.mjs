// Leaders and the DSL, end to end: the real server, the real web build, Debian's Chromium with two phones,
// a member of staff and a leader (and then the DSL).
//
// The staff member's visit misses its deadline under a plan whose steps are seconds apart; the leader's
// live board turns it overdue by Server-Sent Events without reloading; the leader opens the alert, takes
// ownership and asks "Are you OK?", which the worker answers in one tap on their phone; the leader
// resolves it. The DSL finds it in the review queue and marks it reviewed; the CSV export holds the
// session; the audit view says the chain is intact, and broken once a row is altered in the database.
//
// A visit lasts at least five minutes, and a start cannot be dated before the visit was planned: the
// test's one fixture is to write the visit's planning time six minutes back in the database, so that a
// start dated 4 min 52 s ago is accepted and its deadline falls eight seconds from now. Everything after
// that is the server's own doing.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';

import {
  ADMIN,
  Api,
  DEMO_PASSWORD,
  DSL,
  LEADER,
  POSITION,
  STAFF,
  eventually,
  launchBrowser,
  phoneContext,
  screenshot,
  startServer,
  watchPage,
} from '../lib/harness.mjs';

const $ = (testid) => `[data-testid="${testid}"]`;

function sql(database, statement) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 10000', database, statement], { encoding: 'utf8' }).trim();
}

describe('leaders and the DSL watch, own, resolve and review', () => {
  let server;
  let browser;
  const phones = {};
  let failed = null;
  const visit = {};
  let staff;
  let leader;

  function step(name, body) {
    it(name, async (t) => {
      if (failed) {
        t.skip(`skipped: "${failed}" failed`);
        return;
      }
      try {
        await body(t);
      } catch (error) {
        failed = name;
        for (const [who, phone] of Object.entries(phones)) {
          await screenshot(phone.page, `failed-oversight-${who}`).catch(() => {});
          const text = await phone.page.evaluate(() => document.body?.innerText?.slice(0, 1200)).catch(() => '');
          error.message += `\n  ${who} at ${phone.page.url()}: ${JSON.stringify(text)}`;
        }
        throw error;
      }
    });
  }

  async function phone(who, email) {
    const context = await phoneContext(browser, server.url);
    const page = await context.newPage();
    const problems = await watchPage(page);
    await page.goto('/signin');
    await page.locator('input[name=email]').fill(email);
    await page.locator('input[name=password]').fill(DEMO_PASSWORD);
    await page.locator($('sign-in')).click();
    await page.locator($('today')).waitFor({ state: 'visible' });
    phones[who] = { context, page, problems };
    return phones[who];
  }

  before(async () => {
    // Tiles from this server, which has none: the map must still show its markers.
    server = await startServer({ env: { HOMEWARD_MAP_TILE_URL: 'http://127.0.0.1:9/tiles/{z}/{x}/{y}.png' } });
    browser = await launchBrowser();
    staff = await Api.signIn(server.url, STAFF);
    leader = await Api.signIn(server.url, LEADER);
  });

  after(async () => {
    for (const phone of Object.values(phones)) {
      const violations = await phone.problems.cspViolations();
      assert.deepEqual(violations, [], 'no Content-Security-Policy violations');
      assert.deepEqual(phone.problems.errors, [], 'no uncaught errors in the page');
    }
    await browser?.close();
    await server?.stop();
  });

  step('a plan of seconds, and a five-minute visit planned six minutes ago', async () => {
    const admin = await Api.signIn(server.url, ADMIN);
    const plan = await admin.post('/api/v1/escalation-plans', {
      name: 'Seconds (browser test)',
      steps: [
        { delay_seconds: 0, recipients: [{ type: 'worker' }], channels: ['push'], instruction: 'Check in now.' },
        { delay_seconds: 2, recipients: [{ type: 'line_manager' }], channels: ['push'], instruction: 'Phone the worker now.' },
        { delay_seconds: 4, recipients: [{ type: 'role', role: 'dsl' }], channels: ['push'], instruction: 'Call 999.' },
      ],
      repeat_every_seconds: 3,
    });
    const session = await staff.post('/api/v1/sessions', {
      kind: 'home_visit',
      sub_kind: 'procedural',
      address: '3 Quayside Court, Bristol',
      location: { latitude: POSITION.latitude, longitude: POSITION.longitude },
      pupil_reference: 'ADM-3003',
      household_notes: 'Grandmother and one child; no animals.',
      planned_start: new Date(Date.now() - 6 * 60_000).toISOString(),
      expected_duration_minutes: 5,
      escalation_plan_id: plan.id,
      risk_assessment: {
        factors: ['environment_and_location', 'nature_of_task', 'individuals_and_history', 'previous_incidents',
          'risk_of_allegation', 'animals', 'other'].map((factor) => ({ factor, level: 'low', notes: '' })),
        overall: 'low',
      },
    });
    visit.id = session.id;
    const moved = Date.now() - 6 * 60_000;
    sql(server.database, `update sessions set created_at = ${moved} where session_id = '${visit.id}'`);
  });

  step('the leader opens the live board', async () => {
    const { page } = await phone('leader', LEADER);
    await page.locator($('nav-board')).click();
    await page.waitForURL('**/board');
    await page.locator(`${$('board-live')}[data-live="true"]`).waitFor();
    // A mark that a reload would wipe.
    await page.evaluate(() => { window.__notReloaded = true; });
  });

  step('the staff member starts the visit (their phone was offline) and it shows on the board', async () => {
    const started = new Date(Date.now() - (4 * 60 + 52) * 1000).toISOString();
    await staff.post(`/api/v1/sessions/${visit.id}/events`, {
      events: [{ id: randomUUID(), at: started, type: 'start', location: { latitude: POSITION.latitude, longitude: POSITION.longitude } }],
    });
    await staff.post(`/api/v1/sessions/${visit.id}/pings`, {
      pings: [{ id: randomUUID(), at: new Date().toISOString(), latitude: POSITION.latitude, longitude: POSITION.longitude, accuracy_m: 15, battery_percent: 71 }],
    });
    const { page } = phones.leader;
    const item = page.locator(`${$('board-item')}[data-session-id="${visit.id}"]`);
    await item.waitFor();
    assert.equal(await item.getAttribute('data-status'), 'active');
    assert.match(await item.innerText(), /Dana Whitfield/);
    assert.match(await item.innerText(), /Battery 71%/);
    // The map draws the marker though no tile loads.
    await page.locator($('map-marker')).first().waitFor();
    await screenshot(page, '20-board-active');
  });

  step('the staff member sees the visit on their phone', async () => {
    const { page } = await phone('staff', STAFF);
    await page.goto(`/visit/${visit.id}`);
    await page.locator($('visit-status')).waitFor();
  });

  step('the deadline passes: the board turns overdue by itself, without a reload', async () => {
    const { page } = phones.leader;
    const item = page.locator(`${$('board-item')}[data-session-id="${visit.id}"]`);
    await eventually('the board to say overdue', async () => (await item.getAttribute('data-status')) === 'overdue', { timeout: 30_000 });
    assert.equal(await item.locator($('board-status')).textContent(), 'Overdue', 'in words, not colour alone');
    await eventually('the overdue time counting up', async () => /OVERDUE \+/.test(await item.innerText()));
    assert.equal(await page.evaluate(() => window.__notReloaded), true, 'the page was not reloaded');
    // Overdue comes first.
    assert.equal(await page.locator($('board-item')).first().getAttribute('data-session-id'), visit.id);
    await screenshot(page, '21-board-overdue');
  });

  step('the leader opens the alert and takes ownership', async () => {
    const { page } = phones.leader;
    const item = page.locator(`${$('board-item')}[data-session-id="${visit.id}"]`);
    await item.locator($('open-alert')).waitFor();
    await item.locator($('open-alert')).click();
    await page.waitForURL('**/alerts/**');
    visit.alertId = new URL(page.url()).pathname.split('/').pop();
    await page.locator($('alert-kind')).waitFor();
    assert.match(await page.locator($('alert-kind')).innerText(), /Missed deadline/);
    assert.match(await page.locator($('household-notes')).innerText(), /Grandmother/);
    await page.locator($('take-ownership')).click();
    await eventually('the alert owned', async () => /owned by you/.test(await page.locator($('alert-status')).innerText()));
    const alert = await leader.get(`/api/v1/alerts/${visit.alertId}`);
    assert.equal(alert.status, 'acknowledged');
    assert.equal(alert.session_id, visit.id);
  });

  step('the leader asks "Are you OK?" and the worker answers in one tap', async () => {
    const { page } = phones.leader;
    await page.locator($('quick-question')).first().click();
    await page.locator($('message')).first().waitFor();
    const worker = phones.staff.page;
    const reply = worker.locator($('quick-reply')).first();
    await reply.waitFor({ timeout: 20_000 });
    assert.match(await worker.locator($('visit-messages')).innerText(), /Are you OK\?/);
    await screenshot(worker, '22-worker-asked');
    await reply.click();
    await eventually('the answer on the leader\'s screen', async () =>
      (await page.locator(`${$('message')}[data-direction="from_worker"]`).count()) > 0, { timeout: 20_000 });
  });

  step('the leader resolves the alert', async () => {
    const { page } = phones.leader;
    await page.locator('input[name=resolution][value=worker_safe]').check();
    await page.locator('textarea[name=notes]').fill('Dana answered on the app: phone had been on silent.');
    await page.locator($('resolve')).click();
    await eventually('the alert resolved', async () => /resolved/.test(await page.locator($('alert-status')).innerText()));
    const alert = await leader.get(`/api/v1/alerts/${visit.alertId}`);
    assert.equal(alert.status, 'resolved');
    assert.equal(alert.resolution, 'worker_safe');
    await screenshot(page, '23-alert-resolved');
  });

  step('the DSL finds it in the review queue and marks it reviewed', async () => {
    const { page } = await phone('dsl', DSL);
    await page.locator($('nav-reviews')).click();
    await page.waitForURL('**/reviews');
    const item = page.locator(`${$('review-item')}[data-session-id="${visit.id}"]`);
    await item.waitFor();
    assert.equal(await item.getAttribute('data-kind'), 'resolved_alarm');
    assert.match(await item.innerText(), /phone had been on silent/);
    await item.locator('textarea[name=action_taken]').fill('Reminded Dana to keep the app audible on visits.');
    await item.locator($('mark-reviewed')).click();
    await eventually('the item gone from the waiting queue', async () =>
      (await page.locator(`${$('review-item')}[data-session-id="${visit.id}"]`).count()) === 0);
    await screenshot(page, '24-reviews');
  });

  step('the CSV export holds the session', async () => {
    const { page } = phones.dsl;
    await page.locator($('nav-records')).click();
    await page.waitForURL('**/records');
    const today = new Date().toISOString().slice(0, 10);
    await page.locator('input[name=from]').fill(today);
    await page.locator('input[name=to]').fill(today);
    await page.locator($('run-export')).click();
    await page.locator($('export-result')).waitFor();
    assert.ok(Number(await page.locator($('export-result')).getAttribute('data-rows')) >= 1);
    // Saved as a file, as the DSL would.
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator($('download-csv')).click()]);
    assert.match(download.suggestedFilename(), new RegExp(`^homeward-sessions-${today}-to-${today}\\.csv$`));
    const csv = readFileSync(await download.path(), 'utf8');
    const row = csv.split('\n').find((line) => line.startsWith(visit.id));
    assert.ok(row, `the export has the session: ${csv.slice(0, 400)}`);
    assert.match(row, /Dana Whitfield/);
    assert.match(row, /missed_deadline/);
    assert.match(row, /worker_safe/);
    await page.locator($('figures')).waitFor();
    await screenshot(page, '25-records');
  });

  step('the audit view says the chain is intact, then broken after a row is altered', async () => {
    const { page } = phones.dsl;
    await page.locator($('nav-audit')).click();
    await page.waitForURL('**/audit');
    const verdict = page.locator($('audit-verdict'));
    await verdict.waitFor();
    assert.equal(await verdict.getAttribute('data-intact'), 'true');
    assert.match(await verdict.innerText(), /Intact/);
    await screenshot(page, '26-audit-intact');
    // Behind the server's back: the database's own guard removed, one past entry edited.
    const school = sql(server.database, `select school_id from sessions where session_id = '${visit.id}'`);
    sql(server.database, 'drop trigger if exists audit_log_no_update');
    sql(server.database, `update audit_log set detail = 'nothing happened' where school_id = '${school}' and seq = 3`);
    await page.locator($('check-audit')).click();
    await eventually('the chain reported broken', async () => (await verdict.getAttribute('data-intact')) === 'false');
    assert.match(await verdict.innerText(), /BROKEN/);
    assert.match(await verdict.innerText(), /entry 3/);
    await screenshot(page, '27-audit-broken');
  });
});
