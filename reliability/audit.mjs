// The GraphQL-over-HTTP audit suite of graphql-http against a running user-api.
//
//   node reliability/audit.mjs http://127.0.0.1:8000/graphql
//
// Prints one JSON object per audit ({id, name, status, reason}) on standard output, one per
// line, and a summary line last. Exits 1 when a MUST audit fails, else 0; judging SHOULDs is
// left to the caller (reliability/run.py), which records them.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql url>');
  process.exit(2);
}

const results = await auditServer({ url });
let mustFailed = 0;
for (const r of results) {
  const line = { id: r.id, name: r.name, status: r.status };
  if (r.status !== 'ok') {
    line.reason = r.reason;
    line.httpStatus = r.response.status;
    line.contentType = r.response.headers.get('content-type');
    if (r.name.startsWith('MUST')) mustFailed += 1;
  }
  console.log(JSON.stringify(line));
}
console.log(JSON.stringify({ summary: true, total: results.length, mustFailed }));
process.exit(mustFailed ? 1 : 0);
