/** What deploy/ and the chart promise the controller is what the controller reads. */
import { describe, expect, it } from "vitest";
import { STAGE_POD_KEY as backendKey } from "../../src/backends/kubernetes/template-source.ts";
import { STAGE_POD_KEY as deployKey } from "../../src/deploy/controller.ts";

describe("deploy ↔ controller", () => {
  it("name the pod template's ConfigMap key the same", () => {
    expect(backendKey).toBe(deployKey);
  });
});
