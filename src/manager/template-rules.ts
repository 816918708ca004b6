// What the schema alone cannot say about a template: fields that must agree with each other
// (UEFI needs q35, an empty disk needs a size) and resources within the template's own limits.

import { isAbsolute } from "node:path";
import type { Problem } from "./schema-problems.ts";
import type { Resources, TemplateDocument } from "./template-schema.ts";

const RESOURCE_KEYS = ["cpus", "memoryMiB", "diskGiB"] as const;

/**
 * Where `resources` leave the template's `min`/`max`, one problem per field
 * (`cpus: 1 is below the template's minimum of 2`). Fields a side leaves out are not checked.
 */
export function limitProblems(
  limits: Pick<TemplateDocument, "min" | "max">,
  resources: Resources,
): Problem[] {
  const problems: Problem[] = [];
  for (const key of RESOURCE_KEYS) {
    const value = resources[key];
    if (value === undefined) continue;
    const min = limits.min?.[key];
    const max = limits.max?.[key];
    if (min !== undefined && value < min) {
      problems.push({ path: [key], message: `${value} is below the template's minimum of ${min}` });
    }
    if (max !== undefined && value > max) {
      problems.push({ path: [key], message: `${value} is above the template's maximum of ${max}` });
    }
  }
  return problems;
}

/** The problems of a template that its schema already accepted. */
export function templateRuleProblems(template: TemplateDocument): Problem[] {
  const problems: Problem[] = [];
  const machineType = template.machineType ?? "pc";
  if (template.firmware === "uefi" && machineType !== "q35") {
    problems.push({
      path: ["firmware"],
      message: `uefi needs machineType q35 (this template has ${machineType})`,
    });
  }
  if (machineType === "microvm") {
    if (template.os !== "linux") {
      problems.push({ path: ["machineType"], message: "microvm boots Linux kernels only" });
    }
    if (template.image === undefined) {
      problems.push({
        path: ["image"],
        message: "is required with machineType microvm: it boots the image's kernel directly",
      });
    }
  }
  if (template.image === undefined && template.diskGiB === undefined) {
    problems.push({
      path: ["diskGiB"],
      message: "is required when there is no image: the VM gets an empty disk of this size",
    });
  }
  for (const key of RESOURCE_KEYS) {
    const min = template.min?.[key];
    const max = template.max?.[key];
    if (min !== undefined && max !== undefined && min > max) {
      problems.push({ path: ["min", key], message: `${min} is above max.${key} (${max})` });
    }
  }
  problems.push(...limitProblems(template, template));
  template.drives?.forEach((drive, i) => {
    if (!isAbsolute(drive.path)) {
      problems.push({
        path: ["drives", String(i), "path"],
        message: `must be an absolute path, got ${JSON.stringify(drive.path)}`,
      });
    }
  });
  return problems;
}
