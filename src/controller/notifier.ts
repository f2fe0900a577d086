/**
 * Start and finish notifications (stages.publish.notify), sent by the controller in the
 * background so a slow receiver never holds up a reconcile. Delivery is at least once:
 * a controller killed after sending and before recording the phase sends again on the
 * next pass; receivers tell repeats apart by executionId and event.
 */
import type { Logger } from "pino";
import type { OpExecution, OpExecutionStatus } from "../api/opexecution.ts";
import type { OpTask } from "../api/optask.ts";
import { type NotificationPayload, sendNotification } from "../staging/notify.ts";
import type { Store } from "../store/types.ts";

export interface Notifier {
  started(task: OpTask | undefined, execution: OpExecution, status: OpExecutionStatus): void;
  finished(task: OpTask | undefined, execution: OpExecution, status: OpExecutionStatus): void;
  /** Resolves when every notification sent so far has been delivered or given up on. */
  flush(): Promise<void>;
}

export type HttpNotifierOptions = {
  /** HMAC key; without one notifications go unsigned (odop run warns at start). */
  key: string | undefined;
  log: Logger;
  /** Called when a notification could not be delivered, to record a Warning event. */
  onFailure: (execution: OpExecution, message: string) => void;
};

export class HttpNotifier implements Notifier {
  readonly #options: HttpNotifierOptions;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(options: HttpNotifierOptions) {
    this.#options = options;
  }

  started(task: OpTask | undefined, execution: OpExecution, status: OpExecutionStatus): void {
    this.#send("started", task?.spec.stages?.publish?.notify?.started, execution, status);
  }

  finished(task: OpTask | undefined, execution: OpExecution, status: OpExecutionStatus): void {
    this.#send("finished", task?.spec.stages?.publish?.notify?.finished, execution, status);
  }

  async flush(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #send(event: "started" | "finished", url: string | undefined, execution: OpExecution, status: OpExecutionStatus): void {
    if (url === undefined) return;
    const payload: NotificationPayload = {
      event,
      execution: {
        name: execution.metadata.name ?? "",
        namespace: execution.metadata.namespace ?? "default",
        executionId: execution.spec.executionId,
        task: execution.spec.taskRef.name,
      },
      phase: status.phase ?? "Pending",
      ...(status.reason === undefined ? {} : { reason: status.reason }),
      ...(status.message === undefined ? {} : { message: status.message }),
      ...(status.startedAt === undefined ? {} : { startedAt: status.startedAt }),
      ...(status.finishedAt === undefined ? {} : { finishedAt: status.finishedAt }),
    };
    const log = this.#options.log.child({ execution: payload.execution.name, event });
    const p = sendNotification(url, payload, this.#options.key)
      .then(() => log.info({ url }, "notification delivered"))
      .catch((error: unknown) => {
        const message = `${event} notification to ${url} failed: ${(error as Error).message}`;
        log.warn({ url, err: error }, "notification failed");
        this.#options.onFailure(execution, message);
      })
      .finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
  }
}

/** The notifier of a controller: a failed delivery becomes a Warning event (NotifyFailed) on the execution. */
export function notifierFor(store: Store, key: string | undefined, log: Logger): HttpNotifier {
  return new HttpNotifier({
    key,
    log,
    onFailure: (e, message) =>
      void store.recordEvent({ kind: "OpExecution", namespace: e.metadata.namespace, name: e.metadata.name ?? "" }, "Warning", "NotifyFailed", message),
  });
}
