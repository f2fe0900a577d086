/**
 * Operators' pod templates (operator-engine's job templates) from a ConfigMap: the key
 * `stage-pod.yaml` holds a partial pod that buildStagePod merges under odop's own
 * fields. Read at start and again every refresh period, so a changed ConfigMap applies
 * to the next pods. A ConfigMap that is missing means "no template"; one that does not
 * parse is reported and the last good template stays in use — a typo in a ConfigMap
 * never stops the controller.
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { parse } from "yaml";
import { z } from "zod";
import type { PodTemplate } from "./pod-template.ts";

/** The ConfigMap key that holds the template (deploy/ and the chart write it). */
export const STAGE_POD_KEY = "stage-pod.yaml";

/** Only the shape is checked here; buildStagePod refuses what it cannot merge. */
const TemplateShape = z.looseObject({
  metadata: z.looseObject({}).optional(),
  spec: z.looseObject({}).optional(),
});

export type TemplateSourceOptions = {
  kubeConfig: KubeConfig;
  log: Logger;
  namespace: string;
  name: string;
  refreshMs?: number;
};

export class ConfigMapTemplateSource {
  readonly #o: TemplateSourceOptions;
  readonly #api: CoreV1Api;
  #template: PodTemplate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastProblem: string | undefined;

  constructor(options: TemplateSourceOptions) {
    this.#o = options;
    this.#api = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  /** The template to merge now (undefined: none). */
  get(): PodTemplate | undefined {
    return this.#template;
  }

  /** Reads it now, then every refresh period until stop(). */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.#o.refreshMs ?? 30_000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  async refresh(): Promise<void> {
    const { namespace, name, log } = this.#o;
    let text: string | undefined;
    try {
      const map = await this.#api.readNamespacedConfigMap({ namespace, name });
      text = map.data?.[STAGE_POD_KEY];
    } catch (error) {
      if ((error as { code?: number }).code === 404) {
        this.#template = undefined;
        return;
      }
      log.warn({ err: error, configMap: `${namespace}/${name}` }, "could not read the pod template ConfigMap; keeping the last one");
      return;
    }
    if (text === undefined || text.trim() === "") {
      this.#template = undefined;
      return;
    }
    try {
      const checked = TemplateShape.safeParse(parse(text));
      if (!checked.success) throw new Error(checked.error.issues.map((i) => `${i.path.join(".") || "(template)"}: ${i.message}`).join("; "));
      this.#template = checked.data as PodTemplate;
      this.#lastProblem = undefined;
    } catch (error) {
      const problem = `${namespace}/${name} key ${STAGE_POD_KEY}: ${(error as Error).message}`;
      if (problem !== this.#lastProblem) log.warn({ problem }, "the pod template does not parse; keeping the last good one");
      this.#lastProblem = problem;
    }
  }
}
