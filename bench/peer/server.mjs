// The peer authd is compared with: oidc-provider's token introspection endpoint.
//
// Usage: node server.mjs --port PORT --tokens N --out FILE
//
// Configures oidc-provider with one confidential client allowed the
// client_credentials grant, listens on 127.0.0.1:PORT, mints N opaque access
// tokens through its own token endpoint, writes them one per line to FILE
// (atomically, via FILE.tmp) and then serves until killed. The load generator
// then POSTs `token=<token>` to /token/introspection with HTTP Basic client
// authentication (client `bench`, secret `bench-secret`).
//
// Tokens live in a plain in-memory Map adapter (the package's own memory
// adapter is an LRU capped at 1000 entries), which is the fastest storage the
// peer can have: the comparison is generous to it.

import http from 'node:http';
import { writeFileSync, renameSync } from 'node:fs';
import Provider from 'oidc-provider';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg('port', '0'));
const count = Number(arg('tokens', '1000'));
const out = arg('out', 'peer-tokens.txt');
const CLIENT_ID = 'bench';
const CLIENT_SECRET = 'bench-secret';

const store = new Map();

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload) {
    store.set(this.key(id), payload);
  }

  async find(id) {
    return store.get(this.key(id));
  }

  async findByUserCode() {
    return undefined;
  }

  async findByUid() {
    return undefined;
  }

  async consume(id) {
    const p = store.get(this.key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId() {}
}

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  scopes: ['api'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // The caller is the very client the tokens were issued to.
      allowedPolicy: async () => true,
    },
  },
  // Long enough to outlive the whole benchmark run.
  ttl: { ClientCredentials: 24 * 3600 },
  cookies: { keys: ['authd-bench-peer-cookie-key'] },
});
provider.proxy = false;

const server = http.createServer(provider.callback());
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.listen(port, '127.0.0.1', async () => {
  const basic = Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64');
  const tokens = [];
  const mint = async () => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials&scope=api',
    });
    const body = await res.json();
    if (!res.ok || !body.access_token) {
      throw new Error(`token endpoint answered ${res.status}: ${JSON.stringify(body)}`);
    }
    tokens.push(body.access_token);
  };
  try {
    const started = Date.now();
    // 16 minting requests in flight at a time.
    let next = 0;
    const lanes = Array.from({ length: Math.min(16, count) }, async () => {
      while (next < count) {
        next += 1;
        await mint();
      }
    });
    await Promise.all(lanes);
    writeFileSync(`${out}.tmp`, `${tokens.join('\n')}\n`);
    renameSync(`${out}.tmp`, out);
    console.log(JSON.stringify({ minted: tokens.length, ms: Date.now() - started, issuer }));
  } catch (err) {
    console.error(`minting failed: ${err.stack ?? err}`);
    process.exit(1);
  }
});
