// Record-proof verification in the browser (docs/formats.md §8), with WebCrypto only:
// SHA-256 for RFC 9162 hashes, Ed25519 for C2SP signed-note checkpoints.
// It trusts nothing but the vkeys it is given. Runs unchanged in Node 20 (tests).

const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();
export const STEPS = ["record leaf", "dataset path", "manifest", "log path",
  "checkpoint signature", "anchor"];
const RECORD_PROOF_TYPE = "trialproof/record-proof/v1";
const MANIFEST_TYPE = "trialproof/dataset-version/v1";
const ENTRY_PROOF_TYPE = "trialproof/entry-proof/v1";
const ED25519 = 0x01;

export class StepError extends Error {
  constructor(step, reason) {
    super(`${step}: ${reason}`);
    this.step = step;
    this.reason = reason;
  }
}

export class MalformedError extends Error {}

export function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 || /[^0-9a-f]/.test(hex)) {
    throw new MalformedError(`not lowercase hex: ${String(hex).slice(0, 20)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function b64decode(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    throw new MalformedError("not valid base64");
  }
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export async function sha256(bytes) {
  return new Uint8Array(await subtle.digest("SHA-256", bytes));
}

// RFC 9162 §2.1.1: leaf = H(0x00 || d), node = H(0x01 || left || right).
export const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

// RFC 9162 §2.1.3.2: the root an inclusion proof yields for a leaf hash.
export async function rootFromInclusionProof(index, size, leaf, proof) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    throw new Error(`leaf index ${index} is out of range for tree size ${size}`);
  }
  for (const h of [leaf, ...proof]) {
    if (h.length !== 32) throw new Error("a hash is not 32 bytes");
  }
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new Error("the proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is too short");
  return r;
}

// RFC 8785 (JCS): members sorted by UTF-16 code units, numbers and strings as ES6 writes them.
export function canonicalJson(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error("a number is not finite");
    return JSON.stringify(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  throw new Error(`cannot canonicalize a ${typeof value}`);
}

// C2SP signed-note: vkey = name+hex(keyid)+base64(0x01 || key); keyid = SHA-256(name||\n||0x01||key)[:4].
export async function parseVkey(vkey) {
  const text = vkey.trim();
  const first = text.indexOf("+");
  const second = text.indexOf("+", first + 1);
  if (first < 1 || second < 0) throw new MalformedError("a vkey has the form name+keyid+base64key");
  const [name, hexId, b64] = [text.slice(0, first), text.slice(first + 1, second),
    text.slice(second + 1)];
  const raw = b64decode(b64);
  if (raw.length !== 33 || raw[0] !== ED25519) throw new MalformedError("not an Ed25519 vkey");
  const keyId = (await sha256(concat(enc.encode(`${name}\n`), raw))).slice(0, 4);
  if (bytesToHex(keyId) !== hexId) throw new MalformedError("the vkey's key ID does not match");
  const key = await subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
  return { name, keyId, key };
}

export function parseNote(note) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new MalformedError("not a signed note");
  const text = note.slice(0, split + 1);
  const signatures = note.slice(split + 2, -1).split("\n").map((line) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new MalformedError("malformed signature line");
    const raw = b64decode(m[2]);
    if (raw.length < 5) throw new MalformedError("signature too short");
    return { name: m[1], keyId: raw.slice(0, 4), signature: raw.slice(4) };
  });
  return { text, signatures };
}

export function parseCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.length < 4 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) {
    throw new MalformedError("malformed checkpoint body");
  }
  const root = b64decode(lines[2]);
  if (root.length !== 32) throw new MalformedError("checkpoint root is not 32 bytes");
  return { origin: lines[0], size: Number(lines[1]), root };
}

// A note is trusted when a trusted key signed it; a trusted key's bad signature is an error.
export async function openNote(note, trusted) {
  const parsed = parseNote(note);
  let signed = false;
  for (const sig of parsed.signatures) {
    const v = trusted.find((t) => t.name === sig.name && equal(t.keyId, sig.keyId));
    if (!v) continue;
    const ok = await subtle.verify({ name: "Ed25519" }, v.key, sig.signature,
      enc.encode(parsed.text));
    if (!ok) throw new Error(`signature from trusted key ${sig.name} does not verify`);
    signed = true;
  }
  if (!signed) throw new Error("note has no signature from a trusted key");
  return parsed;
}

// RFC 9162 §2.1.3.2: an inclusion proof for (index, size) has exactly this many hashes.
function inclusionProofLength(index, size) {
  let inner = 0;
  for (let x = index ^ (size - 1); x > 0; x = Math.floor(x / 2)) inner += 1;
  let border = 0;
  for (let x = Math.floor(index / 2 ** inner); x > 0; x = Math.floor(x / 2)) border += x % 2;
  return inner + border;
}

function checkPath(index, size, hashes, what) {
  if (size === 0 || index >= size) throw new MalformedError(`${what}: index ${index} is not below size ${size}`);
  if (hashes.length !== inclusionProofLength(index, size)) {
    throw new MalformedError(`${what}: ${hashes.length} hashes do not fit index ${index} of size ${size}`);
  }
}

function checkShape(proof) {
  const isCount = (v) => Number.isSafeInteger(v) && v >= 0;
  const isHashes = (v) => Array.isArray(v) && v.length <= 63
    && v.every((h) => typeof h === "string" && /^[0-9a-f]{64}$/.test(h));
  if (!proof || typeof proof !== "object" || proof.type !== RECORD_PROOF_TYPE) {
    throw new MalformedError(`"type" must be "${RECORD_PROOF_TYPE}"`);
  }
  for (const f of ["leaf_index", "dataset_size", "log_index", "log_size"]) {
    if (!isCount(proof[f])) throw new MalformedError(`${f} must be a non-negative integer`);
  }
  for (const f of ["dataset_proof", "log_proof"]) {
    if (!isHashes(proof[f])) throw new MalformedError(`${f} must be a list of hex hashes`);
  }
  if (typeof proof.salt !== "string" || !/^[0-9a-f]{64}$/.test(proof.salt)) {
    throw new MalformedError("salt must be 64 hex digits");
  }
  for (const f of ["record", "manifest"]) {
    if (!proof[f] || typeof proof[f] !== "object" || Array.isArray(proof[f])) {
      throw new MalformedError(`${f} must be an object`);
    }
  }
  if (typeof proof.checkpoint !== "string") throw new MalformedError("checkpoint must be text");
  if (!Array.isArray(proof.anchors)) throw new MalformedError("anchors must be a list");
  checkPath(proof.leaf_index, proof.dataset_size, proof.dataset_proof, "dataset_proof");
  checkPath(proof.log_index, proof.log_size, proof.log_proof, "log_proof");
}

async function step(name, work) {
  try {
    return await work();
  } catch (e) {
    if (e instanceof StepError) throw e;
    throw new StepError(name, e.message);
  }
}

// docs/formats.md §8, steps in the Python verifier's order. Resolves to a summary, or throws
// StepError (a step failed) or MalformedError.
export async function verifyRecordProof(proof, trustedVkeys) {
  checkShape(proof);
  const trusted = await Promise.all(trustedVkeys.map(parseVkey));
  const leaf = await step("record leaf", async () => leafHash(
    concat(hexToBytes(proof.salt), enc.encode(canonicalJson(proof.record)))));
  const m = proof.manifest;
  await step("manifest", async () => {
    if (m.type !== MANIFEST_TYPE) throw new Error(`manifest type is not ${MANIFEST_TYPE}`);
    if (typeof m.root !== "string" || !/^[0-9a-f]{64}$/.test(m.root)) {
      throw new Error("manifest root must be 64 hex digits");
    }
    if (m.records !== proof.dataset_size) {
      throw new Error(`manifest has ${m.records} records, proof says ${proof.dataset_size}`);
    }
  });
  await step("dataset path", async () => {
    const root = await rootFromInclusionProof(proof.leaf_index, proof.dataset_size, leaf,
      proof.dataset_proof.map(hexToBytes));
    if (bytesToHex(root) !== m.root) {
      // The path is well formed, so the record (its values or salt) is what differs.
      throw new StepError("record leaf", "the record's leaf does not lead to the manifest's root");
    }
  });
  const checkpoint = await step("checkpoint signature",
    async () => parseCheckpoint(parseNote(proof.checkpoint).text));
  await step("log path", async () => {
    const manifestLeaf = await leafHash(enc.encode(canonicalJson(m)));
    const root = await rootFromInclusionProof(proof.log_index, proof.log_size, manifestLeaf,
      proof.log_proof.map(hexToBytes));
    if (proof.log_size !== checkpoint.size) {
      throw new Error(`log_size ${proof.log_size} is not the checkpoint's size ${checkpoint.size}`);
    }
    if (!equal(root, checkpoint.root)) throw new Error("the manifest does not lead to the checkpoint's root");
  });
  await step("checkpoint signature", async () => openNote(proof.checkpoint, trusted));
  return { origin: checkpoint.origin, size: checkpoint.size, trial: m.trial,
    dataset: m.dataset, version: m.version, leaf_index: proof.leaf_index,
    log_index: proof.log_index, anchors_not_checked: uncheckedAnchors(proof) };
}

// Step 4: receipts are not checked here; each is reported as such (docs/formats.md §8).
function uncheckedAnchors(proof) {
  return proof.anchors.map((a) => (a && typeof a.type === "string" ? a.type : "?"));
}

function checkEntryShape(proof) {
  const isCount = (v) => Number.isSafeInteger(v) && v >= 0;
  if (!proof || typeof proof !== "object" || proof.type !== ENTRY_PROOF_TYPE) {
    throw new MalformedError(`"type" must be "${ENTRY_PROOF_TYPE}"`);
  }
  for (const f of ["log_index", "log_size"]) {
    if (!isCount(proof[f])) throw new MalformedError(`${f} must be a non-negative integer`);
  }
  if (!Array.isArray(proof.log_proof) || proof.log_proof.length > 63
      || !proof.log_proof.every((h) => typeof h === "string" && /^[0-9a-f]{64}$/.test(h))) {
    throw new MalformedError("log_proof must be a list of hex hashes");
  }
  checkPath(proof.log_index, proof.log_size, proof.log_proof, "log_proof");
  if (!proof.entry || typeof proof.entry !== "object" || Array.isArray(proof.entry)
      || typeof proof.entry.type !== "string") {
    throw new MalformedError("entry must be an object with a type");
  }
  if (typeof proof.checkpoint !== "string") throw new MalformedError("checkpoint must be text");
  if (!Array.isArray(proof.anchors)) throw new MalformedError("anchors must be a list");
}

// An entry proof (docs/formats.md §8): steps 2-4 for any log entry, such as a registered
// document. Resolves to a summary, or throws StepError or MalformedError.
export async function verifyEntryProof(proof, trustedVkeys) {
  checkEntryShape(proof);
  const trusted = await Promise.all(trustedVkeys.map(parseVkey));
  const checkpoint = await step("checkpoint signature",
    async () => parseCheckpoint(parseNote(proof.checkpoint).text));
  await step("log path", async () => {
    const leaf = await leafHash(enc.encode(canonicalJson(proof.entry)));
    const root = await rootFromInclusionProof(proof.log_index, proof.log_size, leaf,
      proof.log_proof.map(hexToBytes));
    if (proof.log_size !== checkpoint.size) {
      throw new Error(`log_size ${proof.log_size} is not the checkpoint's size ${checkpoint.size}`);
    }
    if (!equal(root, checkpoint.root)) throw new Error("the entry does not lead to the checkpoint's root");
  });
  await step("checkpoint signature", async () => openNote(proof.checkpoint, trusted));
  return { origin: checkpoint.origin, size: checkpoint.size, entry: proof.entry,
    log_index: proof.log_index, anchors_not_checked: uncheckedAnchors(proof) };
}

// Either kind of proof, by its type.
export function verifyProof(proof, trustedVkeys) {
  return proof && proof.type === ENTRY_PROOF_TYPE
    ? verifyEntryProof(proof, trustedVkeys) : verifyRecordProof(proof, trustedVkeys);
}
