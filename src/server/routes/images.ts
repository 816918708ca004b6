// /v1/images: list, show, import (a local qcow2, raw or ISO file) or build (a recipe, as a job),
// and delete the manager's images.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import {
  CreateImageBody,
  ImageKindSchema,
  ImageView,
  JobView,
} from "../../manager/image-schemas.ts";
import type { ImageService } from "../../manager/images.ts";
import { errorResponses } from "../schemas.ts";

export interface ImageRouteOptions {
  images: ImageService;
}

const ImageRef = Type.Ref("Image");
const IdOrName = Type.Object({
  idOrName: Type.String({ minLength: 1, description: "the image's id or name" }),
});

export const imageRoutes: FastifyPluginAsyncTypebox<ImageRouteOptions> = async (
  app,
  { images },
) => {
  app.addSchema(ImageView);
  app.addSchema(JobView);
  app.get(
    "/images",
    {
      schema: {
        summary: "list images, the oldest first",
        tags: ["images"],
        querystring: Type.Object(
          { kind: Type.Optional(ImageKindSchema) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(ImageRef), ...errorResponses },
      },
    },
    async (request) => images.list(request.query),
  );

  app.get(
    "/images/:idOrName",
    {
      schema: {
        summary: "one image",
        tags: ["images"],
        params: IdOrName,
        response: { 200: ImageRef, ...errorResponses },
      },
    },
    async (request) => images.get(request.params.idOrName),
  );

  app.post(
    "/images",
    {
      schema: {
        summary: "import a local file as an image, or build a recipe as a job",
        description:
          "`import` copies a qcow2, raw or ISO file from the daemon's host (format from qemu-img info; a qcow2 with a backing file is refused; sha256 checked when given) and answers 201 with the image. `build` starts a job that builds the recipe (a cache hit when built before) and answers 202 with the job: follow it at GET /v1/jobs/{id} or as job.* events; its result names the image. One build per recipe at a time (409).",
        tags: ["images"],
        body: CreateImageBody,
        response: {
          201: Type.Ref("Image", { description: "the imported image" }),
          202: Type.Ref("Job", { description: "the build's job" }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      if (body.build) {
        const job = images.build(body.build);
        return reply.code(202).header("location", `${app.prefix}/jobs/${job.id}`).send(job);
      }
      // A client that goes away before the answer ends the import; nothing of it stays.
      const gone = new AbortController();
      reply.raw.on("close", () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      // The schema lets exactly one of the two through.
      const image = await images.import(body.import as NonNullable<typeof body.import>, {
        signal: gone.signal,
      });
      return reply.code(201).header("location", `${app.prefix}/images/${image.id}`).send(image);
    },
  );

  app.delete(
    "/images/:idOrName",
    {
      schema: {
        summary: "delete an image and its files",
        description: "409 while a VM or a snapshot has its disk on the image.",
        tags: ["images"],
        params: IdOrName,
        response: {
          200: Type.Ref("Image", { description: "the deleted image" }),
          ...errorResponses,
        },
      },
    },
    async (request) => images.remove(request.params.idOrName),
  );
};
