/** `npm run manifests`: writes deploy/ and the generated parts of charts/odop, and says what it wrote. */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { generatedFiles } from "./files.ts";

const ROOT = join(import.meta.dirname, "../..");

for (const { path, text } of generatedFiles()) {
  const target = join(ROOT, path);
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, text);
  process.stdout.write(`wrote ${path}\n`);
}
