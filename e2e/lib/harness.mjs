// Test support: the real `homeward` server on a free port with a fresh data directory, Debian's
// Chromium driven by playwright-core, a phone-sized browser context, and a small API client.

import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCREENSHOTS = path.join(REPO, 'e2e', 'screenshots');

/** The demo school's people (seeded by `serve --demo`). */
export const DEMO_PASSWORD = 'demo-password-1';
export const STAFF = 'dana.whitfield@demo.homeward.test';
export const LEADER = 'priya.okafor@demo.homeward.test';
export const DSL = 'tomasz.brennan@demo.homeward.test';
export const ADMIN = 'morgan.ellery@demo.homeward.test';

/** Near Bristol city centre. */
export const POSITION = { latitude: 51.4545, longitude: -2.5879, accuracy: 12 };

export const CHROMIUM = process.env.HOMEWARD_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--lang=en-GB', // dates in the form fields as a UK phone shows them
];

function binary() {
  if (process.env.HOMEWARD_BIN) return process.env.HOMEWARD_BIN;
  for (const profile of ['debug', 'release']) {
    const candidate = path.join(REPO, 'target', profile, 'homeward');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('no homeward binary: run `cargo build -p homeward-server --bin homeward` or set HOMEWARD_BIN');
}

export function webDir() {
  return path.resolve(REPO, process.env.HOMEWARD_WEB_DIR || path.join('mobile', 'dist'));
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Start `homeward serve --demo` on a free port with a fresh SQLite data directory, serving the web
 * build. Resolves once it prints `listening on http://ADDR`.
 */
export async function startServer({ env = {} } = {}) {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'homeward-e2e-'));
  const inherited = { ...process.env };
  delete inherited.DATABASE_URL; // always the fresh SQLite file in the data directory
  const child = spawn(binary(), ['serve', '--demo'], {
    cwd: REPO,
    env: {
      ...inherited,
      HOMEWARD_BIND: `127.0.0.1:${port}`,
      HOMEWARD_DATA_DIR: dataDir,
      HOMEWARD_WEB_DIR: webDir(),
      RUST_LOG: process.env.RUST_LOG || 'warn',
      NO_COLOR: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s:\n${output}`)), 60_000);
    const onData = (chunk) => {
      output += chunk.toString();
      const match = output.match(/listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1].replace(/\/$/, ''));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${output}`));
    });
  });
  let exited = false;
  const done = new Promise((resolve) => child.on('exit', () => { exited = true; resolve(); }));
  return {
    url,
    port,
    /** The SQLite database this server writes (for tests that alter a row behind its back). */
    database: path.join(dataDir, 'homeward.db'),
    output: () => output,
    /** Stop it (SIGTERM, as an operator would) and wait for it to exit. */
    async stop({ keepData = false } = {}) {
      if (!exited) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await done;
        clearTimeout(killer);
      }
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  // playwright-core gives every launch a fresh, empty --user-data-dir of its own.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** A phone: 360×740, touch, geolocation granted at POSITION. */
export async function phoneContext(browser, baseURL, options = {}) {
  const context = await browser.newContext({
    baseURL,
    viewport: { width: 360, height: 740 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    geolocation: POSITION,
    permissions: ['geolocation', 'notifications'],
    locale: 'en-GB',
    timezoneId: 'Europe/London',
    userAgent:
      'Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36',
    ...options,
  });
  context.setDefaultTimeout(15_000);
  return context;
}

/**
 * Record what the page reports: console errors, uncaught errors, and Content-Security-Policy violations
 * (caught in the page, where the browser reports them).
 */
export async function watchPage(page) {
  const problems = { console: [], errors: [], csp: [] };
  await page.exposeFunction('__homewardReportCsp', (violation) => problems.csp.push(violation));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__homewardReportCsp(
        `${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber} (${location.pathname})`,
      );
    });
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.console.push(message.text());
  });
  page.on('pageerror', (error) => problems.errors.push(String(error)));
  problems.http = [];
  page.on('response', (response) => {
    if (response.status() >= 400) {
      problems.http.push(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`);
    }
  });
  problems.cspViolations = async () => [...problems.csp];
  return problems;
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

/** Poll `check` until it returns a truthy value; fail with `what` and the last value after `timeout`. */
export async function eventually(what, check, { timeout = 15_000, interval = 250 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The HTTP API from Node, outside the browser (unaffected by the browser's offline emulation). */
export class Api {
  constructor(base, token = null, refreshToken = null) {
    this.base = base;
    this.token = token;
    this.refreshToken = refreshToken;
    this.renewals = 0;
  }

  static async signIn(base, email, password = DEMO_PASSWORD) {
    const api = new Api(base);
    const body = await api.request('POST', '/api/v1/auth/login', { email, password });
    const token = body.access_token || body.token;
    if (!token) throw new Error(`no token in the login answer: ${JSON.stringify(body)}`);
    return new Api(base, token, body.refresh_token);
  }

  /** Renew the device sign-in (as the phone does): the next refresh token is made here. */
  async renew() {
    const next = `e2e.${randomBytes(32).toString('hex')}`;
    const body = await this.send('POST', '/api/v1/auth/refresh', { refresh_token: this.refreshToken, next_refresh_token: next }, false);
    this.token = body.token;
    this.refreshToken = next;
    this.renewals += 1;
  }

  async request(method, path, body) {
    try {
      return await this.send(method, path, body, true);
    } catch (e) {
      if (!(e.status === 401 && this.refreshToken)) throw e;
      await this.renew();
      return this.send(method, path, body, true);
    }
  }

  async send(method, path, body, authorised) {
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(authorised && this.token ? { authorization: `Bearer ${this.token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      throw Object.assign(new Error(`${method} ${path}: HTTP ${response.status}: ${text}`), { status: response.status });
    }
    return text ? JSON.parse(text) : null;
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body = {}) {
    return this.request('POST', path, body);
  }

  /** The whole audit log (DSL or admin), oldest first. */
  async audit() {
    const entries = [];
    let after = 0;
    for (;;) {
      const page = await this.get(`/api/v1/audit?after_seq=${after}&limit=1000`);
      entries.push(...page);
      if (page.length < 1000) return entries;
      after = page[page.length - 1].seq;
    }
  }
}
