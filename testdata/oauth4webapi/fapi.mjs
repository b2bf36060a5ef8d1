// The FAPI 2.0 baseline through panva's oauth4webapi, against a running
// Gatehouse: PAR + PKCE + DPoP + private_key_jwt code flow, a DPoP-bound
// books call, the same token refused as Bearer, and a DPoP refresh.
//
//   node fapi.mjs keys DIR                      writes DIR/jwks.json and DIR/private.jwk
//   node fapi.mjs run BASE CLIENT_ID DIR USER PASS REDIRECT_URI
//
// The browser part (sign-in and consent) is plain fetch with a cookie jar,
// as a scripted user agent would do it.
import * as oauth from 'oauth4webapi';
import { readFileSync, writeFileSync } from 'node:fs';

const insecure = { [oauth.allowInsecureRequests]: true }; // the test server is http://127.0.0.1
const fail = (msg) => { console.error('oauth4webapi: ' + msg); process.exit(1); };

async function keys(dir) {
  const { publicKey, privateKey } = await oauth.generateKeyPair('ES256', { extractable: true });
  const pub = await crypto.subtle.exportKey('jwk', publicKey);
  const priv = await crypto.subtle.exportKey('jwk', privateKey);
  Object.assign(pub, { kid: 'k1', use: 'sig', alg: 'ES256' });
  writeFileSync(`${dir}/jwks.json`, JSON.stringify({ keys: [pub] }));
  writeFileSync(`${dir}/private.jwk`, JSON.stringify(priv), { mode: 0o600 });
}

// retryNonce runs fn again once when the server asked for a DPoP nonce;
// the DPoP handle has remembered the nonce from the answer.
async function retryNonce(fn) {
  try {
    return await fn();
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return fn();
    throw err;
  }
}

async function run(base, clientId, dir, user, pass, redirectUri) {
  const issuer = new URL(base);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
  for (const [k, want] of [['token_endpoint_auth_methods_supported', 'private_key_jwt'], ['dpop_signing_alg_values_supported', 'ES256'], ['code_challenge_methods_supported', 'S256']]) {
    if (!as[k]?.includes(want)) fail(`discovery ${k} lacks ${want}`);
  }
  if (!as.pushed_authorization_request_endpoint) fail('discovery has no pushed_authorization_request_endpoint');

  const client = { client_id: clientId };
  const priv = await crypto.subtle.importKey('jwk', JSON.parse(readFileSync(`${dir}/private.jwk`, 'utf8')),
    { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const clientAuth = oauth.PrivateKeyJwt({ key: priv, kid: 'k1' });
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const params = new URLSearchParams({
    response_type: 'code', redirect_uri: redirectUri, scope: 'openid books:read offline_access', state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const par = await retryNonce(async () => oauth.processPushedAuthorizationResponse(as, client,
    await oauth.pushedAuthorizationRequest(as, client, clientAuth, params, { DPoP, ...insecure })));
  console.log('PAR: request_uri issued, expires_in', par.expires_in);

  // The user agent: sign in and allow.
  const jar = new Map();
  const ua = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const resp = await fetch(new URL(url, base), { ...init, headers, redirect: 'manual' });
    for (const c of resp.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return resp;
  };
  const form = (fields) => ({ method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const authURL = new URL(as.authorization_endpoint);
  authURL.search = new URLSearchParams({ client_id: clientId, request_uri: par.request_uri }).toString();
  let resp = await ua(authURL);
  const toLogin = new URL(resp.headers.get('location') ?? '', base);
  if (resp.status !== 303 || toLogin.pathname !== '/login') fail(`authorize: ${resp.status} ${toLogin}, want the login page`);
  const returnTo = toLogin.searchParams.get('return_to');
  resp = await ua('/login', form({ username: user, password: pass, return_to: returnTo }));
  if (resp.status !== 303) fail(`sign-in: ${resp.status}`);
  resp = await ua(returnTo);
  const page = await resp.text();
  const action = [...page.matchAll(/action="([^"]*)"/g)].map((m) => m[1].replaceAll('&amp;', '&')).find((a) => a.startsWith('/oauth2/authorize?'));
  if (resp.status !== 200 || !action) fail(`consent page: ${resp.status}`);
  resp = await ua(action, form({ decision: 'allow' }));
  const callback = new URL(resp.headers.get('location') ?? '', base);
  if (resp.status !== 303 || !callback.href.startsWith(redirectUri)) fail(`consent: ${resp.status} ${callback}`);

  const cb = oauth.validateAuthResponse(as, client, callback, state);
  const tokens = await retryNonce(async () => oauth.processAuthorizationCodeResponse(as, client,
    await oauth.authorizationCodeGrantRequest(as, client, clientAuth, cb, redirectUri, verifier, { DPoP, ...insecure })));
  if (tokens.token_type !== 'dpop') fail(`token_type ${tokens.token_type}, want dpop`);
  console.log('code exchanged: DPoP-bound access token, refresh token, ID token for', oauth.getValidatedIdTokenClaims(tokens)?.sub);

  const books = new URL('/api/books', base);
  const booksCall = (token) => retryNonce(async () => {
    const r = await oauth.protectedResourceRequest(token, 'GET', books, undefined, undefined, { DPoP, ...insecure });
    if (r.status !== 200) fail(`books with DPoP: ${r.status} ${await r.text()}`);
    return r.json();
  });
  const list = await booksCall(tokens.access_token);
  if (!Array.isArray(list.books)) fail(`books answered ${JSON.stringify(list)}`);
  console.log('books API with DPoP: 200');

  resp = await fetch(books, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  const challenge = resp.headers.get('www-authenticate') ?? '';
  if (resp.status !== 401 || !challenge.startsWith('DPoP ')) fail(`same token as Bearer: ${resp.status} ${challenge}, want 401 with a DPoP challenge`);
  console.log('same token as Bearer: 401', challenge);

  const refreshed = await retryNonce(async () => oauth.processRefreshTokenResponse(as, client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, { DPoP, ...insecure })));
  if (refreshed.token_type !== 'dpop' || refreshed.access_token === tokens.access_token) fail('refresh did not give a new DPoP token');
  await booksCall(refreshed.access_token);
  console.log('DPoP refresh, then books API with the new token: 200');
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'keys') await keys(...args);
else if (cmd === 'run') await run(...args);
else fail('usage: fapi.mjs keys DIR | run BASE CLIENT_ID DIR USER PASS REDIRECT_URI');
