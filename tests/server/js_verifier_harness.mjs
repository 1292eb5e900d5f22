// Runs the page's verifier (verify.mjs) in Node on cases read as JSON from stdin, and writes
// one verdict per case as JSON to stdout, for comparison with the Python verifier.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [modulePath] = process.argv.slice(2);
const v = await import(pathToFileURL(modulePath).href);
const cases = JSON.parse(readFileSync(0, "utf8"));
const fromHex = (h) => { try { return v.hexToBytes(h); } catch { return new TextEncoder().encode(h); } };

async function verdict(kase) {
  try {
    if (kase.kind === "inclusion") {
      const root = await v.rootFromInclusionProof(kase.index, kase.size, fromHex(kase.leaf),
        kase.proof.map(fromHex));
      return { ok: v.bytesToHex(root) === kase.root };
    }
    if (kase.kind === "note") {
      await v.openNote(kase.note, [await v.parseVkey(kase.vkey)]);
      return { ok: true };
    }
    if (kase.kind === "canonical") {
      return { ok: true, text: v.canonicalJson(kase.value) };
    }
    await v.verifyRecordProof(kase.proof, kase.vkeys);
    return { ok: true };
  } catch (e) {
    if (e instanceof v.StepError) return { ok: false, step: e.step };
    if (e instanceof v.MalformedError) return { ok: false, step: "malformed" };
    return { ok: false, error: e.message };
  }
}

const out = [];
for (const kase of cases) out.push(await verdict(kase));
process.stdout.write(JSON.stringify(out));
