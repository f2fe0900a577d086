import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/controller/clock.ts";
import { WorkQueue } from "../../src/controller/queue.ts";

async function drain(queue: WorkQueue): Promise<string[]> {
  const out: string[] = [];
  while (queue.length > 0) {
    const key = (await queue.get())!;
    out.push(key);
    queue.done(key);
  }
  return out;
}

describe("WorkQueue", () => {
  it("queues a key once however often it is added, in first-add order", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    for (const k of ["a", "b", "a", "c", "b"]) q.add(k);
    expect(await drain(q)).toEqual(["a", "b", "c"]);
  });

  it("never hands out a key being processed; re-queues it on done", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add("a");
    const key = await q.get();
    q.add("a");
    expect(q.length).toBe(0);
    q.done(key!);
    expect(q.length).toBe(1);
    expect(await drain(q)).toEqual(["a"]);
  });

  it("wakes a waiting worker", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const got = q.get();
    q.add("x");
    expect(await got).toBe("x");
  });

  it("keeps the earliest delay of a key", () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.addAfter("a", 1000);
    q.addAfter("a", 5000);
    q.addAfter("a", 200);
    clock.advance(199);
    expect(q.length).toBe(0);
    clock.advance(1);
    expect(q.length).toBe(1);
    clock.advance(10_000);
    expect(q.length).toBe(1);
  });

  it("backs off exponentially per key, capped, until forgotten", () => {
    const q = new WorkQueue({ clock: new FakeClock(), baseDelayMs: 100, maxDelayMs: 1000 });
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited("a"))).toEqual([100, 200, 400, 800, 1000]);
    expect(q.failures("a")).toBe(5);
    q.forget("a");
    expect(q.addRateLimited("a")).toBe(100);
  });

  it("returns undefined to waiters on shut down and takes no more keys", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    q.add("a");
    expect(q.length).toBe(0);
  });
});

describe("FakeClock", () => {
  it("fires timers in time order, including ones set by timers", () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    clock.after(30, () => fired.push("30"));
    clock.after(10, () => {
      fired.push("10");
      clock.after(5, () => fired.push("15"));
    });
    const cancelled = clock.after(20, () => fired.push("20"));
    cancelled.cancel();
    clock.advance(100);
    expect(fired).toEqual(["10", "15", "30"]);
    expect(clock.now()).toBe(100);
  });
});
