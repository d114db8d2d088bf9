// node parse.mjs FILE...: parses each file with Mermaid's own parser; prints "FILE: ok (type)" or
// "FILE: error: ..." per file and exits 1 if any failed. Mermaid sanitises labels with DOMPurify,
// which needs a DOM: jsdom gives it one (no browser is needed to parse).
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const { window } = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");

let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    const { diagramType } = await mermaid.parse(readFileSync(file, "utf8"));
    console.log(`${file}: ok (${diagramType})`);
  } catch (error) {
    failed += 1;
    console.log(`${file}: error: ${String(error.message ?? error).replaceAll("\n", " ")}`);
  }
}
process.exit(failed ? 1 : 0);
