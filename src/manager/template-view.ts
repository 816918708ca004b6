// How the API shows a template: the document, where it comes from and the file that holds it.

import { type Static, Type } from "typebox";
import { TemplateSchema } from "./template-schema.ts";

export const TemplateSourceSchema = Type.Union([Type.Literal("builtin"), Type.Literal("user")], {
  description: "builtin: shipped with corral, cannot be removed; user: the user's templates folder",
});

export const TemplateView = Type.Object(
  {
    name: Type.String(),
    source: TemplateSourceSchema,
    file: Type.String({ description: "the YAML file that holds it" }),
    template: TemplateSchema,
    createdAt: Type.String({ description: "when corral first stored it (ISO 8601)" }),
    updatedAt: Type.String({ description: "when corral last stored it (ISO 8601)" }),
  },
  { $id: "TemplateView" },
);
export type TemplateViewType = Static<typeof TemplateView>;
