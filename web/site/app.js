// The demo sign-in page: calls send_otp, verify_otp and login straight from the browser
// (CORS), maps their error codes to sentences in English or French, and shows the
// token's claims after checking its signature against login's JWKS.
// config.json (written by web/devserver.py) gives the function URLs and, in local mode only,
// the dev outbox endpoint that reads the codes the development SMS sink recorded.
// A sign-in's refresh token is kept in localStorage and traded at login on every load,
// so the session survives a reload (a demo: a real app keeps it where scripts of other
// origins and extensions cannot read it, such as the platform's secure storage).

import { LANGUAGES, errorText, text } from './i18n.js';

const $ = (id) => document.getElementById(id);
const state = { lang: 'en', config: null, otpPhone: null, mfa: null, dynamic: new Map(), access: null };
const SESSION_KEY = 'otplogin.refresh_token';

// ---------------------------------------------------------------------------- texts
function t(key, params) {
  return text(state.lang, key, params);
}

/** Show what `render()` returns in `el`, and render it again when the language changes. */
function say(el, render) {
  state.dynamic.set(el, render);
  paint(el);
}

function paint(el) {
  const render = state.dynamic.get(el);
  el.replaceChildren();
  if (!render) return;
  const out = render();
  if (typeof out === 'string') el.textContent = out;
  else el.append(out);
}

function clear(...elements) {
  for (const el of elements) {
    state.dynamic.delete(el);
    el.replaceChildren();
    delete el.dataset.code;
  }
}

function setLanguage(lang) {
  state.lang = LANGUAGES.includes(lang) ? lang : 'en';
  document.documentElement.lang = state.lang;
  document.title = t('page.title');
  $('lang').value = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of state.dynamic.keys()) paint(el);
}

function element(tag, props = {}, ...children) {
  const el = Object.assign(document.createElement(tag), props);
  el.append(...children);
  return el;
}

// ---------------------------------------------------------------------------- errors
class Failure extends Error {
  constructor(kind, { status = 0, code = null, data = {}, retryAfter = null, detail = '' } = {}) {
    super(detail || kind);
    Object.assign(this, { kind, status, code, data, retryAfter, detail });
  }
}

/** An error in `el` (a role="alert" region); the fields at fault get aria-invalid. */
function showError(el, failure, fields = []) {
  if (!(failure instanceof Failure)) failure = new Failure('unexpected', { detail: String(failure) });
  el.dataset.code = failure.code || failure.kind;
  say(el, () => {
    const box = element('div');
    box.append(element('p', { textContent: errorText(state.lang, failure, location.origin) }));
    if (failure.detail) {
      box.append(element('p', { className: 'detail', textContent: `${t('detail')}: ${failure.detail}` }));
    }
    return box;
  });
  for (const field of fields) field.setAttribute('aria-invalid', 'true');
}

function showProblem(el, key, field) {
  el.dataset.code = key;
  say(el, () => t(key));
  if (field) {
    field.setAttribute('aria-invalid', 'true');
    field.focus();
  }
}

function resetErrors(form) {
  for (const field of form.querySelectorAll('[aria-invalid]')) field.removeAttribute('aria-invalid');
  clear(...form.querySelectorAll('[role="alert"]'));
}

// ---------------------------------------------------------------------------- the API
async function post(fn, body, path = '', headers = {}) {
  let response;
  try {
    response = await fetch(state.config.functions[fn].replace(/\/$/, '') + path, {
      method: 'POST',
      mode: 'cors',
      credentials: 'omit',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  } catch (e) {
    // A refused CORS preflight, a server that is down and no network all look the same here.
    throw new Failure('network', { detail: `${e.name}: ${e.message}` });
  }
  return answer(response);
}

async function answer(response) {
  if (response.status === 204) return {};
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: handled below
  }
  if (response.ok && data && typeof data === 'object') return data;
  const error = data && data.error;
  if (error && typeof error.code === 'string') {
    const header = Number.parseInt(response.headers.get('Retry-After') || '', 10);
    throw new Failure('api', {
      status: response.status,
      code: error.code,
      data: error,
      retryAfter: Number.isFinite(header) ? header : error.retry_after ?? null,
      detail: `HTTP ${response.status} ${error.code}`,
    });
  }
  throw new Failure('unexpected', { status: response.status, detail: `HTTP ${response.status}` });
}

async function busy(button, work) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------- tokens
function base64UrlBytes(part) {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (part.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function decodeJwt(token) {
  const [header, payload] = token.split('.').slice(0, 2).map((p) => JSON.parse(new TextDecoder().decode(base64UrlBytes(p))));
  return { header, payload };
}

/** Check the EdDSA signature with the key the token's `kid` names in login's JWKS. */
async function checkSignature(token) {
  const [h, p, s] = token.split('.');
  const { header } = decodeJwt(token);
  if (!crypto.subtle) return { ok: false, reason: 'WebCrypto is not available (not a secure context)' };
  let jwks;
  try {
    const response = await fetch(state.config.jwks, { mode: 'cors', credentials: 'omit' });
    jwks = await response.json();
  } catch (e) {
    return { ok: false, reason: `JWKS unreachable (${e.name}: ${e.message})` };
  }
  const jwk = (jwks.keys || []).find((k) => k.kid === header.kid);
  if (!jwk) return { ok: false, reason: `no key ${header.kid} in the JWKS` };
  try {
    const key = await crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, { name: 'Ed25519' }, false, ['verify']);
    const valid = await crypto.subtle.verify({ name: 'Ed25519' }, key, base64UrlBytes(s), new TextEncoder().encode(`${h}.${p}`));
    return valid ? { ok: true, kid: header.kid } : { ok: false, reason: 'the signature does not match' };
  } catch (e) {
    return { ok: false, reason: `this browser cannot check Ed25519 (${e.name})` };
  }
}

function claimValue(name, value) {
  if (['iat', 'nbf', 'exp'].includes(name) && typeof value === 'number') {
    return `${value} (${new Date(value * 1000).toLocaleString(state.lang)})`;
  }
  return Array.isArray(value) ? value.join(', ') : String(value);
}

function showToken(container, token) {
  const { payload } = decodeJwt(token.access_token);
  const table = element('div');
  const signature = element('p', { className: 'status signature' });
  signature.setAttribute('role', 'status');
  container.replaceChildren(table, signature);
  say(table, () =>
    element(
      'table',
      {},
      element('caption', { textContent: t('token.title') }),
      element(
        'thead',
        {},
        element('tr', {}, element('th', { scope: 'col', textContent: t('token.claim') }), element('th', { scope: 'col', textContent: t('token.value') })),
      ),
      element(
        'tbody',
        {},
        ...Object.entries(payload).map(([name, value]) =>
          element('tr', {}, element('th', { scope: 'row', textContent: name }), element('td', { textContent: claimValue(name, value) })),
        ),
      ),
    ),
  );
  checkSignature(token.access_token).then((result) => {
    signature.dataset.verified = String(result.ok);
    say(signature, () => (result.ok ? t('token.verified', { kid: result.kid }) : t('token.unverified', { reason: result.reason })));
  });
}

// ---------------------------------------------------------------------------- dev outbox
function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString(state.lang);
}

/** Local mode only: fill `input` with the newest code the dev SMS sink recorded for `phone`. */
async function readOutbox(phone, input, statusEl, errorEl) {
  clear(statusEl, errorEl);
  try {
    const response = await fetch(`${state.config.devOutbox}?phone=${encodeURIComponent(phone)}`);
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    const message = data.messages.find((m) => m.code);
    if (!message) {
      showProblem(errorEl, 'outbox.none');
      return;
    }
    input.value = message.code;
    input.removeAttribute('aria-invalid');
    say(statusEl, () => t('outbox.found', { time: formatTime(message.sent_at) }));
    input.focus();
  } catch (e) {
    errorEl.dataset.code = 'outbox.failed';
    say(errorEl, () => `${t('outbox.failed')} (${e.message || e})`);
  }
}

// ---------------------------------------------------------------------------- the send guard's challenge
// send_otp may answer 403 challenge_required with an ALTCHA challenge instead of a refusal: the
// widget (npm `altcha`, its CSP-friendly "external" build and workers, served under /vendor/altcha/)
// solves it in web workers, and the same request goes again with the payload.
const ALTCHA = '/vendor/altcha/';
let altchaReady = null;

function loadAltcha() {
  if (!altchaReady) {
    altchaReady = (async () => {
      const css = element('link', { rel: 'stylesheet', href: `${ALTCHA}altcha.css` });
      document.head.append(css);
      await import(`${ALTCHA}altcha.js`);
      const worker = (name) => () => new Worker(`${ALTCHA}workers/${name}.js`);
      for (const bits of ['256', '384', '512']) {
        globalThis.$altcha.algorithms.set(`PBKDF2/SHA-${bits}`, worker('pbkdf2'));
        globalThis.$altcha.algorithms.set(`SHA-${bits}`, worker('sha'));
      }
      await customElements.whenDefined('altcha-widget');
    })();
  }
  return altchaReady;
}

/** Solve `challenge` with the widget shown in the form; the payload for send_otp's `altcha`. */
async function solveChallenge(challenge) {
  const box = $('challenge');
  say($('challenge-status'), () => t('otp.challenge'));
  box.hidden = false;
  try {
    await loadAltcha();
  } catch (e) {
    throw new Failure('api', { code: 'challenge_required', detail: `ALTCHA widget unavailable (${e.name})` });
  }
  const widget = document.createElement('altcha-widget');
  return new Promise((resolve, reject) => {
    widget.addEventListener('verified', (ev) => resolve(ev.detail.payload));
    widget.addEventListener('statechange', (ev) => {
      if (ev.detail.state === 'error') reject(new Failure('api', { code: 'challenge_required', detail: t('otp.challenge.failed') }));
    });
    widget.addEventListener('load', () => {
      widget.configure({ challenge, language: state.lang, hideFooter: true });
      widget.verify();
    });
    $('challenge-widget').replaceChildren(widget);
  });
}

function hideChallenge() {
  clear($('challenge-status'));
  $('challenge-widget').replaceChildren();
  $('challenge').hidden = true;
}

/** send_otp, passing the challenge it may ask for once. */
async function sendCode(body) {
  try {
    return await post('send_otp', body);
  } catch (failure) {
    const altcha = failure.code === 'challenge_required' && failure.data.challenge && failure.data.challenge.altcha;
    if (!altcha) throw failure;
    const payload = await solveChallenge(altcha);
    return post('send_otp', { ...body, altcha: payload });
  } finally {
    hideChallenge();
  }
}

// ---------------------------------------------------------------------------- phone sign-in
function wireOtp() {
  const sendForm = $('send-form');
  const verifyForm = $('verify-form');
  const result = $('otp-result');

  sendForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    resetErrors(sendForm);
    const phone = $('phone').value.trim();
    if (!phone) return showProblem($('send-error'), 'required.phone', $('phone'));
    const channel = new FormData(sendForm).get('channel') || 'sms';
    await busy($('send-button'), async () => {
      try {
        const sent = await sendCode({ phone, channel, locale: state.lang });
        state.otpPhone = phone;
        say($('send-status'), () => t('otp.sent', { phone, expires: sent.expires_in, resend: sent.resend_after }));
        sendForm.hidden = true;
        verifyForm.hidden = false;
        $('otp-code').value = '';
        $('otp-code').focus();
      } catch (failure) {
        showError($('send-error'), failure, [$('phone')]);
      }
    });
  });

  verifyForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    resetErrors(verifyForm);
    const code = $('otp-code').value.replace(/\s/g, '');
    if (!code) return showProblem($('verify-error'), 'required.code', $('otp-code'));
    await busy($('verify-button'), async () => {
      try {
        const token = await post('verify_otp', { phone: state.otpPhone, code });
        remember(token);
        verifyForm.hidden = true;
        result.hidden = false;
        showToken(result.querySelector('.claims'), token);
        $('otp-result-title').focus();
      } catch (failure) {
        showError($('verify-error'), failure, [$('otp-code')]);
        $('otp-code').focus();
      }
    });
  });

  $('otp-outbox').addEventListener('click', () =>
    readOutbox(state.otpPhone.replace(/[\s\-().]/g, ''), $('otp-code'), $('otp-outbox-status'), $('verify-error')),
  );

  const backToPhone = () => {
    resetErrors(verifyForm);
    clear($('send-status'), $('otp-outbox-status'));
    verifyForm.hidden = true;
    result.hidden = true;
    sendForm.hidden = false;
    $('phone').focus();
  };
  $('otp-other').addEventListener('click', backToPhone);
  result.querySelector('.restart').addEventListener('click', backToPhone);
}

// ---------------------------------------------------------------------------- password sign-in
function wireLogin() {
  const loginForm = $('login-form');
  const mfaForm = $('mfa-form');
  const result = $('login-result');

  loginForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    resetErrors(loginForm);
    const identifier = $('identifier').value.trim();
    const password = $('password').value;
    if (!identifier) return showProblem($('login-error'), 'required.identifier', $('identifier'));
    if (!password) return showProblem($('login-error'), 'required.password', $('password'));
    const who = identifier.includes('@') ? { email: identifier } : { code: identifier };
    await busy($('login-button'), async () => {
      try {
        const answer = await post('login', { ...who, password, locale: state.lang });
        $('password').value = '';
        loginForm.hidden = true;
        if (answer.mfa_required) {
          state.mfa = answer;
          say($('mfa-status'), () => t('mfa.sent', { hint: answer.phone_hint, expires: answer.expires_in }));
          mfaForm.hidden = false;
          $('mfa-code').value = '';
          $('mfa-code').focus();
        } else {
          remember(answer);
          showSignedIn(answer.user, answer, answer.unavailable_fields || []);
        }
      } catch (failure) {
        showError($('login-error'), failure, [$('identifier'), $('password')]);
        $('password').focus();
      }
    });
  });

  mfaForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    resetErrors(mfaForm);
    const code = $('mfa-code').value.replace(/\s/g, '');
    if (!code) return showProblem($('mfa-error'), 'required.code', $('mfa-code'));
    await busy($('mfa-button'), async () => {
      try {
        const token = await post('verify_otp', { mfa_token: state.mfa.mfa_token, code });
        remember(token);
        mfaForm.hidden = true;
        showSignedIn(null, token, []);
      } catch (failure) {
        showError($('mfa-error'), failure, [$('mfa-code')]);
        $('mfa-code').focus();
      }
    });
  });

  $('mfa-outbox').addEventListener('click', () =>
    readOutbox(state.mfa.phone_hint, $('mfa-code'), $('mfa-outbox-status'), $('mfa-error')),
  );

  result.querySelector('.restart').addEventListener('click', () => {
    clear($('mfa-status'), $('mfa-outbox-status'), $('profile'), $('profile-unavailable'), $('login-result-title'));
    state.mfa = null;
    result.hidden = true;
    mfaForm.hidden = true;
    loginForm.hidden = false;
    $('identifier').focus();
  });
}

/** The signed-in panel: the decrypted profile (password only) and the token's claims. */
function showSignedIn(user, token, unavailable) {
  const result = $('login-result');
  result.hidden = false;
  $('profile-block').hidden = !user;
  if (user) {
    say($('login-result-title'), () => t('login.done', { email: user.email }));
    say($('profile'), () => {
      const list = document.createDocumentFragment();
      for (const field of ['id', 'email', 'code', 'role', 'phone', 'address', 'whatsapp']) {
        const value = user[field];
        list.append(element('dt', { textContent: t(`profile.${field}`) }));
        list.append(element('dd', { textContent: value ?? `(${t('profile.none')})`, className: value == null ? 'none' : '' }));
      }
      return list;
    });
    if (unavailable.length) say($('profile-unavailable'), () => t('login.unavailable', { fields: unavailable.join(', ') }));
    else clear($('profile-unavailable'));
  } else {
    say($('login-result-title'), () => t('mfa.done'));
  }
  showToken(result.querySelector('.claims'), token);
  $('login-result-title').focus();
}

// ---------------------------------------------------------------------------- session
/** Keep the newest refresh token (each refresh spends the one before). */
function remember(token) {
  state.access = token.access_token;
  if (token.refresh_token) localStorage.setItem(SESSION_KEY, token.refresh_token);
}

function endSession(key) {
  localStorage.removeItem(SESSION_KEY);
  state.access = null;
  $('session').hidden = true;
  say($('session-ended'), () => t(key));
}

/** On load: trade the stored refresh token for a new access token and its successor. */
async function restoreSession() {
  const stored = localStorage.getItem(SESSION_KEY);
  if (!stored) return;
  try {
    const token = await post('login', { grant_type: 'refresh_token', refresh_token: stored });
    remember(token);
    $('session').hidden = false;
    const days = Math.floor(token.refresh_expires_in / 86400);
    say($('session-status'), () => t('session.restored', { days }));
    showToken($('session').querySelector('.claims'), token);
  } catch (failure) {
    if (failure.kind === 'api' && failure.code === 'invalid_grant') endSession('session.ended');
    else showError($('page-error'), failure);  // keep the token: the service may be back on the next load
  }
}

function wireSession() {
  const signOut = async (button, everywhere) => {
    resetErrors($('session'));
    await busy(button, async () => {
      try {
        const body = everywhere ? { all_sessions: true } : { refresh_token: localStorage.getItem(SESSION_KEY) };
        const headers = everywhere ? { Authorization: `Bearer ${state.access}` } : {};
        await post('login', body, '/logout', headers);
        endSession('session.signedout');
      } catch (failure) {
        showError($('session-error'), failure);
      }
    });
  };
  $('signout').addEventListener('click', () => signOut($('signout'), false));
  $('signout-all').addEventListener('click', () => signOut($('signout-all'), true));
}

// ---------------------------------------------------------------------------- start
async function start() {
  const params = new URLSearchParams(location.search);
  setLanguage(params.get('lang') || (navigator.language || 'en').slice(0, 2));
  $('lang').addEventListener('change', (event) => setLanguage(event.target.value));
  try {
    const response = await fetch('config.json');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    state.config = await response.json();
  } catch (e) {
    $('page-error').dataset.code = 'config.failed';
    say($('page-error'), () => `${t('config.failed')} (${e.message || e})`);
    for (const button of document.querySelectorAll('button')) button.disabled = true;
    return;
  }
  if (state.config.devOutbox) {
    for (const id of ['local-mode', 'otp-outbox', 'mfa-outbox']) $(id).hidden = false;
  }
  wireOtp();
  wireLogin();
  wireSession();
  await restoreSession();
  document.body.dataset.ready = 'true';
}

start();
