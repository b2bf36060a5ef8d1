// The official MCP TypeScript SDK connects to Gatehouse's /mcp with
// nothing but its URL: it discovers the protected-resource and
// authorization-server metadata from the 401, identifies itself with a
// client ID metadata document (MODE=cimd, served here over https on
// loopback) or registers dynamically (MODE=dcr), and drives the
// authorization code flow with PKCE and resource while a scripted browser
// (fetch with a cookie jar) signs in and allows. Then it lists and calls
// the tools. Any failed check exits non-zero.
//
//   MCP_URL=… MODE=cimd|dcr USERNAME=… PASSWORD=… [TLS_CERT=… TLS_KEY=…] node client.mjs
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import https from "node:https";
import net from "node:net";
import fs from "node:fs";

const { MCP_URL, MODE, USERNAME, PASSWORD } = process.env;
const issuer = new URL(MCP_URL).origin;

function check(ok, what) {
	if (!ok) {
		console.error(`FAIL (${MODE}): ${what}`);
		process.exit(1);
	}
	console.log(`ok (${MODE}): ${what}`);
}

async function freePort() {
	return new Promise((resolve) => {
		const s = net.createServer().listen(0, "127.0.0.1", () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// The callback port is chosen at run time, as a native app's would be.
const port = await freePort();
let redirectUrl;
let clientMetadataUrl;
let docServer;
if (MODE === "cimd") {
	// The document lists the loopback redirect without a port: any port
	// the app picks matches (RFC 8252 §7.3).
	redirectUrl = `http://localhost:${port}/callback`;
	docServer = https.createServer({ cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) });
	await new Promise((r) => docServer.listen(0, "127.0.0.1", r));
	clientMetadataUrl = `https://localhost:${docServer.address().port}/mcp-client.json`;
	const doc = JSON.stringify({
		client_id: clientMetadataUrl,
		client_name: "TypeScript SDK test client",
		redirect_uris: ["http://localhost/callback"],
		grant_types: ["authorization_code", "refresh_token"],
		response_types: ["code"],
		token_endpoint_auth_method: "none",
	});
	docServer.on("request", (req, res) => {
		if (req.url !== "/mcp-client.json") {
			res.writeHead(404).end();
			return;
		}
		res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "max-age=300" }).end(doc);
	});
} else {
	redirectUrl = `http://127.0.0.1:${port}/callback`;
}

let clientInfo;
let tokens;
let verifier;
let authorizationUrl;
const provider = {
	get redirectUrl() {
		return redirectUrl;
	},
	get clientMetadata() {
		return {
			client_name: "TypeScript SDK test client",
			redirect_uris: [redirectUrl],
			grant_types: ["authorization_code", "refresh_token"],
			response_types: ["code"],
			token_endpoint_auth_method: "none",
			software_id: "gatehouse-ts-sdk-test",
			software_version: "1",
		};
	},
	clientMetadataUrl,
	// Gatehouse, like fosite, wants a state of at least 8 characters.
	state: () => crypto.randomUUID(),
	clientInformation: () => clientInfo,
	saveClientInformation: (info) => {
		clientInfo = info;
	},
	tokens: () => tokens,
	saveTokens: (t) => {
		tokens = t;
	},
	redirectToAuthorization: (url) => {
		authorizationUrl = url;
	},
	saveCodeVerifier: (v) => {
		verifier = v;
	},
	codeVerifier: () => verifier,
};

// browser is a person's browser: a cookie jar, and every redirect seen.
const jar = new Map();
async function browse(url, form) {
	const headers = { Cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") };
	const init = { redirect: "manual", headers };
	if (form) {
		init.method = "POST";
		init.body = new URLSearchParams(form);
	}
	const res = await fetch(new URL(url, issuer), init);
	for (const c of res.headers.getSetCookie()) {
		const [pair] = c.split(";");
		const i = pair.indexOf("=");
		jar.set(pair.slice(0, i), pair.slice(i + 1));
	}
	return { status: res.status, location: res.headers.get("location"), body: await res.text() };
}

function connect() {
	const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
	const client = new Client({ name: "gatehouse-ts-test", version: "1" });
	return { client, transport };
}

let { client, transport } = connect();
try {
	await client.connect(transport);
	check(false, "connecting without a token should need authorization");
} catch (e) {
	check(e instanceof UnauthorizedError, `the 401 starts authorization (${e})`);
}
check(authorizationUrl !== undefined, "the SDK built an authorization URL");
const q = authorizationUrl.searchParams;
check(authorizationUrl.origin + authorizationUrl.pathname === issuer + "/oauth2/authorize", "the authorization endpoint came from discovery");
check(q.get("resource") === MCP_URL, `resource=${q.get("resource")}`);
check(q.get("code_challenge_method") === "S256" && q.get("code_challenge"), "PKCE S256");
check(q.get("redirect_uri") === redirectUrl, `redirect_uri=${q.get("redirect_uri")}`);
if (MODE === "cimd") {
	check(q.get("client_id") === clientMetadataUrl, "the client_id is the metadata document's URL");
} else {
	check(clientInfo?.client_id && !clientInfo.client_id.startsWith("http"), "registered dynamically");
}

let r = await browse(authorizationUrl.href);
check(r.status === 303 && r.location.startsWith("/login"), `authorize sends to sign-in (${r.status} ${r.location})`);
const returnTo = new URL(r.location, issuer).searchParams.get("return_to");
r = await browse("/login", { username: USERNAME, password: PASSWORD, return_to: returnTo });
check(r.status === 303 && r.location === returnTo, `signed in (${r.status})`);
r = await browse(r.location);
check(r.status === 200 && r.body.includes('name="decision"'), `consent page (${r.status})`);
if (MODE === "cimd") {
	check(r.body.includes("has not vetted this app") && r.body.includes("localhost:"), "the consent page names the document's host, unvetted");
}
const action = r.body.match(/action="(\/oauth2\/authorize\?[^"]*)"/)[1].replaceAll("&amp;", "&");
r = await browse(action, { decision: "allow" });
check(r.status === 303 && r.location.startsWith(redirectUrl + "?"), `allowed, back to ${r.location}`);
const back = new URL(r.location).searchParams;
check(back.get("iss") === issuer, "iss in the redirect (RFC 9207)");
await transport.finishAuth(back.get("code"));
check(tokens?.access_token, "exchanged the code for tokens");

({ client, transport } = connect());
await client.connect(transport);
const { tools } = await client.listTools();
const names = tools.map((t) => t.name).sort();
check(JSON.stringify(names) === JSON.stringify(["add_book", "delete_book", "get_book", "list_books", "update_book"]), `tools ${names}`);
let res = await client.callTool({ name: "add_book", arguments: { title: `Written by the ${MODE} client`, year: 2025 } });
check(!res.isError && res.structuredContent?.id, "add_book");
const id = res.structuredContent.id;
res = await client.callTool({ name: "list_books", arguments: {} });
check(!res.isError && res.structuredContent.books.some((b) => b.id === id), "list_books shows it");
res = await client.callTool({ name: "get_book", arguments: { id: "not-a-book" } });
check(res.isError === true, "a bad id is a tool error");
res = await client.callTool({ name: "delete_book", arguments: { id } });
check(!res.isError, "delete_book");

// The token is for /mcp only.
const books = await fetch(issuer + "/api/books", { headers: { Authorization: `Bearer ${tokens.access_token}` } });
check(books.status === 401 && (books.headers.get("www-authenticate") ?? "").includes("resource_metadata="), "the books API refuses the MCP token");

await client.close();
docServer?.close();
console.log(`${MODE}: passed`);
