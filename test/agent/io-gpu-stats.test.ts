// io-stats.ts and gpu-stats.ts: the parsers on output in the kernel's and nvidia-smi's formats, IoStats over a fake /proc
// and /sys, GpuStats running a stand-in nvidia-smi (a real child process).
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GpuStats, findOnPath, parseNvidiaSmi } from "../../src/agent/gpu-stats.ts";
import { IoStats, parseDiskStats, parseNetDev, rates } from "../../src/agent/io-stats.ts";
import { until } from "./processes.ts";

const scratch = mkdtempSync(join(tmpdir(), "odop-io-gpu-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const DISKSTATS = (vdaRead: number, vdaWritten: number) => `   7       0 loop0 10 0 800 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 334621 39971 ${vdaRead} 244667 86783 389827 ${vdaWritten} 79674 0 50876 342503 269204 80 18288152 17910 5426 250
 254       1 vda1 1000 0 ${vdaRead - 8} 0 0 0 ${vdaWritten} 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 5 0 16 0 0 0 8 0 0 0 0
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
`;

const NETDEV = (eth0Rx: number, eth0Tx: number) => `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 2264416820  955541    0    0    0     0          0         0 2264416820  955541    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0:${eth0Rx}   71085    0    0    0     0          0         0  ${eth0Tx}   44312    0    0    0     0       0          0
veth1a2b: 500 5 0 0 0 0 0 0 700 7 0 0 0 0 0 0
`;

describe("io-stats parsers", () => {
  it("reads whole disks only, in bytes (sectors × 512)", () => {
    const parsed = parseDiskStats(DISKSTATS(1000, 2000), new Set(["vda", "nvme0n1"]));
    expect([...parsed.keys()]).toEqual(["vda", "nvme0n1"]);
    expect(parsed.get("vda")).toEqual({ a: 1000 * 512, b: 2000 * 512 });
    expect(parsed.get("nvme0n1")).toEqual({ a: 16 * 512, b: 8 * 512 });
  });

  it("reads interfaces without lo, also a counter glued to the colon", () => {
    const all = parseNetDev(NETDEV(2613326640, 5944243));
    expect([...all.keys()]).toEqual(["ifb0", "eth0", "veth1a2b"]);
    expect(all.get("eth0")).toEqual({ a: 2613326640, b: 5944243 });
    expect([...parseNetDev(NETDEV(1, 2), new Set(["eth0"])).keys()]).toEqual(["eth0"]);
  });

  it("turns counters into rates; new devices and counters that went back add nothing", () => {
    const before = new Map([["a", { a: 100, b: 100 }], ["b", { a: 500, b: 0 }]]);
    const after = new Map([["a", { a: 300, b: 50 }], ["b", { a: 700, b: 10 }], ["c", { a: 1e9, b: 1e9 }]]);
    expect(rates(before, after, 2)).toEqual({ a: (200 + 200) / 2, b: 10 / 2 });
    expect(rates(before, after, 0)).toEqual({ a: 0, b: 0 });
  });
});

describe("IoStats", () => {
  it("measures physical disks and interfaces over a fake /proc and /sys", () => {
    const root = join(scratch, "root");
    for (const dir of ["proc/net", "sys/block", "sys/class/net", "sys/devices/pci0000:00/block/vda", "sys/devices/virtual/block/loop0"]) mkdirSync(join(root, dir), { recursive: true });
    symlinkSync("../devices/pci0000:00/block/vda", join(root, "sys/block/vda"));
    symlinkSync("../devices/virtual/block/loop0", join(root, "sys/block/loop0"));
    symlinkSync("../../devices/pci0000:00/virtio2/net/eth0", join(root, "sys/class/net/eth0"));
    symlinkSync("../../devices/virtual/net/veth1a2b", join(root, "sys/class/net/veth1a2b"));
    symlinkSync("../../devices/virtual/net/lo", join(root, "sys/class/net/lo"));
    let now = 0;
    const io = new IoStats({ root, now: () => now });
    writeFileSync(join(root, "proc/diskstats"), DISKSTATS(1000, 2000));
    writeFileSync(join(root, "proc/net/dev"), NETDEV(10_000, 20_000));
    expect(io.read()).toBeUndefined(); // the baseline
    now = 2000;
    writeFileSync(join(root, "proc/diskstats"), DISKSTATS(1000 + 4, 2000 + 8));
    writeFileSync(join(root, "proc/net/dev"), NETDEV(10_000 + 4000, 20_000 + 1000));
    expect(io.read()).toEqual({
      diskReadBytesPerSecond: (4 * 512) / 2,
      diskWriteBytesPerSecond: (8 * 512) / 2,
      networkReceiveBytesPerSecond: 2000,
      networkTransmitBytesPerSecond: 500,
    });
  });

  it("reads this machine", () => {
    const io = new IoStats();
    expect(io.read()).toBeUndefined();
    const rates = io.read();
    expect(rates).toBeDefined();
    for (const value of Object.values(rates ?? {})) expect(value).toBeGreaterThanOrEqual(0);
  });
});

// nvidia-smi's csv,noheader,nounits format (written by hand: no GPU on the development VM);
// GPU 3 stands for one with MIG enabled, whose utilization reads [N/A].
const NVIDIA_SMI = `0, 87, 40321, 81559
1, 0, 0, 81559
2, 100, 81000, 81559
3, [N/A], 1200, 81559
`;

describe("gpu-stats", () => {
  it("parses nvidia-smi's csv, leaving out GPUs without a utilization", () => {
    expect(parseNvidiaSmi(NVIDIA_SMI)).toEqual([
      { id: 0, utilization: 0.87, memoryUsedBytes: 40321 * 1024 * 1024, memoryTotalBytes: 81559 * 1024 * 1024 },
      { id: 1, utilization: 0, memoryUsedBytes: 0, memoryTotalBytes: 81559 * 1024 * 1024 },
      { id: 2, utilization: 1, memoryUsedBytes: 81000 * 1024 * 1024, memoryTotalBytes: 81559 * 1024 * 1024 },
    ]);
    expect(parseNvidiaSmi("")).toEqual([]);
    expect(parseNvidiaSmi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n")).toEqual([]);
  });

  it("finds a program on PATH without running it", () => {
    const bin = join(scratch, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "not-executable"), "");
    expect(findOnPath("sh", "/nonexistent:/bin:/usr/bin")).toMatch(/\/sh$/);
    expect(findOnPath("not-executable", bin)).toBeUndefined();
    expect(findOnPath("nvidia-smi-surely-absent", "/bin:/usr/bin")).toBeUndefined();
  });

  it("runs nvidia-smi in the background and reports its last reading", async () => {
    const fake = join(scratch, "nvidia-smi");
    writeFileSync(fake, `#!/bin/sh\n[ "$1" = "--query-gpu=index,utilization.gpu,memory.used,memory.total" ] || exit 9\nprintf '${NVIDIA_SMI}'\n`);
    chmodSync(fake, 0o755);
    let now = 0;
    const gpus = new GpuStats({ command: fake, everyMs: 1000, now: () => now });
    expect(gpus.available).toBe(true);
    expect(gpus.latest()).toBeUndefined(); // started, no reading yet
    await gpus.settled();
    expect(gpus.latest()?.map((g) => g.id)).toEqual([0, 1, 2]);
    now = 10_000; // a reading older than 3 × everyMs is stale
    expect(gpus.latest()).toBeUndefined();
    await gpus.settled();
    expect(gpus.latest()).toHaveLength(3);
  });

  it("reports a failing nvidia-smi once and has no GPUs; no nvidia-smi: nothing runs", async () => {
    const fake = join(scratch, "broken-smi");
    writeFileSync(fake, "#!/bin/sh\necho 'Failed to initialize NVML: Driver/library version mismatch' >&2\nexit 9\n");
    chmodSync(fake, 0o755);
    const errors: string[] = [];
    let now = 0;
    const gpus = new GpuStats({ command: fake, everyMs: 100, now: () => now, onError: (m) => errors.push(m) });
    for (let i = 0; i < 3; i++) {
      expect(gpus.latest()).toBeUndefined();
      await gpus.settled();
      now += 100;
    }
    await until(() => errors.length > 0, "the error");
    expect(errors).toHaveLength(1);
    const none = new GpuStats({ command: null });
    expect(none.available).toBe(false);
    expect(none.latest()).toBeUndefined();
  });
});
