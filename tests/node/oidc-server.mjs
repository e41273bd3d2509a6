// A real OpenID Connect provider for credproc's tests: panva's oidc-provider, loopback only.
//
// Usage:  node tests/node/oidc-server.mjs SETTINGS.json
//    or:  OIDC_TEST_SETTINGS='{"port": 8080, ...}' node tests/node/oidc-server.mjs
//
// Settings (JSON object; every key optional except port):
//   port                        TCP port on 127.0.0.1 (issuer is http://127.0.0.1:PORT)
//   client_id                   public native client, token_endpoint_auth_method "none"
//                               (default "credproc-test")
//   confidential_client_id      second client, client_secret_basic (default "credproc-confidential";
//   confidential_client_secret    null disables it; secret default "confidential-secret")
//   redirect_uris               default ["http://127.0.0.1/callback"]; both clients are "native",
//                               so any port on a loopback redirect URI is accepted (RFC 8252 7.3)
//   application_type            "native" (default) or "web": a web client's redirect URIs are compared
//                               exactly, port included (as many real providers do for any client)
//   roles                       list of role ARNs put in the `aws_roles` claim (default [])
//   roles_by_account            {"alice": [...]} overrides `roles` for that account id
//   email_domain                `email` claim is `${sub}@${email_domain}` (default "example.com")
//   id_token_ttl                seconds (default 3600)
//   access_token_ttl            seconds (default 3600)
//   refresh_token_ttl           seconds (default 86400)
//   device_code_ttl             seconds (default 600)
//   keys                        number of RS256 keys generated at start (default 1; the first signs,
//                               the others are only published in the JWKS)
//   always_issue_refresh_token  issue a refresh token even without offline_access (default false)
//   token_delay_ms              delay every token endpoint request by this much (default 0)
//   offline_access_adds_consent OIDC Core (and oidc-provider) drop offline_access from an authorization
//                               request unless prompt contains "consent"; with this (default true)
//                               the peer adds "consent" to prompt of GET /auth requests asking for
//                               offline_access, so the code flow gets a refresh token without the
//                               client sending prompt=consent. The device flow needs nothing of this.
//
// Test-only admin endpoints (not part of OIDC):
//   GET  /test/stats          JSON request counts (see statsBody below)
//   POST /test/reset-stats    zero the counters
//   POST /test/rotate-keys    generate a new RS256 key that signs from now on; old keys stay in the
//                             JWKS unless the query has ?drop_old=1. Answers {"kid", "kids"}.
//   POST /test/config         JSON body {"token_delay_ms": N, "fail_token": {"status": 503,
//                             "error": "temporarily_unavailable", "count": 1}} changes behaviour live.
//
// Accounts: devInteractions accept any login/password; the login typed becomes `sub`.
// Refresh tokens are issued for scope offline_access and rotated on every use (reusing an old one
// gives invalid_grant). Revoking a refresh token revokes its grant.
// Prints "oidc-provider listening on http://127.0.0.1:PORT" on stdout when ready.

import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

const settings = process.argv[2]
  ? JSON.parse(readFileSync(process.argv[2], 'utf8'))
  : JSON.parse(process.env.OIDC_TEST_SETTINGS || '{}');

const port = Number(settings.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error('oidc-server: settings.port is required');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const opt = (key, dflt) => (settings[key] === undefined ? dflt : settings[key]);

const clientId = opt('client_id', 'credproc-test');
const confidentialId = opt('confidential_client_id', 'credproc-confidential');
const confidentialSecret = opt('confidential_client_secret', 'confidential-secret');
const redirectUris = opt('redirect_uris', ['http://127.0.0.1/callback']);
const applicationType = opt('application_type', 'native');
const roles = opt('roles', []);
const rolesByAccount = opt('roles_by_account', {});
const emailDomain = opt('email_domain', 'example.com');
const idTokenTtl = Number(opt('id_token_ttl', 3600));
const accessTokenTtl = Number(opt('access_token_ttl', 3600));
const refreshTokenTtl = Number(opt('refresh_token_ttl', 86400));
const deviceCodeTtl = Number(opt('device_code_ttl', 600));
const alwaysRefresh = Boolean(opt('always_issue_refresh_token', false));
const offlineAddsConsent = Boolean(opt('offline_access_adds_consent', true));
const live = {
  tokenDelayMs: Number(opt('token_delay_ms', 0)),
  failToken: null, // {status, error, error_description, count}
};

let keyCounter = 0;
function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  keyCounter += 1;
  return {
    ...jwk, kid: `test-key-${keyCounter}-${crypto.randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig',
  };
}
const initialKeys = [];
for (let i = 0; i < Math.max(1, Number(opt('keys', 1))); i++) initialKeys.push(newKey());

const grantTypes = [
  'urn:ietf:params:oauth:grant-type:device_code',
  'refresh_token',
  'authorization_code',
];
const clients = [{
  client_id: clientId,
  client_name: 'credproc test (public)',
  application_type: applicationType,
  token_endpoint_auth_method: 'none',
  grant_types: grantTypes,
  response_types: ['code'],
  redirect_uris: redirectUris,
}];
if (confidentialId) {
  clients.push({
    client_id: confidentialId,
    client_secret: confidentialSecret,
    client_name: 'credproc test (confidential)',
    application_type: applicationType,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: grantTypes,
    response_types: ['code'],
    redirect_uris: redirectUris,
  });
}

const configuration = {
  clients,
  jwks: { keys: initialKeys },
  cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
  scopes: ['openid', 'offline_access', 'email'],
  responseTypes: ['code'],
  claims: {
    openid: ['sub', 'aws_roles'],
    email: ['email', 'email_verified'],
  },
  // Put scope claims (email) in the ID token even when an access token is issued too.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: false },
  },
  pkce: { required: () => true },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: `${sub}@${emailDomain}`,
          email_verified: true,
          aws_roles: rolesByAccount[sub] || roles,
        };
      },
    };
  },
  async issueRefreshToken(ctx, client, code) {
    if (!client.grantTypeAllowed('refresh_token')) return false;
    return alwaysRefresh || code.scopes.has('offline_access');
  },
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 60,
    DeviceCode: deviceCodeTtl,
    IdToken: idTokenTtl,
    RefreshToken: refreshTokenTtl,
    Grant: Math.max(refreshTokenTtl, 14 * 24 * 3600),
    Interaction: 3600,
    Session: 14 * 24 * 3600,
  },
};

const provider = new Provider(issuer, configuration);

// ---- key rotation (reaches into the provider's internal keystore; test-only) ----
function publicJwk(k) {
  return { kty: k.kty, use: k.use, kid: k.kid, alg: k.alg, e: k.e, n: k.n };
}
function setKeys(keys) {
  const internal = instance(provider);
  internal.keystore.clear();
  for (const k of keys) internal.keystore.add(k);
  internal.jwks = { keys: keys.map(publicJwk) };
}
let currentKeys = [...instance(provider).keystore];

// ---- statistics ----
function emptyStats() {
  return {
    routes: {},
    token: 0,
    token_by_grant_type: {},
    token_errors: {},
    token_requests: [],
    device_authorization: 0,
    revocation: 0,
    authorization: 0,
  };
}
let stats = emptyStats();
const shortGrant = (g) => (g === 'urn:ietf:params:oauth:grant-type:device_code' ? 'device_code' : g);

function sendJson(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(body);
}

async function readJsonBody(ctx) {
  const chunks = [];
  for await (const c of ctx.req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/test/')) {
    if (ctx.method === 'GET' && ctx.path === '/test/stats') {
      return sendJson(ctx, 200, stats);
    }
    if (ctx.method === 'POST' && ctx.path === '/test/reset-stats') {
      stats = emptyStats();
      return sendJson(ctx, 200, stats);
    }
    if (ctx.method === 'POST' && ctx.path === '/test/rotate-keys') {
      const fresh = newKey();
      currentKeys = ctx.query.drop_old ? [fresh] : [fresh, ...currentKeys];
      setKeys(currentKeys);
      return sendJson(ctx, 200, { kid: fresh.kid, kids: currentKeys.map((k) => k.kid) });
    }
    if (ctx.method === 'POST' && ctx.path === '/test/config') {
      const body = await readJsonBody(ctx);
      if (body.token_delay_ms !== undefined) live.tokenDelayMs = Number(body.token_delay_ms);
      if (body.fail_token !== undefined) live.failToken = body.fail_token;
      return sendJson(ctx, 200, { token_delay_ms: live.tokenDelayMs, fail_token: live.failToken });
    }
    return sendJson(ctx, 404, { error: 'not_found' });
  }

  if (offlineAddsConsent && ctx.method === 'GET' && ctx.path === '/auth') {
    const query = { ...ctx.query };
    const scopes = String(query.scope || '').split(' ');
    const prompts = String(query.prompt || '').split(' ').filter(Boolean);
    if (scopes.includes('offline_access') && !prompts.includes('consent') && !prompts.includes('none')) {
      query.prompt = [...prompts, 'consent'].join(' ');
      ctx.query = query;
    }
  }

  const isToken = ctx.method === 'POST' && ctx.path === '/token';
  if (isToken && live.tokenDelayMs > 0) {
    await new Promise((r) => { setTimeout(r, live.tokenDelayMs); });
  }
  if (isToken && live.failToken && (live.failToken.count ?? 1) > 0) {
    const f = live.failToken;
    f.count = (f.count ?? 1) - 1;
    if (f.count <= 0) live.failToken = null;
    stats.token += 1;
    stats.token_requests.push({ grant_type: null, status: f.status || 503, error: f.error || 'injected' });
    return sendJson(ctx, f.status || 503, {
      error: f.error || 'temporarily_unavailable',
      error_description: f.error_description || 'injected failure (test)',
    });
  }

  await next();

  const route = ctx.oidc?.route;
  if (!route) return undefined;
  stats.routes[route] = (stats.routes[route] || 0) + 1;
  if (route === 'token') {
    const grant = ctx.oidc.params?.grant_type || 'unknown';
    stats.token += 1;
    stats.token_by_grant_type[shortGrant(grant)] = (stats.token_by_grant_type[shortGrant(grant)] || 0) + 1;
    let error = null;
    if (ctx.status >= 400) {
      error = (ctx.body && typeof ctx.body === 'object' && ctx.body.error) || `http_${ctx.status}`;
      stats.token_errors[error] = (stats.token_errors[error] || 0) + 1;
    }
    stats.token_requests.push({
      grant_type: shortGrant(grant), client_id: ctx.oidc.client?.clientId ?? null, status: ctx.status, error,
    });
  } else if (route === 'device_authorization') {
    stats.device_authorization += 1;
  } else if (route === 'revocation') {
    stats.revocation += 1;
  } else if (route === 'authorization') {
    stats.authorization += 1;
  }
  return undefined;
});

provider.on('server_error', (ctx, err) => { console.error('oidc-server server_error:', err); });

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
