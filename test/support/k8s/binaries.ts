/**
 * The test control plane's binaries, built from Go modules and cached outside the
 * repository (docs/k8s-harness.md).
 *
 * Each component is a Go module of ours under modules/<name>/ whose go.mod pins the
 * upstream module (k8s.io/kubernetes with its k8s.io/* staging modules pinned by
 * `replace` to the matching v0.x.y, etcd's server, kwok) and lists the commands to
 * build as `tool` lines; go.sum pins every hash, so a build needs the Go module proxy
 * but not the checksum database. The cache folder of a component is keyed by its
 * version and a hash of its go.mod, go.sum, the Go version and the build flags: a
 * warm run finds it in milliseconds, and changing a pin builds anew.
 *
 * Run by hand: `node test/support/k8s/binaries.ts` builds what is missing and prints
 * the folders (what .ci/run does before npm test).
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const MODULES = join(import.meta.dirname, "modules");

export type ComponentName = "kubernetes" | "etcd" | "kwok";

type Component = {
  name: ComponentName;
  /** The upstream module whose commands are built. */
  module: string;
  /** Output file → package path. */
  commands: Record<string, string>;
  /** -ldflags beyond -s -w, as a function of the module's version. */
  ldflags: (version: string) => string[];
};

// kube-apiserver and friends report their version from these variables; without them
// they say v0.0.0-master, and Helm's kubeVersion checks (and kubectl's skew warning) fail.
const kubeVersionFlags = (version: string): string[] => {
  const [major, minor] = version.replace(/^v/, "").split(".");
  const pkg = "k8s.io/component-base/version";
  return [`-X ${pkg}.gitVersion=${version}`, `-X ${pkg}.gitMajor=${major ?? ""}`, `-X ${pkg}.gitMinor=${minor ?? ""}`, `-X ${pkg}.gitTreeState=clean`];
};

export const COMPONENTS: readonly Component[] = [
  {
    name: "kubernetes",
    module: "k8s.io/kubernetes",
    commands: {
      "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
      "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
      "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    },
    ldflags: kubeVersionFlags,
  },
  { name: "etcd", module: "go.etcd.io/etcd/server/v3", commands: { etcd: "go.etcd.io/etcd/server/v3" }, ldflags: () => [] },
  { name: "kwok", module: "sigs.k8s.io/kwok", commands: { kwok: "sigs.k8s.io/kwok/cmd/kwok" }, ldflags: () => [] },
];

export type Binaries = {
  "kube-apiserver": string;
  "kube-controller-manager": string;
  "kube-scheduler": string;
  etcd: string;
  kwok: string;
  /** The pinned versions, e.g. { kubernetes: "v1.34.4", etcd: "v3.6.17", kwok: "v0.8.0" }. */
  versions: Record<ComponentName, string>;
};

/** Where built binaries are kept: $ODOP_K8S_CACHE, else $XDG_CACHE_HOME/odop/k8s, else ~/.cache/odop/k8s. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env["ODOP_K8S_CACHE"]) return env["ODOP_K8S_CACHE"];
  return join(env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "odop", "k8s");
}

/** The version go.mod pins for the component's upstream module. */
export function pinnedVersion(component: Component): string {
  const mod = readFileSync(join(MODULES, component.name, "go.mod"), "utf8");
  const escaped = component.module.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const match = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, "m").exec(mod);
  if (match?.[1] === undefined) throw new Error(`modules/${component.name}/go.mod does not require ${component.module}`);
  return match[1];
}

export type GoCheck = { ok: true; version: string } | { ok: false; reason: string };

/** Whether a Go toolchain is on PATH (the build needs one; a warm cache does not). */
export async function goAvailable(): Promise<GoCheck> {
  try {
    const { stdout } = await run("go", ["env", "GOVERSION"], { env: goEnv() });
    return { ok: true, version: stdout.trim() };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return { ok: false, reason: code === "ENOENT" ? "no Go toolchain on PATH (install Go ≥ 1.26 to build the test control plane)" : `go env failed: ${String(error)}` };
  }
}

function goEnv(): NodeJS.ProcessEnv {
  // The machine's own Go, never a toolchain download; go.sum is complete, so -mod=readonly.
  return { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=readonly -buildvcs=false" };
}

function folderOf(component: Component, goVersion: string): string {
  const hash = createHash("sha256");
  for (const file of ["go.mod", "go.sum"]) hash.update(readFileSync(join(MODULES, component.name, file)));
  hash.update(goVersion);
  hash.update(JSON.stringify(component.commands));
  hash.update(component.ldflags(pinnedVersion(component)).join(" "));
  return join(cacheRoot(), `${component.name}-${pinnedVersion(component)}-${hash.digest("hex").slice(0, 12)}`);
}

const COMPLETE = ".complete";

/** The cached folder of every component, or the names of those not built yet. */
export async function findBinaries(): Promise<{ ok: true; binaries: Binaries } | { ok: false; missing: ComponentName[]; go: GoCheck }> {
  const go = await goAvailable();
  const goVersion = go.ok ? go.version : lastGoVersion();
  const missing: ComponentName[] = [];
  const found: Partial<Binaries> = {};
  const versions = {} as Record<ComponentName, string>;
  for (const c of COMPONENTS) {
    versions[c.name] = pinnedVersion(c);
    const folder = goVersion === undefined ? undefined : folderOf(c, goVersion);
    if (folder === undefined || !existsSync(join(folder, COMPLETE))) {
      missing.push(c.name);
      continue;
    }
    for (const file of Object.keys(c.commands)) (found as Record<string, string>)[file] = join(folder, file);
  }
  if (missing.length > 0) return { ok: false, missing, go };
  return { ok: true, binaries: { ...(found as Omit<Binaries, "versions">), versions } };
}

/** Builds the missing components (progress lines to `log`), then returns every binary. */
export async function ensureBinaries(log: (line: string) => void = () => undefined): Promise<Binaries> {
  const first = await findBinaries();
  if (first.ok) return first.binaries;
  if (!first.go.ok) throw new Error(`the test control plane is not built and cannot be: ${first.go.reason}`);
  for (const c of COMPONENTS.filter((x) => first.missing.includes(x.name))) await build(c, first.go.version, log);
  const second = await findBinaries();
  if (!second.ok) throw new Error(`built, yet not found: ${second.missing.join(", ")}`);
  return second.binaries;
}

async function build(component: Component, goVersion: string, log: (line: string) => void): Promise<void> {
  const folder = folderOf(component, goVersion);
  const version = pinnedVersion(component);
  mkdirSync(cacheRoot(), { recursive: true });
  // Build into a private folder, then rename: two runs building at once never see half a folder.
  const scratch = `${folder}.building-${process.pid}`;
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const started = Date.now();
  log(`building ${component.name} ${version} with ${goVersion} into ${folder} (a cold build takes 10–30 minutes on 2 cores)`);
  const ldflags = ["-s", "-w", ...component.ldflags(version)].join(" ");
  const cwd = join(MODULES, component.name);
  for (const [file, pkg] of Object.entries(component.commands)) {
    const fileStarted = Date.now();
    await goBuild(cwd, ["build", "-trimpath", "-ldflags", ldflags, "-o", join(scratch, file), pkg], log);
    log(`  ${file}: ${Math.round((Date.now() - fileStarted) / 1000)} s`);
  }
  writeFileSync(join(scratch, COMPLETE), JSON.stringify({ component: component.name, version, go: goVersion, builtAt: new Date().toISOString() }) + "\n");
  try {
    renameSync(scratch, folder);
  } catch (error) {
    // Another run finished the same build first: keep its folder.
    rmSync(scratch, { recursive: true, force: true });
    if (!existsSync(join(folder, COMPLETE))) throw error;
  }
  writeFileSync(join(cacheRoot(), "go-version"), goVersion);
  log(`built ${component.name} ${version} in ${Math.round((Date.now() - started) / 1000)} s`);
}

function goBuild(cwd: string, args: string[], log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("go", args, { cwd, env: goEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-8_000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    // A cold build is long and quiet: say it is alive every minute.
    const alive = setInterval(() => log(`  … still building (${args[args.length - 1] ?? ""})`), 60_000);
    child.on("error", (error) => {
      clearInterval(alive);
      reject(error);
    });
    child.on("close", (code) => {
      clearInterval(alive);
      if (code === 0) resolve();
      else reject(new Error(`go ${args.join(" ")} (in ${cwd}) exited ${String(code)}:\n${tail}`));
    });
  });
}

/** The Go version of the last build, so a machine whose Go went away still finds its cache. */
function lastGoVersion(): string | undefined {
  try {
    return readFileSync(join(cacheRoot(), "go-version"), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  const started = Date.now();
  try {
    const binaries = await ensureBinaries((line) => console.log(`--- k8s: ${line}`));
    const { versions, ...paths } = binaries;
    console.log(`--- k8s: control plane binaries ready in ${Math.round((Date.now() - started) / 1000)} s: kubernetes ${versions.kubernetes}, etcd ${versions.etcd}, kwok ${versions.kwok}`);
    for (const [name, path] of Object.entries(paths)) console.log(`    ${name}: ${path}`);
  } catch (error) {
    console.error(`--- k8s: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
