// /v1/templates: the built-in and user templates VMs are made from. A template added here is also
// written to the user's templates folder as YAML, and removed from it by DELETE.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { DnsLabel, TemplateSchema } from "../../manager/template-schema.ts";
import { TemplateView } from "../../manager/template-view.ts";
import type { TemplateCatalog } from "../../manager/templates.ts";
import { errorResponses } from "../schemas.ts";

export interface TemplateRouteOptions {
  templates: TemplateCatalog;
}

const NameParams = Type.Object({ name: DnsLabel });
const viewRef = Type.Unsafe<Type.Static<typeof TemplateView>>(Type.Ref("TemplateView"));

export const templateRoutes: FastifyPluginAsyncTypebox<TemplateRouteOptions> = async (
  app,
  { templates },
) => {
  app.addSchema(TemplateView);

  app.get(
    "/templates",
    {
      schema: {
        summary: "list the templates, built-in and the user's",
        tags: ["templates"],
        response: { 200: Type.Array(viewRef), ...errorResponses },
      },
    },
    async () => templates.list(),
  );

  app.get(
    "/templates/:name",
    {
      schema: {
        summary: "one template",
        tags: ["templates"],
        params: NameParams,
        response: { 200: viewRef, ...errorResponses },
      },
    },
    async (request) => templates.get(request.params.name),
  );

  app.post(
    "/templates",
    {
      schema: {
        summary: "add a user template (also written to the user's templates folder as YAML)",
        description:
          "409 when the name is taken (a built-in or a user template, or a file of that name in the folder); 400 naming the field for a body the schema or the template rules refuse (uefi needs q35, defaults within min and max).",
        tags: ["templates"],
        body: TemplateSchema,
        response: { 201: viewRef, ...errorResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await templates.add(request.body)),
  );

  app.delete(
    "/templates/:name",
    {
      schema: {
        summary: "remove a user template and its file; built-in ones cannot be removed (409)",
        tags: ["templates"],
        params: NameParams,
        response: { 200: viewRef, ...errorResponses },
      },
    },
    async (request) => templates.remove(request.params.name),
  );
};
