/**
 * A deadline for one client-node call: the request is aborted after `timeoutMs`
 * (headers and body), not merely abandoned, so its socket is freed; it then fails as a
 * network error, which the store maps to a transient error. Built like client-node's
 * own setHeaderOptions(), whose options it can extend.
 */
import { type ConfigurationOptions, Observable, type RequestContext, type ResponseContext } from "@kubernetes/client-node";

export function timeoutOptions(timeoutMs: number, options?: ConfigurationOptions): ConfigurationOptions {
  return {
    ...options,
    middleware: [
      ...(options?.middleware ?? []),
      {
        pre: (context: RequestContext) => {
          context.setSignal(AbortSignal.timeout(timeoutMs));
          return new Observable(Promise.resolve(context));
        },
        post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}
