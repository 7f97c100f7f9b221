// Checks the test Hub (hf_hub_server.mjs) with the official JavaScript client, @huggingface/hub:
// lists a repository's files recursively and downloads one of them, as that client does
// against huggingface.co. Prints one "file <path> <size> <lfs sha256 or ->" line per listed
// file and "downloaded <path> <sha256>" for the download; exits non-zero on any error.
//
// Usage: node hf_hub_client_check.mjs <tools dir> <hub url> <owner/repo> <revision> <path>
import crypto from "node:crypto";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [toolsDir, hubUrl, repo, revision, filePath] = process.argv.slice(2);
const hub = await import(pathToFileURL(path.join(toolsDir, "node_modules/@huggingface/hub/dist/index.mjs")).href);

for await (const entry of hub.listFiles({ repo, revision, recursive: true, hubUrl })) {
	if (entry.type !== "file") continue;
	console.log(`file ${entry.path} ${entry.size} ${entry.lfs ? entry.lfs.oid : "-"}`);
}
const blob = await hub.downloadFile({ repo, revision, path: filePath, hubUrl, xet: false });
if (!blob) throw new Error(`${filePath}: not found`);
const bytes = Buffer.from(await blob.arrayBuffer());
console.log(`downloaded ${filePath} ${crypto.createHash("sha256").update(bytes).digest("hex")}`);
