/**
 * OpTask: a data operation described once — what runs, when it is triggered, what it
 * needs, where its inputs come from and its outputs go. Each run is an OpExecution.
 */
import { Cron } from "croner";
import { z } from "zod";
import { Duration } from "./duration.ts";
import { HttpUrl, Location, WorkspacePath } from "./locations.ts";
import { Conditions, DnsLabel, fitConditions, keyedList, resource, strict, Timestamp, truncated } from "./meta.ts";
import { compareQuantities, parseQuantity, Quantity } from "./quantity.ts";
import { celString, exactlyOne, exactlyOneCel, withRules } from "./rules.ts";

const AbsolutePath = z
  .string()
  .max(4096)
  .regex(/^\//, { error: "must be an absolute path, e.g. /scratch/run1/snapshots" });

// ---------------------------------------------------------------------------- trigger

/** The trigger kinds, in the order they are documented. Exactly one is set. */
export const TRIGGER_KINDS = ["fileIn", "fileUpdated", "schedule", "after", "manual", "idle"] as const;
export type TriggerKind = (typeof TRIGGER_KINDS)[number];

export const FileInTrigger = strict({
  path: AbsolutePath.describe("Folder to watch."),
  pattern: z.string().min(1).max(256).default("*").describe("Glob that new file names must match, e.g. *.h5."),
  batchSize: z.int().min(1).max(10_000).default(1).describe("Files per execution."),
  batchTimeout: Duration.optional().describe(
    "Start an execution with a partial batch after this long; without it a partial batch waits for the main application to end.",
  ),
}).describe("Run for each new file (or batch of files) that appears in a folder.");

export const FileUpdatedTrigger = strict({
  path: AbsolutePath.describe("File to watch."),
  settleSeconds: z.int().min(0).max(86_400).default(5).describe("Quiet time after the last write before the file counts as closed."),
}).describe("Run when a file has changed and then stayed unchanged for settleSeconds.");

const CRON_PATTERN = "^(@(yearly|annually|monthly|weekly|daily|hourly)|\\S+(\\s+\\S+){4,5})$";

export const ScheduleTrigger = withRules(
  strict({
    every: Duration.optional().describe('Interval between runs, e.g. "15m".'),
    cron: z
      .string()
      .max(256)
      .optional()
      .describe('Cron expression (minute hour day month weekday), e.g. "0 */6 * * *".'),
    timeZone: z.string().max(64).optional().describe("IANA time zone of cron; defaults to the controller's."),
  }),
  [
    {
      cel: exactlyOneCel(["every", "cron"]),
      message: "set exactly one of every or cron",
      holds: (s) => exactlyOne(s, ["every", "cron"]),
    },
    {
      // The API server checks the shape only; odop also parses the expression, so
      // `odop validate` catches "61 * * * *" and the controller reports it as InvalidSpec.
      cel: `!has(self.cron) || self.cron.matches(${celString(CRON_PATTERN)})`,
      message: 'cron must be five fields (minute hour day-of-month month day-of-week), e.g. "*/15 * * * *", or @hourly, @daily, @weekly, @monthly',
      fieldPath: ".cron",
      holds: (s) => s.cron === undefined || isCron(s.cron),
    },
    {
      cel: "!has(self.timeZone) || has(self.cron)",
      message: "timeZone applies to cron only; remove it or use cron",
      fieldPath: ".timeZone",
      holds: (s) => s.timeZone === undefined || s.cron !== undefined,
    },
  ],
).describe("Run on a schedule: every interval, or on a cron expression.");

function isCron(expression: string): boolean {
  try {
    new Cron(expression, { paused: true });
    return true;
  } catch {
    return false;
  }
}

export const AfterTrigger = strict({
  tasks: z.array(DnsLabel).min(1).max(32).describe("OpTasks (same namespace) whose executions trigger this one."),
  // Not "on": Kubernetes' YAML (1.1) reads an unquoted `on:` key as the boolean true.
  when: z
    .enum(["Succeeded", "Failed", "Completed"])
    .default("Succeeded")
    .describe("Which outcome of an upstream execution triggers: Succeeded, Failed, or Completed (either)."),
}).describe("Run after executions of other tasks end (a DAG). Their output files become this execution's trigger files.");

export const IdleTrigger = strict({
  minInterval: Duration.optional().describe("Least time between the starts of two runs."),
}).describe("Run whenever resources are free, up to policy.maxRuns.");

export const Trigger = withRules(
  strict({
    fileIn: FileInTrigger.optional(),
    fileUpdated: FileUpdatedTrigger.optional(),
    schedule: ScheduleTrigger.optional(),
    after: AfterTrigger.optional(),
    manual: strict({}).optional().describe("Run only when a person (or `odop run`) creates an OpExecution."),
    idle: IdleTrigger.optional(),
  }),
  [
    {
      cel: exactlyOneCel(TRIGGER_KINDS),
      message: `set exactly one trigger kind: ${TRIGGER_KINDS.join(", ")}`,
      holds: (t) => exactlyOne(t, TRIGGER_KINDS),
    },
  ],
).describe("When executions are created. Exactly one kind.");
export type Trigger = z.infer<typeof Trigger>;

/** Which kind a valid trigger is. */
export function triggerKind(trigger: Trigger): TriggerKind {
  const kind = TRIGGER_KINDS.find((k) => trigger[k] !== undefined);
  if (kind === undefined) throw new Error("trigger has no kind");
  return kind;
}

// ----------------------------------------------------------------------------- target

export const Target = strict({
  nodeSelector: z.record(z.string(), z.string()).optional().describe("Labels of the nodes where the main application runs."),
  slurmJob: withRules(
    strict({
      id: z.int().min(1).optional().describe("Slurm job id of the main application."),
      name: z.string().min(1).max(256).optional().describe("Slurm job name of the main application (the newest running job of that name)."),
    }),
    [{ cel: exactlyOneCel(["id", "name"]), message: "set exactly one of id or name", holds: (j) => exactlyOne(j, ["id", "name"]) }],
  )
    .optional()
    .describe("Run next to this Slurm job, on its nodes. Makes the task Slurm-backed."),
  process: withRules(
    strict({
      pidFile: AbsolutePath.optional().describe("File holding the main application's PID."),
      command: z.string().min(1).max(1024).optional().describe("Regular expression matched against process command lines."),
      cgroup: z.string().min(1).max(4096).optional().describe("cgroup v2 path whose processes are the main application."),
    }),
    [
      {
        cel: exactlyOneCel(["pidFile", "command", "cgroup"]),
        message: "set exactly one of pidFile, command or cgroup",
        holds: (p) => exactlyOne(p, ["pidFile", "command", "cgroup"]),
      },
    ],
  )
    .optional()
    .describe("How to recognise the main application's processes. Default: everything on the node that odop did not start."),
}).describe("Where the main application runs and how to recognise it.");

// -------------------------------------------------------------------------------- run

export const EnvVar = withRules(
  strict({
    name: z
      .string()
      .max(256)
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "must be an environment variable name: letters, digits and _, not starting with a digit" }),
    value: z.string().max(32_768).optional(),
    valueFrom: strict({
      secretKeyRef: strict({ name: DnsLabel, key: z.string().min(1).max(253) }),
    }).optional(),
  }),
  [
    {
      cel: "!(has(self.value) && has(self.valueFrom))",
      message: "set value or valueFrom, not both",
      holds: (e) => !(e.value !== undefined && e.valueFrom !== undefined),
    },
  ],
);

const RUN_FORMS = ["command", "script", "module"] as const;

export const Run = withRules(
  strict({
    image: z.string().min(1).max(1024).optional().describe("Container image, for the Kubernetes backend."),
    imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).optional(),
    command: z.array(z.string().max(4096)).min(1).max(256).optional().describe("Program and its arguments (argv), no shell."),
    args: z.array(z.string().max(4096)).max(1024).optional().describe("Arguments appended to command, script or the image's entrypoint."),
    env: keyedList(EnvVar, "name", 256).optional(),
    workingDir: z.string().max(4096).optional().describe("Working directory; defaults to the execution's workspace."),
    script: z.string().min(1).max(65_536).optional().describe("A bash script; required for Slurm-backed tasks."),
    module: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, { error: "must be a dotted Python module name, e.g. mypkg.ops" })
      .max(256)
      .optional()
      .describe("Python module holding `function` (ODOP compatibility)."),
    function: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "must be a Python identifier" })
      .max(256)
      .optional()
      .describe("Python callable in `module`, called with the trigger files."),
  }),
  [
    {
      cel: "has(self.image) || has(self.command) || has(self.script) || has(self.module)",
      message: "say what to run: set image, command, script, or module and function",
      holds: (r) => r.image !== undefined || r.command !== undefined || r.script !== undefined || r.module !== undefined,
    },
    {
      cel: "[has(self.command), has(self.script), has(self.module)].filter(x, x).size() <= 1",
      message: "set only one of command, script or module",
      holds: (r) => RUN_FORMS.filter((f) => r[f] !== undefined).length <= 1,
    },
    {
      cel: "has(self.module) == has(self.__function__)",
      message: "module and function go together: set both or neither",
      holds: (r) => (r.module !== undefined) === (r.function !== undefined),
    },
  ],
).describe("What the run stage executes.");

// ----------------------------------------------------------------------------- stages

export const Input = strict({
  from: Location.describe("Absolute path or file://, http(s):// or s3:// URL to copy from."),
  to: WorkspacePath.describe("Destination, relative to the execution's workspace."),
  optional: z.boolean().default(false).describe("A missing source is not an error."),
});

export const Output = strict({
  from: WorkspacePath.describe("Source, relative to the execution's workspace."),
  to: Location.describe("Absolute path or file://, http(s):// (PUT) or s3:// URL to copy to."),
  optional: z.boolean().default(false).describe("A missing output is not an error."),
});

export const Stages = strict({
  configure: strict({
    inputs: z.array(Input).max(256).default([]),
    image: z.string().min(1).max(1024).optional().describe("Image for the configure pod; defaults to odop's own."),
  })
    .optional()
    .describe("Stage inputs into the workspace before the run."),
  publish: strict({
    outputs: z.array(Output).max(256).default([]),
    notify: strict({
      started: HttpUrl.optional().describe("Receives a signed JSON POST when the execution starts."),
      finished: HttpUrl.optional().describe("Receives a signed JSON POST when the execution ends, whatever the result."),
    }).optional(),
    image: z.string().min(1).max(1024).optional().describe("Image for the publish pod; defaults to odop's own."),
  })
    .optional()
    .describe("Stage outputs out of the workspace and notify after the run."),
}).describe("The configure and publish stages around the run (operator-engine's stages).");

// ----------------------------------------------------------------------- requirements

const QUANTITY_MIN_LE_MAX = "!has(self.min) || !has(self.max) || quantity(string(self.min)).compareTo(quantity(string(self.max))) <= 0";

function quantityRange(unit: string) {
  return withRules(
    strict({
      min: Quantity.optional().describe(`Least ${unit} to start with.`),
      max: Quantity.optional().describe(`Most ${unit} to use.`),
    }),
    [
      {
        cel: QUANTITY_MIN_LE_MAX,
        message: "min must not exceed max: lower min or raise max",
        fieldPath: ".min",
        holds: (r) => {
          const [min, max] = [r.min, r.max].map((q) => (q === undefined ? undefined : parseQuantity(q)));
          return min === undefined || max === undefined || compareQuantities(min, max) <= 0;
        },
      },
    ],
  );
}

function countRange(unit: string) {
  return withRules(
    strict({
      min: z.int().min(0).max(1_000_000).optional().describe(`Least ${unit}.`),
      max: z.int().min(0).max(1_000_000).optional().describe(`Most ${unit}.`),
    }),
    [
      {
        cel: "!has(self.min) || !has(self.max) || self.min <= self.max",
        message: "min must not exceed max: lower min or raise max",
        fieldPath: ".min",
        holds: (r) => r.min === undefined || r.max === undefined || r.min <= r.max,
      },
    ],
  );
}

export const Requirements = strict({
  cpu: quantityRange("cores").optional().describe('Cores: 2, "1.5" or "500m".'),
  memory: quantityRange("memory").optional().describe('Bytes: "512Mi", "2G" or a number of bytes.'),
  threads: countRange("threads").optional().describe("Threads the operation runs (OMP_NUM_THREADS and friends)."),
  gpu: countRange("GPUs").optional(),
  time: Duration.optional().describe('Hard limit on the run stage, e.g. "30m". The execution fails with reason TimeLimit past it.'),
  ioBound: z.boolean().default(false).describe("Mostly waits on I/O: may share a core with another I/O-bound execution."),
}).describe("What an execution needs (min) and may use (max).");
export type Requirements = z.infer<typeof Requirements>;

// ----------------------------------------------------------------------------- policy

/** What happens to a running execution when the main application takes its cores back. */
export const ON_CONTENTION = ["pause", "requeue", "cancel"] as const;

export const Policy = strict({
  priority: z.int().min(-1000).max(1000).default(0).describe("Higher runs first."),
  onContention: z
    .enum(ON_CONTENTION)
    .default("pause")
    .describe("When the main application needs the cores back: pause (SIGSTOP, resume later), requeue (stop, run again later) or cancel."),
  retries: strict({
    limit: z.int().min(0).max(100).default(0),
    backoff: Duration.default("10s").describe("Wait before the first retry; doubles each time."),
  }).optional(),
  concurrency: z.int().min(1).max(10_000).default(1).describe("Most executions of this task at once."),
  maxRuns: z.int().min(1).optional().describe("Most executions ever created (idle and schedule triggers)."),
  deadline: Duration.optional().describe("An execution not finished this long after it was triggered is cancelled (reason DeadlineExceeded)."),
}).describe("Priority, contention, retries and limits.");
export type Policy = z.infer<typeof Policy>;

// ------------------------------------------------------------------------------- spec

/** Where executions run. Without it the controller picks: slurm for a target.slurmJob, else its default. */
export const BACKENDS = ["kubernetes", "slurm", "local"] as const;
export type BackendKind = (typeof BACKENDS)[number];

export const OpTaskSpec = withRules(
  strict({
    trigger: Trigger,
    target: Target.optional(),
    backend: z.enum(BACKENDS).optional().describe("kubernetes (pods), slurm (job steps through slurmrestd) or local (processes)."),
    run: Run,
    stages: Stages.optional(),
    requirements: Requirements.optional(),
    policy: Policy.prefault({}),
    products: z.array(AbsolutePath).max(256).optional().describe("Files an execution produces. Newer than all dependencies: the execution is Skipped."),
    dependencies: z.array(AbsolutePath).max(256).optional().describe("Files an execution reads."),
    suspend: z.boolean().default(false).describe("Create no new executions while true; running ones go on."),
  }),
  [
    {
      cel: "!(has(self.target) && has(self.target.slurmJob)) || !has(self.backend) || self.backend == 'slurm'",
      message: "target.slurmJob runs the task through Slurm: set backend to slurm or remove it",
      fieldPath: ".backend",
      holds: (s) => s.target?.slurmJob === undefined || s.backend === undefined || s.backend === "slurm",
    },
    {
      cel: "!((has(self.backend) && self.backend == 'slurm') || (has(self.target) && has(self.target.slurmJob))) || has(self.run.script)",
      message: "a Slurm-backed task runs a batch script: set run.script",
      fieldPath: ".run",
      holds: (s) => !(s.backend === "slurm" || s.target?.slurmJob !== undefined) || s.run.script !== undefined,
    },
    {
      cel: "!has(self.backend) || self.backend != 'kubernetes' || has(self.run.image)",
      message: "a pod-backed task runs a container: set run.image",
      fieldPath: ".run",
      holds: (s) => s.backend !== "kubernetes" || s.run.image !== undefined,
    },
    {
      cel: "!has(self.backend) || self.backend != 'local' || has(self.run.command) || has(self.run.script) || has(self.run.module)",
      message: "a local task runs a process: set run.command, run.script, or run.module and run.function",
      fieldPath: ".run",
      holds: (s) => s.backend !== "local" || s.run.command !== undefined || s.run.script !== undefined || s.run.module !== undefined,
    },
  ],
);
export type OpTaskSpec = z.infer<typeof OpTaskSpec>;

// ----------------------------------------------------------------------------- status

/** Condition types of an OpTask. */
export const OPTASK_CONDITIONS = {
  /** True when the spec is valid and the trigger is armed. Reasons: Armed, InvalidSpec, Suspended, UpstreamMissing. */
  Ready: "Ready",
} as const;

const TRIGGER_SUMMARY_MAX = 256;

export const OpTaskStatus = strict({
  observedGeneration: z.int().min(0).optional(),
  conditions: Conditions.optional(),
  trigger: z.string().max(TRIGGER_SUMMARY_MAX).optional().describe("The trigger, summarised for `kubectl get`."),
  runs: z.int().min(0).optional().describe("Executions created so far."),
  active: z.int().min(0).optional().describe("Executions not yet finished."),
  succeeded: z.int().min(0).optional(),
  failed: z.int().min(0).optional(),
  lastExecution: strict({
    name: z.string().max(253),
    phase: z.string().max(32),
    finishedAt: Timestamp.optional(),
  }).optional(),
  lastTriggerTime: Timestamp.optional(),
  profile: strict({
    runs: z.int().min(0).describe("Executions the profile was learned from."),
    avgCores: z.number().min(0),
    peakCores: z.number().min(0),
    avgMemoryBytes: z.int().min(0),
    peakMemoryBytes: z.int().min(0),
    avgSeconds: z.number().min(0),
    maxSeconds: z.number().min(0),
    updatedAt: Timestamp,
  })
    .optional()
    .describe("What executions of this task really used (the profile update)."),
});
export type OpTaskStatus = z.infer<typeof OpTaskStatus>;

/** The status as the schema accepts it (condition reasons and messages, the trigger summary); see fitExecutionStatus. */
export function fitTaskStatus(status: OpTaskStatus): OpTaskStatus {
  const out: OpTaskStatus = { ...status };
  if (out.conditions !== undefined) out.conditions = fitConditions(out.conditions);
  if (out.trigger !== undefined) out.trigger = truncated(out.trigger, TRIGGER_SUMMARY_MAX);
  return out;
}

/** OpTask names become parts of execution, pod and Slurm job names, which must stay DNS labels. */
export const OPTASK_NAME_MAX = 50;

export const OpTask = withRules(resource("OpTask", OpTaskSpec, OpTaskStatus), [
  {
    cel: `self.metadata.name.size() <= ${OPTASK_NAME_MAX} && self.metadata.name.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,
    message: `must be a DNS label of at most ${OPTASK_NAME_MAX} characters (lower-case letters, digits, '-'): it becomes part of execution, pod and job names`,
    fieldPath: ".metadata.name",
    holds: (t) => t.metadata.name !== undefined && t.metadata.name.length <= OPTASK_NAME_MAX && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(t.metadata.name),
  },
]);
export type OpTask = z.infer<typeof OpTask>;
