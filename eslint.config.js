// ESLint: typed rules (no floating promises above all) and the import layering of
// DESIGN.md §4 / STYLE.md: api imports nothing of ours, the scheduler is pure (api
// only), nothing imports the CLI, and only store/ and backends/ reach the API server.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

const layer = (files, patterns) => ({
  files,
  rules: { "no-restricted-imports": ["error", { patterns }] },
});
const cli = { group: ["**/cli/*"], message: "the CLI is the top layer: nothing imports it" };
const kubeClient = {
  group: ["@kubernetes/client-node"],
  message: "only src/store and src/backends talk to the API server",
};

export default defineConfig(
  { ignores: ["node_modules/", "dist/", "coverage/", ".tmp/"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", setTimeout: "readonly" } },
  },
  {
    // Tests build broken manifests on purpose: loose JSON is the point there.
    files: ["test/**"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  layer(["src/api/**"], [{ group: ["../*", "!./*"], message: "src/api imports nothing of ours" }]),
  layer(["src/scheduler/**"], [
    { group: ["../*", "!../api"], message: "the scheduler is pure: it imports src/api only" },
  ]),
  layer(["src/controller/**", "src/staging/**"], [cli, kubeClient]),
  layer(["src/agent/**"], [cli, kubeClient, { group: ["../*", "!../api"], message: "the agent runs on every node: it imports src/api only" }]),
  layer(["src/deploy/**"], [
    {
      group: ["../cli/*", "../controller/*", "../store/*", "../backends/*", "../scheduler/*", "../agent/*", "../staging/*"],
      message: "src/deploy generates manifests from src/api only",
    },
  ]),
  layer(["src/store/**", "src/backends/**"], [cli]),
);
