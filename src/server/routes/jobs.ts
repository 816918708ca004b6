// GET /v1/jobs and /v1/jobs/{id}: long work (image builds) with its progress, result or error.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { JobStateSchema, JobView } from "../../manager/image-schemas.ts";
import type { JobService } from "../../manager/jobs.ts";
import { errorResponses } from "../schemas.ts";

export interface JobRouteOptions {
  jobs: JobService;
}

const JobRef = Type.Ref("Job");

export const jobRoutes: FastifyPluginAsyncTypebox<JobRouteOptions> = async (app, { jobs }) => {
  app.addSchema(JobView);
  app.get(
    "/jobs",
    {
      schema: {
        summary: "list jobs, the oldest first",
        tags: ["jobs"],
        querystring: Type.Object(
          {
            state: Type.Optional(JobStateSchema),
            kind: Type.Optional(Type.String({ minLength: 1, description: 'e.g. "image-build"' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(JobRef), ...errorResponses },
      },
    },
    async (request) => jobs.list(request.query),
  );

  app.get(
    "/jobs/:id",
    {
      schema: {
        summary: "one job: its state, progress, result or error",
        tags: ["jobs"],
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
        response: { 200: JobRef, ...errorResponses },
      },
    },
    async (request) => jobs.get(request.params.id),
  );
};
