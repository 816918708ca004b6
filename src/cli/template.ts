// `corral template ls|show|add|rm`: the daemon's VM templates, through its API.

import type { Command } from "commander";
import { stringify } from "yaml";
import { readTemplateFile } from "../manager/template-file.ts";
import type { TemplateViewType } from "../manager/template-view.ts";
import {
  type ApiFlags,
  callApi,
  printJson,
  printTable,
  segment,
  withApiOptions,
} from "./api-command.ts";

export function registerTemplate(program: Command): void {
  const template = program
    .command("template")
    .description("list, show, add and remove the VM templates of corral serve")
    .addHelpText(
      "after",
      "\nBuilt-in templates: linux-default, linux-microvm, windows-default. User templates are " +
        "YAML files in ~/.config/corral/templates (docs/templates.md).",
    );

  withApiOptions(
    template
      .command("ls")
      .alias("list")
      .description("list the templates, built-in and the user's")
      .addHelpText("after", "\nExample:\n  corral template ls --json"),
    { hasJson: true },
  ).action((flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const templates = await api.request<TemplateViewType[]>("GET", "/v1/templates");
      if (flags.json) return printJson(templates);
      const rows = templates.map(({ name, source, template: t }) => [
        name,
        source,
        t.os,
        t.machineType ?? "pc",
        String(t.cpus),
        `${t.memoryMiB} MiB`,
        t.diskGiB === undefined ? "" : `${t.diskGiB} GiB`,
        t.image ?? "(empty disk)",
      ]);
      printTable(
        ["NAME", "SOURCE", "OS", "MACHINE", "CPUS", "MEMORY", "DISK", "IMAGE"],
        rows,
        "no templates",
      );
    }),
  );

  withApiOptions(
    template
      .command("show")
      .description("print a template as YAML (with --json: the API's view of it)")
      .argument("<name>", "the template's name")
      .addHelpText("after", "\nExample:\n  corral template show windows-default"),
    { hasJson: true },
  ).action((name: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const view = await api.request<TemplateViewType>("GET", `/v1/templates/${segment(name)}`);
      if (flags.json) return printJson(view);
      const from = view.source === "builtin" ? "built-in" : "user";
      process.stdout.write(`# ${from} template, from ${view.file}\n${stringify(view.template)}`);
    }),
  );

  withApiOptions(
    template
      .command("add")
      .description(
        "add a user template from a YAML file; the daemon keeps a copy in its templates folder",
      )
      .argument("<file>", "a template YAML file (docs/templates.md)")
      .addHelpText(
        "after",
        "\nA file that breaks the schema is refused naming its line and field, before the daemon " +
          "is asked.\n\nExample:\n  corral template show linux-default > big.yaml   # edit name, cpus…\n" +
          "  corral template add big.yaml",
      ),
    { hasJson: true },
  ).action((file: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const document = await readTemplateFile(file);
      const view = await api.request<TemplateViewType>("POST", "/v1/templates", {
        body: document,
      });
      if (flags.json) return printJson(view);
      process.stdout.write(`added template ${view.name} (${view.file})\n`);
    }),
  );

  withApiOptions(
    template
      .command("rm")
      .description("remove a user template and its file (built-in templates stay)")
      .argument("<name>", "the template's name")
      .addHelpText("after", "\nExample:\n  corral template rm big"),
  ).action((name: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const view = await api.request<TemplateViewType>("DELETE", `/v1/templates/${segment(name)}`);
      process.stdout.write(`removed template ${view.name} (${view.file})\n`);
    }),
  );
}
