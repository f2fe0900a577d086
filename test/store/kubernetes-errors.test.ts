import { ApiException } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { AlreadyExistsError, ConflictError, InvalidError, NotFoundError, StoreError } from "../../src/store/errors.ts";
import { isTransient, KubernetesApiError, parseFieldPath, toStoreError } from "../../src/store/kubernetes-errors.ts";
import { status } from "./kubernetes-fake-api.ts";

const apiError = (code: number, body: unknown) => new ApiException(code, "Unknown API Status Code!", typeof body === "string" ? body : JSON.stringify(body), {});

describe("kubernetes store errors", () => {
  it.each([
    [404, status(404, "NotFound", 'optasks.odop.io "a" not found'), NotFoundError],
    [409, status(409, "AlreadyExists", 'optasks.odop.io "a" already exists'), AlreadyExistsError],
    [409, status(409, "Conflict", "the object has been modified; please apply your changes to the latest version"), ConflictError],
    [422, status(422, "Invalid", "OpTask is invalid", [{ field: "spec.run", message: "Required value" }]), InvalidError],
  ])("maps HTTP %i to the store error of its reason", (code, body, type) => {
    const mapped = toStoreError(apiError(code, body), "OpTask ns/a");
    expect(mapped).toBeInstanceOf(type);
    expect(mapped.message).toContain("OpTask ns/a");
  });

  it("turns 422 causes into problems with field paths", () => {
    const body = status(422, "Invalid", 'OpTask.odop.io "b" is invalid', [
      { field: "spec.requirements.cpu", message: "Invalid value: min must not exceed max" },
      { field: "spec.run.env[2].name", message: "Required value" },
    ]);
    const mapped = toStoreError(apiError(422, body), "OpTask ns/b");
    expect(mapped).toBeInstanceOf(InvalidError);
    expect((mapped as InvalidError).problems).toEqual([
      { path: ["spec", "requirements", "cpu"], message: "Invalid value: min must not exceed max" },
      { path: ["spec", "run", "env", 2, "name"], message: "Required value" },
    ]);
    expect(mapped.message).toContain("spec.run.env[2].name: Required value");
  });

  it("keeps a 422 without causes as one problem about the object", () => {
    const mapped = toStoreError(apiError(422, status(422, "Invalid", "bad object")), "OpTask ns/b") as InvalidError;
    expect(mapped.problems).toEqual([{ path: [], message: "bad object" }]);
  });

  it("carries the HTTP status and Kubernetes' message otherwise, and says whether to retry", () => {
    const forbidden = toStoreError(apiError(403, status(403, "Forbidden", 'optasks.odop.io is forbidden: User "x" cannot list')), "OpTask list");
    expect(forbidden).toBeInstanceOf(KubernetesApiError);
    expect((forbidden as KubernetesApiError).status).toBe(403);
    expect((forbidden as KubernetesApiError).reason).toBe("Forbidden");
    expect(forbidden.message).toContain('User "x" cannot list');
    expect(isTransient(forbidden)).toBe(false);
    for (const code of [429, 500, 503, 410]) expect(isTransient(toStoreError(apiError(code, status(code, "X", "later")), "w"))).toBe(true);
  });

  it("reads a body that is not a Status", () => {
    const mapped = toStoreError(apiError(502, "<html>bad gateway</html>"), "OpTask ns/a") as KubernetesApiError;
    expect(mapped.status).toBe(502);
    expect(mapped.message).toContain("bad gateway");
    expect(toStoreError(new ApiException(401, "Unauthorized", undefined, {}), "w")).toBeInstanceOf(KubernetesApiError);
  });

  it("marks errors without an HTTP answer as transient", () => {
    const refused = new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }) });
    const mapped = toStoreError(refused, "OpTask ns/a");
    expect(mapped).toBeInstanceOf(KubernetesApiError);
    expect((mapped as KubernetesApiError).status).toBeUndefined();
    expect(isTransient(mapped)).toBe(true);
    expect(mapped.message).toContain("ECONNREFUSED");
  });

  it("passes store errors through and maps a Watch statusCode", () => {
    const conflict = new ConflictError("x");
    expect(toStoreError(conflict, "w")).toBe(conflict);
    const gone = toStoreError(Object.assign(new Error("Gone"), { statusCode: 410 }), "watch");
    expect(gone).toBeInstanceOf(StoreError);
    expect((gone as KubernetesApiError).status).toBe(410);
  });

  it.each([
    ["metadata.name", ["metadata", "name"]],
    ["spec.run.env[2].name", ["spec", "run", "env", 2, "name"]],
    ["spec.stages.configure.inputs[0]", ["spec", "stages", "configure", "inputs", 0]],
    ["metadata.labels[team]", ["metadata", "labels", "team"]],
    ["", []],
  ])("parses the field path %s", (field, path) => {
    expect(parseFieldPath(field)).toEqual(path);
  });
});
