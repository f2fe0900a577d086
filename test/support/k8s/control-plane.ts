/**
 * A real Kubernetes control plane for the tests, as controller-runtime's envtest starts
 * one, plus simulated nodes: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok, built from Go modules (binaries.ts), as child processes of
 * this process on free loopback ports, in a scratch folder of their own
 * (docs/k8s-harness.md).
 *
 * The API server serves TLS with a CA made here, authenticates clients by certificate
 * (the admin is in system:masters) and by ServiceAccount tokens it signs itself (the
 * TokenRequest API), authorizes with RBAC, and admits with the default plugins (the
 * ServiceAccount, NamespaceLifecycle and PodSecurity ones among them) plus
 * OwnerReferencesPermissionEnforcement. The controller manager runs the garbage
 * collector, the namespace, ServiceAccount and workload controllers.
 *
 * No process outlives this one: each is started under `setpriv --pdeathsig KILL`,
 * stop() ends them by PID (SIGTERM, then SIGKILL), and an 'exit' handler kills what is
 * left.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { freePorts } from "../ports.ts";
import type { Binaries } from "./binaries.ts";
import { kwokStagesYaml } from "./kwok-stages.ts";

const run = promisify(execFile);

/** The ServiceAccount issuer and audience of tokens this API server signs. */
export const SA_ISSUER = "https://kubernetes.default.svc.cluster.local";
/** Nodes that carry this label are kwok's. */
export const KWOK_NODE_LABEL = { key: "type", value: "kwok" } as const;

export type ControlPlane = {
  /** The scratch folder: certificates, kubeconfigs, etcd data, logs. */
  dir: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** A kubeconfig for the cluster admin (client certificate in system:masters). */
  kubeconfig: string;
  /** The CA that signed the API server's certificate. */
  caFile: string;
  versions: Binaries["versions"];
  pids: Record<string, number>;
  /** Stops every process by PID and removes the folder (unless ODOP_KEEP_K8S=1). Idempotent. */
  stop(): Promise<void>;
  /** The tail of each process's log, for failure messages. */
  logs(): string;
};

export type ControlPlaneOptions = {
  binaries: Binaries;
  /** Parent of the scratch folder (default os.tmpdir()). */
  dir?: string;
  log?: (line: string) => void;
  /** Bound on each readiness wait (default 90 s: a loaded 2-core machine starts the API server slowly). */
  timeoutMs?: number;
};

type Proc = { name: string; child: ChildProcess; logFile: string; exited: Promise<void> };

const livePids = new Set<number>();
let exitHook = false;

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  });
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const log = options.log ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 90_000;
  const started = Date.now();
  installExitHook();
  const parent = options.dir ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, "odop-k8s-"));
  const procs: Proc[] = [];
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Reverse order: kwok and the controllers before the API server, etcd last.
    for (const p of [...procs].reverse()) await stopProc(p);
    if (process.env["ODOP_KEEP_K8S"] !== "1") rmSync(dir, { recursive: true, force: true });
  };
  const logs = () => procs.map((p) => `--- ${p.name} (${p.logFile}):\n${tail(p.logFile)}`).join("\n");

  try {
    const { binaries } = options;
    const [etcdPort, etcdPeerPort, apiPort, kwokPort] = await freePorts(4);
    if (etcdPort === undefined || etcdPeerPort === undefined || apiPort === undefined || kwokPort === undefined) throw new Error("no free ports");
    const pki = await makeCertificates(join(dir, "pki"));
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfig = join(dir, "admin.kubeconfig");
    writeFileSync(kubeconfig, kubeconfigYaml(server, pki.ca, pki.adminCert, pki.adminKey), { mode: 0o600 });

    const start = (name: string, argv: string[]) => {
      const p = startProc(dir, name, argv);
      procs.push(p);
      return p;
    };

    // etcd: data in memory-backed /dev/shm when there is one (a loaded disk is the usual cause of slow tests), no fsync.
    const shm = existsSync("/dev/shm") ? mkdtempSync("/dev/shm/odop-etcd-") : join(dir, "etcd");
    const etcd = start("etcd", [
      binaries.etcd,
      `--name=odop-test`,
      `--data-dir=${shm}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=odop-test=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ]);
    // The data folder goes when etcd has stopped.
    etcd.exited = etcd.exited.then(() => rmSync(shm, { recursive: true, force: true }));
    await waitFor(`etcd on 127.0.0.1:${etcdPort}`, timeoutMs, etcd, async () => (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok);
    log(`etcd ${binaries.versions.etcd} ready on 127.0.0.1:${etcdPort}`);

    const api = start("kube-apiserver", [
      binaries["kube-apiserver"],
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, "apiserver-certs")}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.ca}`,
      "--authorization-mode=RBAC",
      `--service-account-issuer=${SA_ISSUER}`,
      `--api-audiences=${SA_ISSUER}`,
      `--service-account-key-file=${pki.saPublic}`,
      `--service-account-signing-key-file=${pki.saPrivate}`,
      "--service-cluster-ip-range=10.96.0.0/16",
      "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
      "--allow-privileged=true",
      "--profiling=false",
      "--v=1",
    ]);
    const adminAgent = { ca: readFileSync(pki.ca), cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) };
    await waitFor(`kube-apiserver on ${server}`, timeoutMs, api, async () => (await getStatus(`${server}/readyz`, adminAgent)) === 200);
    log(`kube-apiserver ${binaries.versions.kubernetes} ready on ${server}`);

    const kcm = start("kube-controller-manager", [
      binaries["kube-controller-manager"],
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      "--secure-port=0",
      "--leader-elect=false",
      "--controllers=*",
      `--root-ca-file=${pki.ca}`,
      `--service-account-private-key-file=${pki.saPrivate}`,
      "--cluster-cidr=10.244.0.0/16",
      "--service-cluster-ip-range=10.96.0.0/16",
      "--concurrent-gc-syncs=10",
      "--v=1",
    ]);
    const scheduler = start("kube-scheduler", [binaries["kube-scheduler"], `--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`, "--secure-port=0", "--leader-elect=false", "--v=1"]);
    const stages = join(dir, "kwok.yaml");
    writeFileSync(stages, kwokStagesYaml());
    const kwok = start("kwok", [
      binaries.kwok,
      `--kubeconfig=${kubeconfig}`,
      `--config=${stages}`,
      "--manage-all-nodes=false",
      `--manage-nodes-with-label-selector=${KWOK_NODE_LABEL.key}=${KWOK_NODE_LABEL.value}`,
      "--node-lease-duration-seconds=40",
      `--server-address=127.0.0.1:${kwokPort}`,
      "--cidr=10.0.0.1/16",
      "--node-ip=10.0.0.1",
    ]);
    // The controller manager is up once it made the default namespace's ServiceAccount (pods need it to be admitted).
    await waitFor("kube-controller-manager (the default ServiceAccount)", timeoutMs, kcm, async () => (await getStatus(`${server}/api/v1/namespaces/default/serviceaccounts/default`, adminAgent)) === 200);
    await waitFor(`kwok on 127.0.0.1:${kwokPort}`, timeoutMs, kwok, async () => (await fetch(`http://127.0.0.1:${kwokPort}/healthz`)).ok);
    if (scheduler.child.exitCode !== null) throw new Error(`kube-scheduler exited ${String(scheduler.child.exitCode)}`);
    log(`control plane ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`);

    const pids = Object.fromEntries(procs.map((p) => [p.name, p.child.pid ?? -1]));
    return { dir, server, kubeconfig, caFile: pki.ca, versions: binaries.versions, pids, stop, logs };
  } catch (error) {
    const detail = logs();
    await stop();
    throw new Error(`the test control plane did not start: ${error instanceof Error ? error.message : String(error)}\n${detail}`, { cause: error });
  }
}

function startProc(dir: string, name: string, argv: string[]): Proc {
  const logFile = join(dir, `${name}.log`);
  const fd = openSync(logFile, "a");
  const [bin, ...args] = argv;
  // setpriv --pdeathsig: the kernel kills the process if this one dies without stopping it.
  const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", bin ?? "", ...args], { stdio: ["ignore", fd, fd], detached: false });
  closeSync(fd);
  if (child.pid !== undefined) livePids.add(child.pid);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      if (child.pid !== undefined) livePids.delete(child.pid);
      resolve();
    });
    child.once("error", () => resolve());
  });
  return { name, child, logFile, exited };
}

async function stopProc(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) {
    await p.exited;
    return;
  }
  p.child.kill("SIGTERM");
  const grace = setTimeout(() => p.child.kill("SIGKILL"), 5_000);
  await p.exited;
  clearTimeout(grace);
}

async function waitFor(what: string, timeoutMs: number, proc: Proc, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited (${String(proc.child.exitCode ?? proc.child.signalCode)}) before ${what} was ready`);
    }
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs / 1000} s${last instanceof Error ? ` (last: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function getStatus(url: string, tls: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

function tail(file: string, bytes = 4_000): string {
  try {
    const text = readFileSync(file, "utf8");
    return text.slice(-bytes);
  } catch {
    return "(no log)";
  }
}

export function kubeconfigYaml(server: string, caFile: string, certFile: string, keyFile: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "odop-test", cluster: { server, "certificate-authority": caFile } }],
    users: [{ name: "admin", user: { "client-certificate": certFile, "client-key": keyFile } }],
    contexts: [{ name: "odop-test", context: { cluster: "odop-test", user: "admin" } }],
    "current-context": "odop-test",
  });
}

type Pki = {
  ca: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  saPrivate: string;
  saPublic: string;
};

/** A CA, the API server's serving certificate, the admin's client certificate and the ServiceAccount signing keys (openssl, EC P-256). */
async function makeCertificates(dir: string): Promise<Pki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (name: string) => join(dir, name);
  const openssl = (args: string[]) => run("openssl", args, { cwd: dir });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(["req", "-x509", ...ec, "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days", "30", "-subj", "/CN=odop-test-ca", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"]);
  const leaf = async (name: string, subject: string, ext: string) => {
    writeFileSync(f(`${name}.ext`), ext);
    await openssl(["req", "-new", ...ec, "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", subject]);
    await openssl(["x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f(`${name}.crt`), "-days", "30", "-extfile", f(`${name}.ext`)]);
  };
  const sans = ["IP:127.0.0.1", "IP:10.96.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"];
  await leaf("apiserver", "/CN=kube-apiserver", `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(",")}\n`);
  await leaf("admin", "/O=system:masters/CN=odop-test-admin", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n");
  await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f("sa.key")]);
  await openssl(["ec", "-in", f("sa.key"), "-pubout", "-out", f("sa.pub")]);
  return { ca: f("ca.crt"), servingCert: f("apiserver.crt"), servingKey: f("apiserver.key"), adminCert: f("admin.crt"), adminKey: f("admin.key"), saPrivate: f("sa.key"), saPublic: f("sa.pub") };
}
