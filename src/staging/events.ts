/**
 * What stageIn and stageOut report while they work, and the options they share. Events
 * carry redacted locations only, so a caller may log them as they are.
 */
import type { HttpOptions } from "./http.ts";

export type Direction = "in" | "out";

/** One input or output that was copied. `files` and `bytes` count regular files. */
export type StagedItem = {
  readonly type: "staged";
  readonly direction: Direction;
  /** Position in the task's inputs or outputs list. */
  readonly index: number;
  readonly from: string;
  readonly to: string;
  readonly kind: "file" | "folder";
  readonly files: number;
  readonly bytes: number;
};

/** An optional input or output whose source does not exist. */
export type SkippedItem = {
  readonly type: "skipped";
  readonly direction: Direction;
  readonly index: number;
  readonly from: string;
  readonly to: string;
  readonly note: string;
};

/** A failed HTTP attempt that will be tried again. */
export type RetryEvent = {
  readonly type: "retry";
  readonly target: string;
  readonly attempt: number;
  readonly attempts: number;
  readonly delayMs: number;
  readonly error: string;
};

export type StageItemResult = StagedItem | SkippedItem;
export type StageEvent = StageItemResult | RetryEvent;

export type StageOptions = {
  /** Timeouts and retries of HTTP transfers. */
  readonly http?: Omit<HttpOptions, "signal" | "onRetry">;
  /** Aborts the stage between files and during transfers; it then fails with reason Cancelled. */
  readonly signal?: AbortSignal;
  /** Told of each item as it is done and of each retry. */
  readonly report?: (event: StageEvent) => void;
};

/** The HTTP options of one stage: its timeouts, its signal, and retries reported as events. */
export function httpOptionsOf(options: StageOptions): HttpOptions {
  return {
    ...options.http,
    ...signalOf(options),
    onRetry: (retry) =>
      options.report?.({
        type: "retry",
        target: retry.target,
        attempt: retry.attempt,
        attempts: retry.attempts,
        delayMs: retry.delayMs,
        error: retry.error.message,
      }),
  };
}

/** The stage's signal as an option to spread, or nothing. */
export function signalOf(options: { readonly signal?: AbortSignal | undefined }): { signal?: AbortSignal } {
  return options.signal === undefined ? {} : { signal: options.signal };
}
