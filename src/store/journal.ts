/**
 * The embedded store's durability: a snapshot plus an append-only journal of JSON
 * lines in one folder ($ODOP_PATH/runs/<run>/). Every change is written synchronously
 * before the store answers, so an `odop run` killed at any point restarts from what it
 * had acknowledged. A torn last line (killed mid-write) is ignored; a torn line
 * anywhere else means the journal is damaged and opening fails loudly.
 *
 * On open the journal is folded into a fresh snapshot (written to a temporary file and
 * renamed, so a crash during compaction leaves the old pair intact).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { AnyObject, EventRecord } from "./types.ts";

export type JournalEntry = { t: "put"; o: AnyObject } | { t: "del"; k: string } | { t: "ev"; e: EventRecord };

export type JournalState = { objects: AnyObject[]; events: EventRecord[] };

const SNAPSHOT = "snapshot.json";
const JOURNAL = "journal.jsonl";

export class Journal {
  readonly folder: string;
  #fd: number | undefined;
  #entries = 0;

  constructor(folder: string) {
    this.folder = folder;
  }

  /** Reads the snapshot and replays the journal; `apply` receives each entry in order. */
  load(apply: (entry: JournalEntry) => void): void {
    mkdirSync(this.folder, { recursive: true });
    const snapshotPath = join(this.folder, SNAPSHOT);
    if (existsSync(snapshotPath)) {
      const state = JSON.parse(readFileSync(snapshotPath, "utf8")) as JournalState;
      for (const o of state.objects) apply({ t: "put", o });
      for (const e of state.events) apply({ t: "ev", e });
    }
    const journalPath = join(this.folder, JOURNAL);
    if (!existsSync(journalPath)) return;
    const lines = readFileSync(journalPath, "utf8").split("\n");
    lines.forEach((line, i) => {
      if (line === "") return;
      let entry: JournalEntry;
      try {
        entry = JSON.parse(line) as JournalEntry;
      } catch (error) {
        const last = lines.slice(i + 1).every((l) => l === "");
        if (last) return; // torn final write: the change was never acknowledged
        throw new Error(`${journalPath}:${i + 1}: damaged journal line: ${String(error)}`, { cause: error });
      }
      apply(entry);
    });
  }

  /** Replaces snapshot and journal with `state`, then opens the journal for appends. */
  compact(state: JournalState): void {
    const tmp = join(this.folder, `${SNAPSHOT}.tmp`);
    writeFileSync(tmp, JSON.stringify(state));
    const fd = openSync(tmp, "r");
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(this.folder, SNAPSHOT));
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = openSync(join(this.folder, JOURNAL), "w");
    this.#entries = 0;
  }

  /** Appends one entry; returns how many entries the journal holds since the last compaction. */
  append(entry: JournalEntry): number {
    if (this.#fd === undefined) this.#fd = openSync(join(this.folder, JOURNAL), "a");
    writeSync(this.#fd, `${JSON.stringify(entry)}\n`);
    this.#entries += 1;
    return this.#entries;
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
