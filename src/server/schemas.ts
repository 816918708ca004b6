// Schemas that every route shares: the one error body of the API and the responses that carry it.

import { Type } from "typebox";

/** The body of every error answer: a CorralError's code, its message, and its extra lines. */
export const ErrorBody = Type.Object(
  {
    code: Type.String({
      description: "a stable code from docs/errors.md, e.g. CORRAL_NOT_FOUND",
      examples: ["CORRAL_INVALID_ARGUMENT"],
    }),
    message: Type.String({ description: "what went wrong and, where there is one, the fix" }),
    details: Type.Array(Type.String(), {
      description: "further lines: each invalid field, the steps tried, the last console lines",
    }),
  },
  { $id: "ErrorBody", description: "An error; the HTTP status is the one its code maps to" },
);

const errorBodyRef = Type.Ref("ErrorBody");

/** The error answers every route declares beside its successful ones. */
export const errorResponses = { "4xx": errorBodyRef, "5xx": errorBodyRef } as const;
