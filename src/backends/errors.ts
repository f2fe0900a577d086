/** Errors backends throw that mean "try again later": the controller rethrows them and retries the pass with backoff. */
export class TransientBackendError extends Error {
  readonly transient = true;
}

/** pause() found the stage not started yet (a container waiting, a Slurm job pending). */
export class StageNotStartedError extends TransientBackendError {
  override name = "StageNotStartedError";
}

/** stop() gave up waiting for the stage to be gone (a pod terminating, a Slurm job completing). */
export class StageStillStoppingError extends TransientBackendError {
  override name = "StageStillStoppingError";
}
