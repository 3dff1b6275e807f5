// One OpenID Connect identity provider for OptiBid's single sign-on tests.
//
//   node provider.mjs CONFIG.json
//
// CONFIG.json: {port, issuer, profile: "azure" | "okta" | "google", clients: [{client_id,
// client_secret, redirect_uris}], accounts: [{id, login?, password, claims: {...}}], jwks:
// {keys: [private RSA JWKs]}}. The first key signs; the others are only published.
//
// The provider's endpoints live under the issuer's path (an Entra-shaped issuer
// http://127.0.0.1:PORT/<tenant>/v2.0 serves <tenant>/v2.0/.well-known/openid-configuration);
// the login and consent pages live at /interaction/:uid. One line per request goes to stdout.

import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const PROFILES = {
  // Entra ID (Azure AD) v2.0: tenant, object id, UPN, group object ids and app roles in the
  // ID token
  azure: {
    claims: {
      openid: ['sub', 'tid', 'oid', 'groups', 'roles', 'amr'],
      email: ['email'],
      profile: ['name', 'preferred_username'],
    },
    routes: {},
  },
  // Okta (custom authorization server "default"): group names under the groups scope
  okta: {
    claims: {
      openid: ['sub', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    routes: {
      authorization: '/v1/authorize',
      token: '/v1/token',
      jwks: '/v1/keys',
      userinfo: '/v1/userinfo',
      end_session: '/v1/logout',
    },
  },
  // Google Workspace: hosted domain (hd) and a verified email
  google: {
    claims: {
      openid: ['sub', 'hd'],
      email: ['email', 'email_verified'],
      profile: ['name', 'picture', 'given_name', 'family_name'],
    },
    routes: {
      authorization: '/o/oauth2/v2/auth',
      token: '/token',
      jwks: '/oauth2/v3/certs',
      userinfo: '/v1/userinfo',
    },
  },
};

function fail(message) {
  process.stderr.write(`oidc peer: ${message}\n`);
  process.exit(2);
}

function readConfig(path) {
  if (!path) fail('usage: node provider.mjs CONFIG.json');
  let config;
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    fail(`cannot read ${path}: ${err.message}`);
  }
  for (const key of ['port', 'issuer', 'profile', 'clients', 'accounts', 'jwks']) {
    if (config[key] === undefined) fail(`${path}: "${key}" is missing`);
  }
  if (!(config.profile in PROFILES)) {
    fail(`${path}: profile must be one of ${Object.keys(PROFILES).join(', ')}`);
  }
  if (!Array.isArray(config.jwks.keys) || config.jwks.keys.length === 0) {
    fail(`${path}: jwks.keys must hold at least one private key`);
  }
  return config;
}

const config = readConfig(process.argv[2]);
const profile = PROFILES[config.profile];
const mountPath = new URL(config.issuer).pathname.replace(/\/+$/, '');

// the account a login form names: its id, its login handle or its email (any case)
function accountFor(login) {
  const wanted = String(login ?? '').trim().toLowerCase();
  if (!wanted) return undefined;
  return config.accounts.find((account) => [account.id, account.login, account.claims?.email]
    .some((name) => typeof name === 'string' && name.toLowerCase() === wanted));
}

function passwordMatches(account, password) {
  const digest = (value) => createHash('sha256').update(String(value ?? '')).digest();
  return timingSafeEqual(digest(account.password), digest(password));
}

function authenticationMethods(account) {
  const amr = account.claims?.amr;
  return Array.isArray(amr) && amr.length ? amr : ['pwd'];
}

const provider = new Provider(config.issuer, {
  clients: config.clients.map(({ client_id, client_secret, redirect_uris, ...rest }) => ({
    client_id,
    client_secret,
    redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic', // client_secret_post is accepted too
    ...rest,
  })),
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  responseTypes: ['code'],
  scopes: ['openid'], // the others come from the profile's claims
  claims: profile.claims,
  // scope-requested claims go into the ID token itself: relying parties read them there
  conformIdTokenClaims: false,
  pkce: { required: () => true }, // S256 is the only method oidc-provider 9 accepts
  jwks: config.jwks,
  routes: profile.routes,
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: false },
  },
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 120,
    Grant: 3600,
    IdToken: config.id_token_ttl ?? 3600,
    Interaction: 600,
    Session: 3600,
  },
  async findAccount(ctx, id) {
    const account = config.accounts.find((candidate) => candidate.id === id);
    if (!account) return undefined;
    return {
      accountId: account.id,
      async claims() {
        const { amr, ...claims } = account.claims ?? {};
        return { ...claims, sub: account.id };
      },
    };
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', Object.entries(out)
      .map(([key, value]) => `<p><strong>${escape(key)}</strong>: ${escape(value)}</p>`)
      .join(''));
  },
});

function escape(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, details, error) {
  const hint = details.params.login_hint ?? '';
  return page('Sign in', `
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
<p>${escape(details.params.client_id)} asks you to sign in to ${escape(config.issuer)}.</p>
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>Login <input name="login" value="${escape(hint)}" autocomplete="username" autofocus></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/abort">
  <button type="submit">Cancel</button>
</form>`);
}

function consentPage(uid, details) {
  const { missingOIDCScope = [], missingOIDCClaims = [] } = details.prompt.details;
  const items = [...missingOIDCScope.map((s) => `scope ${s}`), ...missingOIDCClaims.map((c) => `claim ${c}`)]
    .map((item) => `<li>${escape(item)}</li>`).join('');
  return page('Allow access', `
<p>${escape(details.params.client_id)} asks for:</p>
<ul>${items}</ul>
<form method="post" action="/interaction/${escape(uid)}/confirm">
  <button type="submit">Allow</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/abort">
  <button type="submit">Deny</button>
</form>`);
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// a consent grant: what the interaction is still missing, added to the grant it has (if any)
async function grantFor(details) {
  const { prompt: { details: missing }, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

async function interaction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    send(res, 400, page('Error', `<p>${escape(err.message)}</p>`));
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<p>interaction does not match this browser session</p>'));
    return;
  }
  const prompt = details.prompt.name;

  if (req.method === 'GET' && action === undefined) {
    if (prompt === 'login') send(res, 200, loginPage(uid, details));
    else if (prompt === 'consent') send(res, 200, consentPage(uid, details));
    else send(res, 400, page('Error', `<p>unsupported prompt ${escape(prompt)}</p>`));
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, page('Error', '<p>method not allowed</p>'));
    return;
  }

  const form = await readForm(req);
  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'the end-user cancelled the interaction',
    }, { mergeWithLastSubmission: false });
  } else if (action === 'login' && prompt === 'login') {
    const account = accountFor(form.get('login'));
    if (!account || !passwordMatches(account, form.get('password'))) {
      send(res, 401, loginPage(uid, details, 'Invalid login or password.'));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: account.id, amr: authenticationMethods(account), remember: false },
    }, { mergeWithLastSubmission: false });
  } else if (action === 'confirm' && prompt === 'consent') {
    const grantId = await grantFor(details);
    await provider.interactionFinished(req, res, { consent: { grantId } }, {
      mergeWithLastSubmission: true,
    });
  } else {
    send(res, 400, page('Error', `<p>${escape(action)} does not answer the ${escape(prompt)} prompt</p>`));
  }
}

const callback = provider.callback();
const INTERACTION = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?\/?$/;

const server = createServer((req, res) => {
  const started = process.hrtime.bigint();
  const url = req.url;
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stdout.write(
      `${new Date().toISOString()} ${config.profile} ${req.method} ${url} ${res.statusCode} ${ms.toFixed(1)}ms\n`,
    );
  });

  const path = url.split('?')[0];
  const match = INTERACTION.exec(path);
  if (match) {
    interaction(req, res, match[1], match[2]).catch((err) => {
      process.stderr.write(`${err.stack}\n`);
      if (!res.headersSent) send(res, 500, page('Error', `<p>${escape(err.message)}</p>`));
      else res.end();
    });
    return;
  }
  if (mountPath && (path === mountPath || path.startsWith(`${mountPath}/`))) {
    // the provider sees its own paths; it rebuilds its URLs from originalUrl
    req.originalUrl = url;
    req.url = url.slice(mountPath.length) || '/';
    callback(req, res);
    return;
  }
  if (!mountPath) {
    callback(req, res);
    return;
  }
  send(res, 404, page('Not found', `<p>${escape(path)}</p>`));
});

server.on('error', (err) => {
  process.stderr.write(`oidc peer: ${err.message}\n`);
  process.exit(err.code === 'EADDRINUSE' ? 3 : 1);
});

server.listen(config.port, '127.0.0.1', () => {
  const kid = config.jwks.keys[0].kid;
  process.stdout.write(`oidc peer ${config.profile} listening: ${config.issuer} (kid ${kid})\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
