#!/usr/bin/env node
// DMARC (RFC 9989) by the Node `mailauth` package's lib/dmarc, records from a loopback DNS server.
//
// Usage: mailauth_dmarc.js 127.0.0.1:PORT < cases.json
//
// cases.json: a list of {"from": "a@example.com", "dkim": ["d1", ...], "spf": "domain" | null},
// the DKIM signing domains that passed and the SPF domain that passed. Prints one JSON list,
// one entry per case: {"result": "pass|fail|none|temperror|...", "policy": "reject|..." | null,
// "policyDomain": ..., "orgDomain": ...}. `mailauth` is looked up beside this script
// (tests/interop/node_modules, installed by .ci/install-test-deps); only its lib/dmarc module is
// loaded, which runs on Debian's node (the package as a whole asks for a newer one).
'use strict';

const path = require('node:path');
const dns = require('node:dns');

let dmarc;
try {
    dmarc = require(path.join(__dirname, 'node_modules', 'mailauth', 'lib', 'dmarc'));
} catch (err) {
    process.stderr.write(`mailauth_dmarc: ${err.message} (run .ci/install-test-deps)\n`);
    process.exit(2);
}

const server = process.argv[2];
if (!server) {
    process.stderr.write('usage: mailauth_dmarc.js 127.0.0.1:PORT < cases.json\n');
    process.exit(2);
}

const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
resolver.setServers([server]);
const resolve = (name, type) => resolver.resolve(name, type);

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', chunk => (input += chunk));
process.stdin.on('end', async () => {
    const out = [];
    for (const c of JSON.parse(input)) {
        const r = await dmarc.dmarc({
            headerFrom: c.from,
            spfDomains: c.spf ? [c.spf] : [],
            dkimDomains: c.dkim || [],
            resolver: resolve
        });
        out.push(
            r
                ? { result: r.status.result, policy: r.policy || null, policyDomain: r.policyDomain || null, orgDomain: r.domain || null }
                : { result: 'none', policy: null, policyDomain: null, orgDomain: null }
        );
    }
    process.stdout.write(JSON.stringify(out) + '\n');
});
