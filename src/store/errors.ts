/** Store errors, named after the Kubernetes API statuses they mirror. */
import type { Problem } from "../api/validate.ts";
import { formatPath } from "../api/validate.ts";

export class StoreError extends Error {
  override name = "StoreError";
}

/** 404: the object does not exist. */
export class NotFoundError extends StoreError {
  override name = "NotFoundError";
}

/** 409 AlreadyExists: create of a name that is taken. */
export class AlreadyExistsError extends StoreError {
  override name = "AlreadyExistsError";
}

/** 409 Conflict: the object changed since it was read; read it again and retry. */
export class ConflictError extends StoreError {
  override name = "ConflictError";
}

/** 422 Invalid: the object breaks the schema. */
export class InvalidError extends StoreError {
  override name = "InvalidError";
  readonly problems: Problem[];
  constructor(what: string, problems: Problem[]) {
    super(`${what} is invalid: ${problems.map((p) => `${formatPath(p.path)}: ${p.message}`).join("; ")}`);
    this.problems = problems;
  }
}
