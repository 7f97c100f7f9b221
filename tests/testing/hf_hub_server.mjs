// A test Hugging Face Hub: the subset of the Hub's HTTP API that modelcache's hf:// source and
// the official @huggingface/hub client use, served on 127.0.0.1, plus a second "storage" server
// that the Hub's resolve endpoint redirects LFS files to with signed URLs that expire.
//
//   GET  /api/{models|datasets}/<owner>/<repo>/revision/<rev>   {"id", "sha", "private", ...}
//   GET  /api/{models|datasets}/<owner>/<repo>/tree/<rev>[/<path>]?recursive=true[&cursor=..]
//        JSON array of entries ({"type", "oid", "size", "path", "lfs": {"oid", "size",
//        "pointerSize"}}), paginated with `Link: <url>; rel="next"` as the Hub does
//   HEAD/GET /[datasets/]<owner>/<repo>/resolve/<rev>/<path>
//        LFS files: 302 to the storage server (X-Linked-Size, X-Linked-Etag, X-Repo-Commit);
//        other files: served here (200 or 206), ETag the git blob id
//   Private repositories answer 401 without the right `Authorization: Bearer <token>`, gated
//   ones 401 without a token and 403 with a token that was not granted access.
//
// The storage server serves GET /<sha256>?expires=<ms>&uses=<n>&sig=<hmac> with Range. A URL
// past its expiry or use count gets 403 (as a CDN's expired signature does). A request that
// carries an Authorization header is answered 400 and counted: the Hub token must never
// reach the storage host.
//
// Test control on the Hub port (PUT, JSON bodies):
//   /_test/repo    {"id", "type", "private", "gated", "tokens": [..]}
//   /_test/commit  {"id", "type", "dir", "branch", "lfsMinSize"} -> {"commit": "<sha>"}
//                  (every file below dir, read once and kept in memory)
//   /_test/branch  {"id", "type", "branch", "commit"}
//   /_test/options {"pageSize", "urlTtlMs", "urlMaxUses", "rateLimit": {"count", "retryAfter"},
//                   "storageBytesPerSecond", "moveBranch": {"id", "type", "branch", "commit",
//                   "afterStorageRequests"}}
//   GET /_test/stats  "name value" lines (see stats below)
//
// Usage: node hf_hub_server.mjs  (prints "hub=<port> storage=<port>" once both listen)
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

const secret = crypto.randomBytes(16);
const repos = new Map(); // "<type>/<id>" -> {private, gated, tokens, commits: Map, branches: Map}
const blobs = new Map(); // sha256 -> Buffer (LFS contents, served by the storage server)
let storagePort = 0;
const options = {
	pageSize: 1000,
	urlTtlMs: 3600_000,
	urlMaxUses: 0, // 0: unlimited
	rateLimit: { count: 0, retryAfter: 1 },
	storageBytesPerSecond: 0, // 0: unthrottled
	moveBranch: null,
};
const stats = {
	hub_requests: 0,
	hub_rate_limited: 0,
	// Milliseconds between the last 429 and the next API request (how long the client waited).
	hub_wait_after_429_ms: -1,
	resolve_requests: 0,
	tree_requests: 0,
	revision_requests: 0,
	storage_requests: 0,
	storage_range_requests: 0,
	storage_bytes: 0,
	storage_expired: 0,
	storage_token_seen: 0,
	hub_bytes: 0,
	branch_moves: 0,
};
let lastRateLimitedAt = 0;
const urlUses = new Map(); // sig -> uses so far

function repoKey(type, id) {
	return `${type}/${id}`;
}

function readBody(request) {
	return new Promise((resolve, reject) => {
		const parts = [];
		request.on("data", (part) => parts.push(part));
		request.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
		request.on("error", reject);
	});
}

function sendJson(response, status, value, headers = {}) {
	const body = Buffer.from(JSON.stringify(value));
	response.writeHead(status, { "Content-Type": "application/json", "Content-Length": body.length, ...headers });
	response.end(body);
}

function sendError(response, status, message, code) {
	const headers = { "X-Error-Message": message };
	if (code) headers["X-Error-Code"] = code;
	sendJson(response, status, { error: message }, headers);
}

function gitBlobOid(content) {
	return crypto.createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

function walk(dir, prefix = "") {
	const files = [];
	for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
		const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
		if (entry.isDirectory()) files.push(...walk(path.join(dir, entry.name), relative));
		else if (entry.isFile()) files.push({ path: relative, absolute: path.join(dir, entry.name) });
	}
	return files;
}

function makeCommit(repo, body) {
	const lfsMinSize = body.lfsMinSize ?? 1024;
	const files = [];
	const digest = crypto.createHash("sha1").update(String(repo.commits.size)).update(crypto.randomBytes(8));
	for (const file of walk(body.dir)) {
		const content = fs.readFileSync(file.absolute);
		const sha256 = crypto.createHash("sha256").update(content).digest("hex");
		const lfs = content.length >= lfsMinSize;
		const entry = { path: file.path, size: content.length, sha256, lfs, content: lfs ? null : content };
		if (lfs) {
			blobs.set(sha256, content);
			const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${content.length}\n`;
			entry.oid = gitBlobOid(Buffer.from(pointer));
			entry.pointerSize = pointer.length;
		} else {
			entry.oid = gitBlobOid(content);
		}
		digest.update(file.path).update(entry.oid);
		files.push(entry);
	}
	const sha = digest.digest("hex");
	repo.commits.set(sha, files);
	repo.branches.set(body.branch ?? "main", sha);
	return sha;
}

function treeEntries(files, prefix, recursive) {
	const entries = [];
	const folders = new Set();
	for (const file of files) {
		if (prefix && !file.path.startsWith(prefix + "/")) continue;
		const rest = prefix ? file.path.slice(prefix.length + 1) : file.path;
		const parts = rest.split("/");
		for (let i = 1; i < parts.length; i++) {
			const folder = (prefix ? prefix + "/" : "") + parts.slice(0, i).join("/");
			if (!folders.has(folder) && (recursive || i === 1)) {
				folders.add(folder);
				entries.push({ type: "directory", oid: crypto.createHash("sha1").update(folder).digest("hex"), size: 0, path: folder });
			}
		}
		if (!recursive && parts.length > 1) continue;
		const entry = { type: "file", oid: file.oid, size: file.size, path: file.path };
		if (file.lfs) entry.lfs = { oid: file.sha256, size: file.size, pointerSize: file.pointerSize };
		entries.push(entry);
	}
	return entries;
}

// The repo's answer to the caller's token: null when allowed, else [status, message].
function refusal(repo, id, request) {
	if (!repo.private && !repo.gated) return null;
	const auth = request.headers["authorization"] || "";
	const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
	if (token && repo.tokens.includes(token)) return null;
	if (repo.gated && token) return [403, `Access to model ${id} is restricted and you are not in the authorized list.`];
	if (repo.gated) return [401, `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`];
	return [401, "Repository not found"];
}

function resolveRevision(repo, revision) {
	if (repo.commits.has(revision)) return revision;
	return repo.branches.get(revision) ?? null;
}

function parseRange(header, size) {
	const match = /^bytes=(\d*)-(\d*)$/.exec(header || "");
	if (!match) return null;
	let first = match[1] === "" ? size - Number(match[2]) : Number(match[1]);
	let last = match[1] === "" || match[2] === "" ? size - 1 : Number(match[2]);
	if (first > last || first >= size) return "unsatisfiable";
	return [first, Math.min(last, size - 1)];
}

// Writes content (or its requested range) with the throttle applied; returns bytes sent.
async function sendContent(request, response, content, headers) {
	const range = parseRange(request.headers["range"], content.length);
	if (range === "unsatisfiable") {
		response.writeHead(416, { "Content-Range": `bytes */${content.length}` });
		response.end();
		return 0;
	}
	let body = content;
	if (range) {
		body = content.subarray(range[0], range[1] + 1);
		headers["Content-Range"] = `bytes ${range[0]}-${range[1]}/${content.length}`;
	}
	headers["Content-Length"] = body.length;
	headers["Accept-Ranges"] = "bytes";
	response.writeHead(range ? 206 : 200, headers);
	if (request.method === "HEAD") {
		response.end();
		return 0;
	}
	const rate = options.storageBytesPerSecond;
	if (!rate) {
		response.end(body);
		return body.length;
	}
	const slice = Math.max(1024, Math.floor(rate / 20));
	for (let at = 0; at < body.length; at += slice) {
		if (response.destroyed) return at;
		response.write(body.subarray(at, at + slice));
		await new Promise((resolve) => setTimeout(resolve, (1000 * slice) / rate));
		// Checked after the pause, not from write()'s answer: a "drain" that came during the
		// pause would never come again. A client that goes away ends the wait too.
		if (response.writableNeedDrain && !response.destroyed) {
			await new Promise((resolve) => {
				response.once("drain", resolve);
				response.once("close", resolve);
			});
		}
	}
	response.end();
	return body.length;
}

function signedUrl(sha256) {
	const expires = Date.now() + options.urlTtlMs;
	const uses = options.urlMaxUses;
	const nonce = crypto.randomBytes(6).toString("hex");
	const sig = crypto.createHmac("sha256", secret).update(`${sha256}:${expires}:${uses}:${nonce}`).digest("hex");
	return `http://127.0.0.1:${storagePort}/${sha256}?expires=${expires}&uses=${uses}&nonce=${nonce}&sig=${sig}`;
}

async function handleHub(request, response) {
	const url = new URL(request.url, "http://hub");
	const parts = url.pathname.split("/").filter((part) => part !== "").map(decodeURIComponent);
	if (parts[0] === "_test") return handleControl(request, response, parts[1]);
	stats.hub_requests++;
	if (lastRateLimitedAt && stats.hub_wait_after_429_ms < 0) {
		stats.hub_wait_after_429_ms = Date.now() - lastRateLimitedAt;
	}
	if (options.rateLimit.count > 0) {
		options.rateLimit.count--;
		stats.hub_rate_limited++;
		lastRateLimitedAt = Date.now();
		stats.hub_wait_after_429_ms = -1;
		const after = options.rateLimit.retryAfter;
		// As the Hub: Retry-After, and the IETF RateLimit fields (r: left, t: seconds to reset).
		return sendJson(response, 429, { error: "You have been rate-limited; retry later" }, {
			"Retry-After": String(after),
			"RateLimit": `"api";r=0;t=${after}`,
			"RateLimit-Policy": `"fixed window";"api";q=1000;w=300`,
			"X-Error-Code": "RateLimited",
		});
	}
	if (parts[0] === "api") return handleApi(request, response, url, parts.slice(1));
	// [datasets/]<owner>/<repo>/resolve/<rev>/<path...>
	let type = "model";
	let rest = parts;
	if (rest[0] === "datasets") {
		type = "dataset";
		rest = rest.slice(1);
	}
	if (rest.length < 5 || rest[2] !== "resolve") return sendError(response, 404, "Not found", "EntryNotFound");
	stats.resolve_requests++;
	const id = `${rest[0]}/${rest[1]}`;
	const repo = repos.get(repoKey(type, id));
	if (!repo) return sendError(response, 401, "Repository not found", "RepoNotFound");
	const denied = refusal(repo, id, request);
	if (denied) return sendError(response, denied[0], denied[1], "GatedRepo");
	const commit = resolveRevision(repo, rest[3]);
	if (!commit) return sendError(response, 404, `Revision not found: ${rest[3]}`, "RevisionNotFound");
	const filePath = rest.slice(4).join("/");
	const file = repo.commits.get(commit).find((entry) => entry.path === filePath);
	if (!file) return sendError(response, 404, `Entry not found: ${filePath}`, "EntryNotFound");
	const headers = { "X-Repo-Commit": commit };
	if (file.lfs) {
		headers["X-Linked-Size"] = file.size;
		headers["X-Linked-Etag"] = `"${file.sha256}"`;
		headers["ETag"] = `"${file.sha256}"`;
		headers["Location"] = signedUrl(file.sha256);
		headers["Content-Length"] = 0;
		response.writeHead(302, headers);
		return response.end();
	}
	headers["ETag"] = `"${file.oid}"`;
	// Not `+= await`: that reads the counter before the wait and loses concurrent responses.
	const sent = await sendContent(request, response, file.content, headers);
	stats.hub_bytes += sent;
}

function handleApi(request, response, url, parts) {
	// {models|datasets}/<owner>/<repo>/{revision|tree}/<rev>[/<path...>]
	const type = parts[0] === "datasets" ? "dataset" : parts[0] === "models" ? "model" : null;
	if (!type || parts.length < 5) return sendError(response, 404, "Not found");
	const id = `${parts[1]}/${parts[2]}`;
	const repo = repos.get(repoKey(type, id));
	if (!repo) return sendError(response, 401, "Repository not found", "RepoNotFound");
	const denied = refusal(repo, id, request);
	if (denied) return sendError(response, denied[0], denied[1], "GatedRepo");
	const commit = resolveRevision(repo, parts[4]);
	if (!commit) return sendError(response, 404, `Invalid rev id: ${parts[4]}`, "RevisionNotFound");
	const files = repo.commits.get(commit);
	if (parts[3] === "revision") {
		stats.revision_requests++;
		return sendJson(response, 200, {
			id,
			sha: commit,
			private: repo.private,
			gated: repo.gated ? "manual" : false,
			siblings: files.map((file) => ({ rfilename: file.path })),
		});
	}
	if (parts[3] !== "tree") return sendError(response, 404, "Not found");
	stats.tree_requests++;
	const prefix = parts.slice(5).join("/");
	const entries = treeEntries(files, prefix, url.searchParams.get("recursive") === "true");
	if (prefix && entries.length === 0) return sendError(response, 404, `Entry not found: ${prefix}`, "EntryNotFound");
	const cursor = Number(url.searchParams.get("cursor") || 0);
	const page = entries.slice(cursor, cursor + options.pageSize);
	const headers = {};
	if (cursor + options.pageSize < entries.length) {
		const next = new URL(url.href);
		next.searchParams.set("cursor", String(cursor + options.pageSize));
		headers["Link"] = `<http://${request.headers.host}${next.pathname}${next.search}>; rel="next"`;
	}
	return sendJson(response, 200, page, headers);
}

async function handleControl(request, response, what) {
	if (what === "stats") {
		const text = Object.entries(stats).map(([name, value]) => `${name} ${value}\n`).join("");
		response.writeHead(200, { "Content-Type": "text/plain" });
		return response.end(text);
	}
	const body = JSON.parse((await readBody(request)) || "{}");
	const key = repoKey(body.type ?? "model", body.id);
	if (what === "repo") {
		repos.set(key, {
			private: !!body.private,
			gated: !!body.gated,
			tokens: body.tokens ?? [],
			commits: new Map(),
			branches: new Map(),
		});
		return sendJson(response, 200, {});
	}
	if (what === "commit") {
		const repo = repos.get(key);
		if (!repo) return sendError(response, 404, `no repo ${key}`);
		return sendJson(response, 200, { commit: makeCommit(repo, body) });
	}
	if (what === "branch") {
		const repo = repos.get(key);
		if (!repo || !repo.commits.has(body.commit)) return sendError(response, 404, `no repo or commit ${key}`);
		repo.branches.set(body.branch, body.commit);
		return sendJson(response, 200, {});
	}
	if (what === "options") {
		Object.assign(options, body);
		return sendJson(response, 200, {});
	}
	return sendError(response, 404, `unknown control ${what}`);
}

async function handleStorage(request, response) {
	stats.storage_requests++;
	if (request.headers["authorization"]) {
		stats.storage_token_seen++;
		return sendError(response, 400, "Authorization header sent to the storage host");
	}
	const url = new URL(request.url, "http://storage");
	const sha256 = url.pathname.slice(1);
	const expires = url.searchParams.get("expires");
	const uses = url.searchParams.get("uses");
	const nonce = url.searchParams.get("nonce");
	const want = crypto.createHmac("sha256", secret).update(`${sha256}:${expires}:${uses}:${nonce}`).digest("hex");
	if (url.searchParams.get("sig") !== want || !blobs.has(sha256)) {
		return sendError(response, 403, "SignatureDoesNotMatch");
	}
	const used = (urlUses.get(want) ?? 0) + 1;
	urlUses.set(want, used);
	if (Date.now() > Number(expires) || (Number(uses) > 0 && used > Number(uses))) {
		stats.storage_expired++;
		return sendError(response, 403, "Request has expired");
	}
	if (request.headers["range"]) stats.storage_range_requests++;
	const move = options.moveBranch;
	if (move && stats.storage_requests >= move.afterStorageRequests) {
		options.moveBranch = null;
		repos.get(repoKey(move.type ?? "model", move.id)).branches.set(move.branch, move.commit);
		stats.branch_moves++;
	}
	const sent = await sendContent(request, response, blobs.get(sha256), { ETag: `"${sha256}"` });
	stats.storage_bytes += sent;
}

function serve(handler) {
	return http.createServer((request, response) => {
		handler(request, response).catch((error) => {
			if (!response.headersSent) sendError(response, 500, String(error));
			else response.destroy();
		});
	});
}

const hub = serve(async (request, response) => handleHub(request, response));
const storage = serve(async (request, response) => handleStorage(request, response));
// Keep-alive connections must not outlive the client's idea of them.
hub.keepAliveTimeout = storage.keepAliveTimeout = 30_000;
storage.listen(0, "127.0.0.1", () => {
	storagePort = storage.address().port;
	hub.listen(0, "127.0.0.1", () => {
		process.stdout.write(`hub=${hub.address().port} storage=${storagePort}\n`);
	});
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
