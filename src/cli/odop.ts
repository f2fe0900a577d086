#!/usr/bin/env node
/** The `odop` command. Each subcommand lives in its own module; this file only wires them. */
import { text } from "node:stream/consumers";
import { Command } from "commander";
import pkg from "../../package.json" with { type: "json" };
import { runStageSpec } from "../staging/stage-spec.ts";
import { crdStream, writeCrds } from "./crds.ts";
import { validatePaths } from "./validate.ts";

const program = new Command("odop")
  .description("Run data operations opportunistically on the idle cores, memory and GPUs of HPC-adjacent clusters.")
  .version(pkg.version)
  .showHelpAfterError();

program
  .command("validate")
  .description("Check OpTask, OpExecution and OpNode manifests without a cluster (files, folders, or - for stdin).")
  .requiredOption("-f, --filename <paths...>", "files or folders of YAML/JSON manifests; - reads stdin")
  .option("-q, --quiet", "print problems only")
  .action(async (options: { filename: string[]; quiet?: boolean }) => {
    const report = await validatePaths(options.filename, () => text(process.stdin));
    for (const line of report.lines) process.stdout.write(`${line}\n`);
    const valid = report.documents - report.invalid;
    if (report.lines.length > 0) {
      process.stderr.write(`${report.lines.length} problem(s); ${valid} of ${report.documents} document(s) valid\n`);
      process.exitCode = 1;
    } else if (options.quiet !== true) {
      process.stderr.write(`${report.documents} document(s) valid\n`);
    }
  });

program
  .command("crds")
  .description("Print the CustomResourceDefinitions (odop crds | kubectl apply -f -), or write them to a folder.")
  .option("-w, --write <folder>", "write one file per CRD into this folder")
  .action(async (options: { write?: string }) => {
    if (options.write === undefined) {
      process.stdout.write(crdStream());
      return;
    }
    for (const path of await writeCrds(options.write)) process.stderr.write(`wrote ${path}\n`);
  });

program
  .command("stage", { hidden: true })
  .description("Run a configure or publish stage from its spec file (started by backends, not by people).")
  .argument("<spec>", "the stage spec JSON file")
  .action(async (spec: string) => {
    process.exitCode = await runStageSpec(spec, { stdout: process.stdout, stderr: process.stderr });
  });

await program.parseAsync();
