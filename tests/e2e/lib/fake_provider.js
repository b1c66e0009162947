// tests/e2e/lib/fake_provider.js - a fake Anthropic and OpenAI API for the
// real-agent end-to-end tests (tests/e2e/agent_real.sh, agent_others.sh),
// run by Node.js in L1.
//
// It serves HTTPS on one address for every host name it holds a
// certificate for (api.anthropic.com, platform.claude.com, ...), and plays
// the parts of the provider a `claude -p` run touches:
//   POST /v1/oauth/token   the refresh grant: accepted only with the current
//                          real refresh token (FAKE_REFRESH_1 at first);
//                          answers with a rotated pair (FAKE_ACCESS_2 and
//                          FAKE_REFRESH_2 the first time, then with "-N"
//                          appended), after which the old refresh token is
//                          spent, as at a provider that rotates them
//   POST /v1/messages      accepted only with a real credential (the rotated
//                          access token or the real API key); answers one
//                          text turn, streamed (SSE) when asked, except
//                          that a prompt containing "run the check" is
//                          answered with a Bash tool call running
//                          FAKE_TOOL_COMMAND, the agent's own tool, in the
//                          guest; its result comes back in the next request
//                          and is logged ("@@FAKE tool-result real_in_result=
//                          yes|no", then the output, a "@@FAKE-OUT " line
//                          each)
//   POST /v1/responses     OpenAI's Responses API (Codex): accepted only with
//                          a real API key; answers one text turn as
//                          server-sent events.  Codex asks for a WebSocket
//                          at the same path first: that gets the 404 below,
//                          after which Codex falls back to HTTPS
//   github.com             git's smart HTTP (`git http-backend` over the
//                          bare repositories under FAKE_GIT_ROOT), only with
//                          the real GitHub token (FAKE_GH_TOKEN) as the
//                          Basic password; "@@FAKE git ... auth=..." lines
//   anything else          404, as for a path the provider does not have
// Each request is one "@@FAKE ..." line on stdout saying what it carried:
// which credential (real-access-2 or real-access-N: the newest rotated
// access token; real-key, placeholder, expired: an older access token,
// none, other), whether a kvmbox placeholder appeared anywhere in it, how many of
// this fake's earlier answers the conversation carries (a --continue launch
// sends the previous launch's exchange), and, for a message, whether the
// host's login file (FAKE_HOST_CREDS) already holds the rotated refresh
// token while the VM is still running (the agent waits for this answer).
'use strict';
const https = require('https');
const { spawn } = require('child_process');
const fs = require('fs');

const env = (k) => process.env[k] || '';
const ACCESS_1 = env('FAKE_ACCESS_1');
const ACCESS_2 = env('FAKE_ACCESS_2');
const REFRESH_1 = env('FAKE_REFRESH_1');
const REFRESH_2 = env('FAKE_REFRESH_2');
// The real API keys (comma-separated): each agent's own, where it has one.
const API_KEYS = new Set(env('FAKE_API_KEY').split(',').filter((k) => k));
const HOST_CREDS = env('FAKE_HOST_CREDS');
const GH_TOKEN = env('FAKE_GH_TOKEN');

// The provider's live tokens: what the last refresh issued.
let issued = 0;
let liveAccess = '', liveRefresh = REFRESH_1;
const spent = new Set();
const pastAccess = new Set([ACCESS_1]);

function credential(req) {
	let v = req.headers['x-api-key'] || '';
	const a = req.headers.authorization || '';
	if (!v && a.startsWith('Bearer '))
		v = a.slice(7);
	if (!v) return 'none';
	if (v && v === liveAccess) return 'real-access-' + (issued + 1);
	if (API_KEYS.has(v)) return 'real-key';
	if (pastAccess.has(v)) return 'expired';
	if (v.startsWith('kvmbox-ph-')) return 'placeholder';
	return 'other';
}

function hostFileRotated() {
	try {
		return fs.readFileSync(HOST_CREDS, 'utf8').includes(liveRefresh) ? 'yes' : 'no';
	} catch (e) {
		return 'unreadable';
	}
}

function log(fields) {
	process.stdout.write('@@FAKE ' + fields.join(' ') + '\n');
}

function json(res, status, obj) {
	res.writeHead(status, { 'content-type': 'application/json' });
	res.end(JSON.stringify(obj));
}

function tokenEndpoint(req, res, body, common) {
	let grant = {};
	try { grant = JSON.parse(body); } catch (e) { /* form bodies are not Claude Code's */ }
	const rt = String(grant.refresh_token || '');
	const ok = grant.grant_type === 'refresh_token' && rt === liveRefresh;
	const sent = ok ? 'real-refresh-' + (issued + 1) : spent.has(rt) ? 'spent'
		: rt.startsWith('kvmbox-ph-') ? 'placeholder' : 'other';
	log(['refresh', ...common, 'refresh_token=' + sent, 'status=' + (ok ? 200 : 400)]);
	if (!ok)
		return json(res, 400, { error: 'invalid_grant', error_description: 'refresh token not recognised' });
	issued++;
	const n = issued === 1 ? '' : '-' + issued;
	spent.add(liveRefresh);
	if (liveAccess) pastAccess.add(liveAccess);
	liveAccess = ACCESS_2 + n;
	liveRefresh = REFRESH_2 + n;
	json(res, 200, {
		token_type: 'Bearer', access_token: liveAccess, refresh_token: liveRefresh,
		expires_in: 28800, scope: 'user:inference user:profile',
	});
}

function textTurn(res, stream, model, text) {
	const usage = { input_tokens: 12, output_tokens: 4 };
	if (!stream) {
		return json(res, 200, {
			id: 'msg_fake', type: 'message', role: 'assistant', model,
			content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null, usage,
		});
	}
	res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
	const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
	ev('message_start', { message: { id: 'msg_fake', type: 'message', role: 'assistant', model,
		content: [], stop_reason: null, stop_sequence: null, usage } });
	ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
	ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } });
	ev('content_block_stop', { index: 0 });
	ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 4 } });
	ev('message_stop', {});
	res.end();
}

function toolTurn(res, stream, model, command) {
	const usage = { input_tokens: 12, output_tokens: 9 };
	const call = { type: 'tool_use', id: 'toolu_fake01', name: 'Bash',
		input: { command, description: 'Run the kvmbox e2e check' } };
	if (!stream) {
		return json(res, 200, { id: 'msg_fake_tool', type: 'message', role: 'assistant', model,
			content: [call], stop_reason: 'tool_use', stop_sequence: null, usage });
	}
	res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
	const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
	ev('message_start', { message: { id: 'msg_fake_tool', type: 'message', role: 'assistant', model,
		content: [], stop_reason: null, stop_sequence: null, usage } });
	ev('content_block_start', { index: 0, content_block: { ...call, input: {} } });
	ev('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify(call.input) } });
	ev('content_block_stop', { index: 0 });
	ev('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 9 } });
	ev('message_stop', {});
	res.end();
}

// The newest user turn (Claude Code may put a system turn after it).
function lastUserTurn(m) {
	return (m.messages || []).filter((t) => t.role === 'user').slice(-1)[0];
}

// The text of the newest user turn's tool result, or null.
function toolResult(m) {
	const last = lastUserTurn(m);
	if (!last || !Array.isArray(last.content))
		return null;
	const r = last.content.find((c) => c.type === 'tool_result');
	if (!r)
		return null;
	return typeof r.content === 'string' ? r.content
		: (r.content || []).map((c) => c.text || '').join('\n');
}

function wantsTool(m) {
	const last = lastUserTurn(m);
	return !!last && JSON.stringify(last.content).includes('run the check');
}

function messages(req, res, body, common) {
	const cred = credential(req);
	let m = {};
	try { m = JSON.parse(body); } catch (e) { /* answered below */ }
	const earlier = (m.messages || []).filter((t) => t.role === 'assistant' &&
		JSON.stringify(t.content).includes('FAKE-REPLY')).length;
	const ok = cred.startsWith('real-access-') || cred === 'real-key';
	log(['messages', ...common, 'auth=' + cred, 'history=' + earlier,
		'host_file_rotated=' + hostFileRotated(), 'status=' + (ok ? 200 : 401)]);
	if (!ok)
		return json(res, 401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
	const result = toolResult(m);
	if (result !== null) {
		const reals = [ACCESS_1, ACCESS_2, REFRESH_1, REFRESH_2, ...API_KEYS].filter((v) => v);
		log(['tool-result', 'real_in_result=' + (reals.some((v) => result.includes(v)) ? 'yes' : 'no')]);
		for (const line of result.split('\n'))
			process.stdout.write('@@FAKE-OUT ' + line + '\n');
	} else if (wantsTool(m) && env('FAKE_TOOL_COMMAND')) {
		return toolTurn(res, !!m.stream, m.model || 'claude-fake', env('FAKE_TOOL_COMMAND'));
	}
	textTurn(res, !!m.stream, m.model || 'claude-fake', `FAKE-REPLY auth=${cred}`);
}

// OpenAI's Responses API, streamed: the events Codex reads for one text
// turn (created, the finished message item, completed with usage).
function responses(req, res, body, common) {
	const cred = credential(req);
	let m = {};
	try { m = JSON.parse(body); } catch (e) { /* answered below */ }
	const earlier = (Array.isArray(m.input) ? m.input : []).filter((t) => t.role === 'assistant' &&
		JSON.stringify(t.content || '').includes('FAKE-REPLY')).length;
	const ok = cred === 'real-key';
	log(['responses', ...common, 'auth=' + cred, 'history=' + earlier, 'status=' + (ok ? 200 : 401)]);
	if (!ok)
		return json(res, 401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error',
			code: 'invalid_api_key' } });
	const usage = { input_tokens: 12, input_tokens_details: { cached_tokens: 0 }, output_tokens: 4,
		output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 16 };
	const item = { type: 'message', role: 'assistant', id: 'msg_fake',
		content: [{ type: 'output_text', text: `FAKE-REPLY auth=${cred}`, annotations: [] }] };
	res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
	const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
	ev('response.created', { response: { id: 'resp_fake', status: 'in_progress' } });
	ev('response.output_item.done', { output_index: 0, item });
	ev('response.completed', { response: { id: 'resp_fake', status: 'completed', usage } });
	res.end();
}

// git http-backend as a CGI program (RFC 3875): the request's body on its
// stdin, its "Status:" and headers, a blank line, then the body.
function gitBackend(req, res, raw, common) {
	const auth = req.headers.authorization || '';
	let pass = '';
	if (auth.startsWith('Basic ')) {
		const d = Buffer.from(auth.slice(6), 'base64').toString('utf8');
		pass = d.slice(d.indexOf(':') + 1);
	}
	const cred = !pass ? 'none' : pass === GH_TOKEN ? 'real'
		: pass.startsWith('kvmbox-ph-') ? 'placeholder' : 'other';
	const [path, query = ''] = req.url.split('?');
	log(['git', ...common, 'auth=' + cred, 'request=' + req.method + ':' + path + (query ? '?' + query : '')]);
	if (cred !== 'real') {
		res.writeHead(401, { 'www-authenticate': 'Basic realm="GitHub"' });
		return res.end();
	}
	const cgi = spawn('git', ['http-backend'], { env: {
		PATH: process.env.PATH, GIT_PROJECT_ROOT: env('FAKE_GIT_ROOT'), GIT_HTTP_EXPORT_ALL: '1',
		REMOTE_USER: 'x-access-token', REQUEST_METHOD: req.method, PATH_INFO: path,
		QUERY_STRING: query, CONTENT_TYPE: req.headers['content-type'] || '',
		CONTENT_LENGTH: String(raw.length), GIT_PROTOCOL: req.headers['git-protocol'] || '',
		HTTP_CONTENT_ENCODING: req.headers['content-encoding'] || '',
	} });
	const out = [];
	cgi.stdout.on('data', (c) => out.push(c));
	cgi.stderr.on('data', (c) => process.stdout.write('@@FAKE git-stderr ' + c.toString().trim() + '\n'));
	cgi.stdin.on('error', () => {});
	cgi.stdin.end(raw);
	cgi.on('close', () => {
		const all = Buffer.concat(out);
		let sep = all.indexOf('\r\n\r\n'), skip = 4;
		const lf = all.indexOf('\n\n');
		if (sep < 0 || (lf >= 0 && lf < sep))
			sep = lf, skip = 2;
		if (sep < 0) {
			res.writeHead(502);
			return res.end();
		}
		let status = 200;
		const headers = {};
		for (const line of all.slice(0, sep).toString('latin1').split(/\r?\n/)) {
			const i = line.indexOf(':');
			if (i < 0) continue;
			const k = line.slice(0, i).trim(), v = line.slice(i + 1).trim();
			if (k.toLowerCase() === 'status') status = parseInt(v, 10);
			else headers[k] = v;
		}
		res.writeHead(status, headers);
		res.end(all.slice(sep + skip));
	});
}

const server = https.createServer({
	key: fs.readFileSync(env('FAKE_KEY')), cert: fs.readFileSync(env('FAKE_CERT')),
}, (req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const raw = Buffer.concat(chunks);
		const body = raw.toString('utf8');
		const all = JSON.stringify(req.headers) + req.url + body;
		const host = String(req.headers.host || '').replace(/:443$/, '');
		const path = req.url.split('?')[0];
		const common = ['host=' + host, 'placeholder_seen=' + (all.includes('kvmbox-ph-') ? 'yes' : 'no')];
		if (host === 'github.com')
			return gitBackend(req, res, raw, common);
		if (req.method === 'POST' && path === '/v1/oauth/token')
			return tokenEndpoint(req, res, body, common);
		if (req.method === 'POST' && path === '/v1/messages')
			return messages(req, res, body, common);
		if (req.method === 'POST' && path === '/v1/responses')
			return responses(req, res, body, common);
		log(['other', ...common, 'request=' + req.method + ':' + path]);
		json(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'not here' } });
	});
});
server.listen(Number(env('FAKE_PORT') || 443), env('FAKE_ADDR') || '0.0.0.0', () => log(['listening']));
