// Browser scenarios for the demo sign-in page, in headless Chromium driven by playwright-core.
//
//   node tests/browser/flows.mjs SCENARIO < config.json
//
// SCENARIO: otp | wrong_code | login | session | challenge | disallowed_origin. The config (written by
// tests/browser/test_browser.py, which starts the stack on free ports) gives the page's
// URLs, the phones and accounts to use and where screenshots go. The last line printed
// is a JSON result ({"ok": true, ...} or {"ok": false, "error": ...}); exit 1 on failure.
//
// Environment:
//   PLAYWRIGHT_CORE_PATH  the playwright-core package (or a node_modules holding it);
//                         default: the repository's node_modules/playwright-core
//   CHROMIUM_PATH         the browser; default /usr/bin/chromium (Debian's `chromium`).
//                         playwright-core never downloads a browser of its own here.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);

function playwrightCore() {
  const configured = process.env.PLAYWRIGHT_CORE_PATH || join(REPO, 'node_modules', 'playwright-core');
  const dir = existsSync(join(configured, 'package.json')) ? configured : join(configured, 'playwright-core');
  return require(dir);
}

const { chromium } = playwrightCore();
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const LAUNCH = {
  headless: true,
  executablePath: CHROMIUM,
  // launch() gives every run a fresh temporary user-data-dir (deleted on close).
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wait until `locator`'s text matches `pattern`; its text. */
async function waitText(locator, pattern, timeout = 20000) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = ((await locator.textContent({ timeout: 1000 }).catch(() => '')) || '').trim();
    if (pattern.test(last)) return last;
    await sleep(100);
  }
  throw new Error(`expected ${pattern} in ${locator}, last text ${JSON.stringify(last)}`);
}

async function waitValue(locator, pattern, timeout = 20000) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = await locator.inputValue().catch(() => '');
    if (pattern.test(last)) return last;
    await sleep(100);
  }
  throw new Error(`expected a value matching ${pattern} in ${locator}, got ${JSON.stringify(last)}`);
}

async function activeId(page) {
  return page.evaluate(() => document.activeElement && document.activeElement.id);
}

async function claimsOf(page, resultSelector) {
  return page.$$eval(`${resultSelector} table tbody tr`, (rows) =>
    Object.fromEntries(rows.map((r) => [r.querySelector('th').textContent, r.querySelector('td').textContent])),
  );
}

/** One browser, one page; `shot(label)` saves test-artifacts/browser/SCENARIO-NN-label.png. */
async function withPage(config, scenario, run) {
  mkdirSync(config.artifacts, { recursive: true });
  for (const file of readdirSync(config.artifacts)) {
    if (file.startsWith(`${scenario}-`) && file.endsWith('.png')) rmSync(join(config.artifacts, file));
  }
  const browser = await chromium.launch(LAUNCH);
  const context = await browser.newContext({ viewport: { width: 900, height: 900 }, locale: 'en-US' });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  const screenshots = [];
  const shot = async (label) => {
    const file = join(config.artifacts, `${scenario}-${String(screenshots.length + 1).padStart(2, '0')}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    screenshots.push(file);
  };
  try {
    const result = await run({ page, shot, consoleLines });
    const pageErrors = consoleLines.filter((l) => l.startsWith('pageerror'));
    assert.deepEqual(pageErrors, [], 'the page threw');
    return { ...result, screenshots, console: consoleLines };
  } catch (error) {
    await shot('failure').catch(() => {});
    error.details = { screenshots, console: consoleLines };
    throw error;
  } finally {
    await browser.close();
  }
}

async function open(page, url, lang) {
  await page.goto(`${url}?lang=${lang}`);
  await page.locator('body[data-ready="true"]').waitFor();
  assert.equal(await page.getAttribute('html', 'lang'), lang);
}

async function outboxCode(site, phone) {
  const response = await fetch(`${site}dev/outbox?phone=${encodeURIComponent(phone)}`);
  const data = await response.json();
  return data.messages[0]?.code;
}

// ------------------------------------------------------------------------------ scenarios
const scenarios = {
  /** Phone sign-in in French, by keyboard: send, read the code from the dev outbox, verify, claims. */
  async otp(config) {
    return withPage(config, 'otp', async ({ page, shot }) => {
      await open(page, config.site, 'fr');
      const otp = page.locator('#otp');
      await otp.getByLabel('Numéro de mobile').focus();
      await page.keyboard.type(config.phone);
      await shot('phone-entered');
      await page.keyboard.press('Enter'); // the form submits from the keyboard

      const code = otp.getByLabel('Code reçu');
      await code.waitFor({ state: 'visible' });
      assert.equal(await activeId(page), 'otp-code', 'focus moves to the code field');
      await waitText(page.locator('#send-status'), new RegExp(`^Un code a été envoyé au ${escape(config.phone)}\\. Il est valable 5 min`));
      await shot('code-sent');

      await otp.getByRole('button', { name: "Lire le code dans la boîte d'envoi de dev" }).click();
      const value = await waitValue(code, /^\d{6}$/);
      await waitText(page.locator('#otp-outbox-status'), /Code lu dans la boîte d'envoi de dev/);
      await shot('code-from-outbox');

      await code.focus();
      await page.keyboard.press('Enter');
      await page.locator('#otp-result').waitFor({ state: 'visible' });
      assert.equal(await activeId(page), 'otp-result-title', 'focus moves to the result');
      await waitText(page.locator('#otp-result .signature'), /^Signature vérifiée avec la clé \S+ du JWKS/);
      const claims = await claimsOf(page, '#otp-result');
      assert.equal(claims.sub, `phone:${config.phone}`);
      assert.equal(claims.phone_number, config.phone);
      assert.equal(claims.amr, 'otp');
      await shot('token-claims');
      return { code: value, claims };
    });
  },

  /** A phone sign-in survives two reloads (the refresh token rotates each time), then signs out. */
  async session(config) {
    return withPage(config, 'session', async ({ page, shot }) => {
      await open(page, config.site, 'en');
      const otp = page.locator('#otp');
      await otp.getByLabel('Mobile number').fill(config.sessionPhone);
      await otp.getByRole('button', { name: 'Send code' }).click();
      const code = otp.getByLabel('Code received');
      await code.waitFor({ state: 'visible' });
      await code.fill(await outboxCode(config.site, config.sessionPhone));
      await otp.getByRole('button', { name: 'Verify' }).click();
      await page.locator('#otp-result').waitFor({ state: 'visible' });
      const stored = () => page.evaluate(() => localStorage.getItem('otplogin.refresh_token'));
      const tokens = [await stored()];
      assert.ok(tokens[0], 'the sign-in stored a refresh token');
      for (let reload = 0; reload < 2; reload += 1) {
        await page.reload();
        await page.locator('body[data-ready="true"]').waitFor();
        await page.locator('#session').waitFor({ state: 'visible' });
        await waitText(page.locator('#session-status'), /^Session restored after reloading the page/);
        tokens.push(await stored());
      }
      assert.equal(new Set(tokens).size, 3, 'each load rotated the refresh token');
      const claims = await claimsOf(page, '#session');
      await shot('session-restored');
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await waitText(page.locator('#session-ended'), /^You are signed out\./);
      assert.equal(await stored(), null, 'signing out forgets the token');
      await page.reload();
      await page.locator('body[data-ready="true"]').waitFor();
      assert.equal(await page.locator('#session').isHidden(), true, 'no session after signing out');
      await shot('signed-out');
      return { claims, tokens };
    });
  },

  /** send_otp asks for a challenge: the ALTCHA widget appears, solves it, and the code is sent. */
  async challenge(config) {
    return withPage(config, 'challenge', async ({ page, shot }) => {
      await open(page, config.site, 'en');
      const otp = page.locator('#otp');
      await otp.getByLabel('Mobile number').fill(config.challengePhone);
      const answers = [];
      page.on('response', async (r) => {
        if (r.request().method() === 'POST') answers.push(r.status());
      });
      // The widget is added once its script has loaded and removed once solved: watch for it rather
      // than look at one instant (under load the check could run before it exists, or after it left).
      await page.evaluate(() => {
        window.challengeSeen = false;
        new MutationObserver(() => {
          if (document.querySelector('#challenge altcha-widget')) window.challengeSeen = true;
        }).observe(document.getElementById('challenge'), { childList: true, subtree: true });
      });
      await otp.getByRole('button', { name: 'Send code' }).click();
      await waitText(page.locator('#challenge-status'), /^Many codes are being asked for numbers like yours/);
      await shot('challenge');
      const code = otp.getByLabel('Code received');
      await code.waitFor({ state: 'visible', timeout: 60000 });
      const challengeShown = await page.evaluate(() => window.challengeSeen);
      assert.deepEqual(answers, [403, 202], 'one challenge, then the same send with the solution');
      assert.equal(await page.locator('#challenge').isHidden(), true, 'the widget is gone once the code is sent');
      await waitText(page.locator('#send-status'), new RegExp(`^A code was sent to ${escape(config.challengePhone)}`));
      await shot('code-sent');
      const value = await outboxCode(config.site, config.challengePhone);
      await code.fill(value);
      await otp.getByRole('button', { name: 'Verify' }).click();
      await page.locator('#otp-result').waitFor({ state: 'visible' });
      const claims = await claimsOf(page, '#otp-result');
      await shot('verified');
      return { code: value, claims, challengeShown };
    });
  },

  /** A wrong code: the API's invalid_code shown with the attempts left, in English then French. */
  async wrong_code(config) {
    return withPage(config, 'wrong_code', async ({ page, shot }) => {
      await open(page, config.site, 'en');
      const otp = page.locator('#otp');

      await otp.getByLabel('Mobile number').fill('+243 12');
      await otp.getByRole('button', { name: 'Send code' }).click();
      const sendError = page.locator('#send-error');
      await waitText(sendError, /^This is not a valid mobile number\. Use the international format/);
      assert.equal(await sendError.getAttribute('data-code'), 'invalid_phone');
      assert.equal(await otp.getByLabel('Mobile number').getAttribute('aria-invalid'), 'true');
      await shot('invalid-phone');

      await otp.getByLabel('Mobile number').fill(config.wrongCodePhone);
      await otp.getByRole('button', { name: 'Send code' }).click();
      const code = otp.getByLabel('Code received');
      await code.waitFor({ state: 'visible' });
      const real = await outboxCode(config.site, config.wrongCodePhone);
      assert.match(real, /^\d{6}$/);
      const wrong = real.slice(0, -1) + String((Number(real.at(-1)) + 1) % 10);
      await code.fill(wrong);
      await otp.getByRole('button', { name: 'Verify' }).click();

      const error = page.locator('#verify-error');
      await waitText(error, /^This code is not correct\. 4 attempts left\./);
      assert.equal(await error.getAttribute('role'), 'alert');
      assert.equal(await error.getAttribute('data-code'), 'invalid_code');
      assert.equal(await code.getAttribute('aria-invalid'), 'true');
      assert.equal(await activeId(page), 'otp-code', 'focus returns to the code field');
      await shot('wrong-code-en');

      await page.getByLabel('Language').selectOption('fr');
      await waitText(error, /^Ce code est incorrect\. Il vous reste 4 essais\./);
      await waitText(page.locator('#otp-title'), /^Connexion avec votre téléphone$/);
      await shot('wrong-code-fr');
      return { wrong, attempts_text: await error.textContent() };
    });
  },

  /** Email + password: a wrong password, the decrypted profile, then a user with a second factor. */
  async login(config) {
    return withPage(config, 'login', async ({ page, shot }) => {
      await open(page, config.site, 'en');
      const login = page.locator('#login');
      const identifier = login.getByLabel('Email or user code');
      const password = login.getByLabel('Password');

      await identifier.fill(config.demoEmail);
      await password.fill('not the password');
      await password.press('Enter');
      const error = page.locator('#login-error');
      await waitText(error, /^The email, user code or password is not correct\./);
      assert.equal(await error.getAttribute('data-code'), 'invalid_credentials');
      await shot('wrong-password');

      await password.fill(config.password);
      await password.press('Enter');
      await page.locator('#login-result').waitFor({ state: 'visible' });
      await waitText(page.locator('#login-result-title'), new RegExp(`^Signed in as ${config.demoEmail}$`));
      const profile = await page.$$eval('#profile dt', (dts) =>
        Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])),
      );
      assert.equal(profile.Address, config.demoAddress);
      assert.equal(profile.Phone, config.demoPhone);
      await waitText(page.locator('#login-result .signature'), /^Signature verified with key /);
      const claims = await claimsOf(page, '#login-result');
      assert.equal(claims.email, config.demoEmail);
      assert.equal(claims.amr, 'pwd');
      await shot('profile');

      await login.getByRole('button', { name: 'Start over' }).click();
      assert.equal(await activeId(page), 'identifier');
      await identifier.fill(config.mfaEmail);
      await password.fill(config.password);
      await login.getByRole('button', { name: 'Sign in' }).click();
      const mfaCode = login.getByLabel('Code sent to your phone');
      await mfaCode.waitFor({ state: 'visible' });
      const hint = config.mfaPhone.slice(0, 4) + '*'.repeat(config.mfaPhone.length - 6) + config.mfaPhone.slice(-2);
      await waitText(page.locator('#mfa-status'), new RegExp(`^Enter the code sent by SMS to ${escape(hint)}\\.`));
      assert.equal(await activeId(page), 'mfa-code');
      await shot('second-factor');

      await login.getByRole('button', { name: 'Read the code from the dev outbox' }).click();
      await waitValue(mfaCode, /^\d{6}$/);
      await mfaCode.press('Enter');
      await waitText(page.locator('#login-result-title'), /^Signed in with password and code$/);
      assert.equal(await page.locator('#profile-block').isHidden(), true);
      await waitText(page.locator('#login-result .signature'), /^Signature verified with key /);
      const mfaClaims = await claimsOf(page, '#login-result');
      assert.equal(mfaClaims.email, config.mfaEmail);
      assert.equal(mfaClaims.amr, 'pwd, otp');
      await shot('second-factor-signed-in');
      return { profile, claims, mfaClaims };
    });
  },

  /** The same page from an origin the functions do not allow: the browser refuses the calls. */
  async disallowed_origin(config) {
    return withPage(config, 'disallowed_origin', async ({ page, shot, consoleLines }) => {
      await open(page, config.otherSite, 'en');
      const otp = page.locator('#otp');
      await otp.getByLabel('Mobile number').fill(config.blockedPhone);
      await otp.getByRole('button', { name: 'Send code' }).click();
      const error = page.locator('#send-error');
      const origin = new URL(config.otherSite).origin;
      const shown = await waitText(error, /^The service could not be reached\./);
      assert.ok(shown.includes(`(${origin})`), 'the message names the page origin');
      assert.ok(shown.includes('CORS'), 'the message mentions CORS');
      assert.ok(shown.includes('TypeError: Failed to fetch'), `technical detail shown: ${shown}`);
      assert.equal(await error.getAttribute('data-code'), 'network');
      assert.equal(await page.locator('#verify-form').isHidden(), true);
      await shot('refused');

      // A GET needs no preflight, yet its answer is still withheld from this origin.
      const jwks = await page.evaluate(async (url) => {
        try {
          await fetch(url);
          return 'ok';
        } catch (e) {
          return `${e.name}: ${e.message}`;
        }
      }, config.jwks);
      assert.equal(jwks, 'TypeError: Failed to fetch');
      const blocked = consoleLines.filter((l) => /blocked by CORS policy/.test(l));
      assert.ok(
        blocked.some((l) => l.includes(`from origin '${origin}'`) && /preflight/i.test(l)),
        `Chromium reports the refused preflight: ${JSON.stringify(consoleLines)}`,
      );
      return { shown, jwks, blocked };
    });
  },
};

async function main() {
  const name = process.argv[2];
  if (!scenarios[name]) {
    console.error(`usage: node flows.mjs {${Object.keys(scenarios).join('|')}} < config.json`);
    process.exit(2);
  }
  const config = JSON.parse(readFileSync(0, 'utf8'));
  try {
    const result = await scenarios[name](config);
    console.log(JSON.stringify({ ok: true, scenario: name, ...result }));
  } catch (error) {
    console.log(JSON.stringify({ ok: false, scenario: name, error: String(error.stack || error), ...(error.details || {}) }));
    process.exit(1);
  }
}

await main();
