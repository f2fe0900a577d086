import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { generatedFiles } from "../../src/deploy/files.ts";
import { ROOT } from "./tools.ts";

const files = generatedFiles();

describe("generated deploy/ and charts/odop files", () => {
  it.each(files)("$path is what `npm run manifests` writes (run it after changing src/deploy or src/api)", ({ path, text }) => {
    expect(readFileSync(join(ROOT, path), "utf8")).toBe(text);
  });

  it("the chart's crds/ holds exactly the CRDs of crds/, with the same content", () => {
    const chartCrds = readdirSync(join(ROOT, "charts/odop/crds")).sort();
    const crds = readdirSync(join(ROOT, "crds")).filter((f) => f.endsWith(".yaml")).sort();
    expect(chartCrds).toEqual(crds);
    for (const file of crds) {
      expect(parse(readFileSync(join(ROOT, "charts/odop/crds", file), "utf8")), file).toEqual(
        parse(readFileSync(join(ROOT, "crds", file), "utf8")),
      );
    }
  });

  it("Chart.yaml carries the package version", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    const chart = parse(readFileSync(join(ROOT, "charts/odop/Chart.yaml"), "utf8"));
    expect(chart).toMatchObject({ apiVersion: "v2", name: "odop", version: pkg.version, appVersion: pkg.version });
  });
});
