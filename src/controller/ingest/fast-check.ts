/**
 * A fast path for the ingest server's validation. zod checking one push of a 128-core
 * sample costs ~40 µs, more than parsing its JSON: at 20,000 samples a second that alone
 * would take most of a core. This checks the same rules by hand, without copying.
 *
 * Contract: `isAgentPush(value)` returns true only when AgentPush.parse(value) would
 * succeed and return a value deep-equal to `value` (the schemas have no defaults or
 * transforms). Anything it is unsure of — folder reports, an unknown key, a rule broken —
 * returns false, and the caller asks zod, which stays the authority and words the error.
 * Kept in step with src/api/agent-push.ts and src/api/sample.ts by a test that
 * compares both on valid pushes and thousands of random mutations of them.
 */
import { AGENT_PUSH_VERSION, type AgentPush, MAX_SAMPLES_PER_PUSH } from "../../api/agent-push.ts";
import { SAMPLE_VERSION } from "../../api/sample.ts";

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isString = (v: unknown, min: number, max: number): boolean => typeof v === "string" && v.length >= min && v.length <= max;
/** z.int().min(0) and z.number().int().min(0): a safe integer ≥ 0. */
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const isShare = (v: unknown): boolean => typeof v === "number" && v >= 0 && v <= 1;
const isRate = (v: unknown): boolean => typeof v === "number" && v >= 0 && Number.isFinite(v);
/** intervalMs and sampleIntervalMs: positive, at most an hour. */
const isInterval = (v: unknown): boolean => typeof v === "number" && v > 0 && v <= 3_600_000;

/** True when `value` certainly is an AgentPush without folder reports (see the module comment). */
export function isAgentPush(value: unknown): value is AgentPush {
  if (!isObject(value)) return false;
  for (const key in value) {
    switch (key) {
      case "version":
      case "node":
      case "agent":
      case "sentAt":
      case "seq":
      case "samples":
        break;
      default:
        return false; // folders included: zod checks those
    }
  }
  if (value["version"] !== AGENT_PUSH_VERSION || !isString(value["node"], 1, 253) || !isCount(value["sentAt"]) || !isCount(value["seq"])) return false;
  if (!isAgent(value["agent"])) return false;
  const samples = value["samples"];
  if (!Array.isArray(samples) || samples.length > MAX_SAMPLES_PER_PUSH) return false;
  for (const sample of samples) if (!isSample(sample)) return false;
  return true;
}

function isAgent(v: unknown): boolean {
  if (!isObject(v)) return false;
  let n = 0;
  for (const key in v) {
    if (key !== "version" && key !== "instance" && key !== "sampleIntervalMs") return false;
    n++;
  }
  return n === 3 && isString(v["version"], 1, 64) && isString(v["instance"], 8, 64) && isInterval(v["sampleIntervalMs"]);
}

function isSample(v: unknown): boolean {
  if (!isObject(v)) return false;
  for (const key in v) {
    switch (key) {
      case "version":
      case "node":
      case "time":
      case "intervalMs":
      case "cores":
      case "memory":
      case "main":
      case "io":
      case "gpus":
        break;
      default:
        return false;
    }
  }
  if (v["version"] !== SAMPLE_VERSION || !isString(v["node"], 1, 253) || !isCount(v["time"]) || !isInterval(v["intervalMs"])) return false;
  if (!isMemory(v["memory"]) || !isMain(v["main"])) return false;
  if (v["io"] !== undefined && !isIo(v["io"])) return false;
  if ("io" in v && v["io"] === undefined) return false;
  const gpus = v["gpus"];
  if (gpus !== undefined && !isGpus(gpus)) return false;
  if ("gpus" in v && gpus === undefined) return false;
  const cores = v["cores"];
  if (!Array.isArray(cores) || cores.length > 65_536) return false;
  for (const core of cores) if (!isCore(core)) return false;
  return true;
}

function isCore(v: unknown): boolean {
  if (!isObject(v)) return false;
  let n = 0;
  for (const key in v) {
    if (key !== "id" && key !== "total" && key !== "main" && key !== "odop") return false;
    n++;
  }
  const id = v["id"];
  return n === 4 && Number.isSafeInteger(id) && (id as number) >= 0 && (id as number) <= 65_535 && isShare(v["total"]) && isShare(v["main"]) && isShare(v["odop"]);
}

function isMemory(v: unknown): boolean {
  if (!isObject(v)) return false;
  let n = 0;
  for (const key in v) {
    if (key !== "totalBytes" && key !== "availableBytes" && key !== "mainBytes" && key !== "odopBytes") return false;
    n++;
  }
  return n === 4 && isCount(v["totalBytes"]) && isCount(v["availableBytes"]) && isCount(v["mainBytes"]) && isCount(v["odopBytes"]);
}

function isMain(v: unknown): boolean {
  if (!isObject(v)) return false;
  let n = 0;
  for (const key in v) {
    if (key !== "processes" && key !== "cpu") return false;
    n++;
  }
  return n === 2 && isCount(v["processes"]) && isRate(v["cpu"]);
}

function isIo(v: unknown): boolean {
  if (!isObject(v)) return false;
  let n = 0;
  for (const key in v) {
    switch (key) {
      case "diskReadBytesPerSecond":
      case "diskWriteBytesPerSecond":
      case "networkReceiveBytesPerSecond":
      case "networkTransmitBytesPerSecond":
        if (!isRate(v[key])) return false;
        n++;
        break;
      default:
        return false;
    }
  }
  return n === 4;
}

function isGpus(v: unknown): boolean {
  if (!Array.isArray(v) || v.length > 1024) return false;
  for (const gpu of v) {
    if (!isObject(gpu)) return false;
    let n = 0;
    for (const key in gpu) {
      if (key !== "id" && key !== "utilization" && key !== "memoryUsedBytes" && key !== "memoryTotalBytes") return false;
      n++;
    }
    const id = gpu["id"];
    if (n !== 4 || !Number.isSafeInteger(id) || (id as number) < 0 || (id as number) > 1024) return false;
    if (!isShare(gpu["utilization"]) || !isCount(gpu["memoryUsedBytes"]) || !isCount(gpu["memoryTotalBytes"])) return false;
  }
  return true;
}
