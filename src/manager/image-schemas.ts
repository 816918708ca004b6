// The shapes of the manager's image and job requests and views, as TypeBox schemas: the server
// declares its routes with them (and so the OpenAPI document), the manager takes their types.

import { type Static, Type } from "typebox";

const imageName = (description: string) =>
  Type.String({
    pattern: "^[a-z0-9][a-z0-9._-]{0,62}$",
    description: `${description}: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit`,
  });

export const ImageFormatSchema = Type.Union(
  [Type.Literal("qcow2"), Type.Literal("raw"), Type.Literal("iso")],
  { description: "the file's format, as qemu-img info sees it (an ISO 9660 image is iso)" },
);

export const ImageKindSchema = Type.Union([Type.Literal("built"), Type.Literal("imported")], {
  description: "built by corral from a recipe, or imported from a local file",
});

export const ImportImageRequestSchema = Type.Object(
  {
    path: Type.String({
      minLength: 2,
      pattern: "^/",
      description: "absolute path of a qcow2, raw or ISO file on the daemon's host; it is copied",
    }),
    name: imageName("the image's name"),
    sha256: Type.Optional(
      Type.String({
        pattern: "^[0-9a-fA-F]{64}$",
        description: "the file's expected sha256; a file with another is refused",
      }),
    ),
    format: Type.Optional(
      Type.Union([Type.Literal("qcow2"), Type.Literal("raw"), Type.Literal("iso")], {
        description: "what the file must be; detected when left out (an ISO may be taken as raw)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type ImportImageRequest = Static<typeof ImportImageRequestSchema>;

export const BuildImageRequestSchema = Type.Object(
  {
    recipe: Type.String({
      minLength: 1,
      description: "a corral recipe (recipes/ in the package), e.g. debian-12",
    }),
    name: Type.Optional(imageName("the image's name (default: the recipe's)")),
  },
  { additionalProperties: false },
);
export type BuildImageRequest = Static<typeof BuildImageRequestSchema>;

export const CreateImageBody = Type.Object(
  {
    import: Type.Optional(ImportImageRequestSchema),
    build: Type.Optional(BuildImageRequestSchema),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    description:
      "exactly one of: import (copy a local file; answers 201 with the image) or build (build a recipe as a job; answers 202 with the job)",
  },
);
export type CreateImageRequest = Static<typeof CreateImageBody>;

export const ImageView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    kind: ImageKindSchema,
    recipe: Type.Union([Type.String(), Type.Null()], { description: "a built image's recipe" }),
    format: ImageFormatSchema,
    path: Type.String({
      description:
        "the image file in the daemon's state folder (a built image's root disk, beside its kernel, initrd and start script)",
    }),
    sha256: Type.String(),
    sizeBytes: Type.Integer(),
    createdAt: Type.String(),
  },
  { $id: "Image" },
);

export const JobStateSchema = Type.Union(
  [Type.Literal("queued"), Type.Literal("running"), Type.Literal("done"), Type.Literal("failed")],
  { description: "queued → running → done or failed" },
);

export const JobView = Type.Object(
  {
    id: Type.String(),
    kind: Type.String({ description: 'what the job does: "image-build"' }),
    subject: Type.Union([Type.String(), Type.Null()], {
      description: "what it works on: the recipe of an image build",
    }),
    state: JobStateSchema,
    progress: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
      description:
        "how far it is; an image build: { stage, status (start|info|done), message, elapsedMs, stagesDone }",
    }),
    result: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
      description: "what a done job made; an image build: { imageId, name, wasCached }",
    }),
    errorCode: Type.Union([Type.String(), Type.Null()], {
      description: "why a failed job failed: an error code (docs/errors.md)",
    }),
    error: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String(),
    startedAt: Type.Union([Type.String(), Type.Null()]),
    finishedAt: Type.Union([Type.String(), Type.Null()]),
    updatedAt: Type.String(),
  },
  { $id: "Job" },
);
