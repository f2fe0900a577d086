# The odop image: `odop controller` in the cluster, and `odop stage` / `odop --version`
# in stage pods (configure, publish, done). Node 24 runs the TypeScript sources directly.
# Build: docker build -t ghcr.io/odop/odop:0.1.0 .   (kind: kind load docker-image ghcr.io/odop/odop:0.1.0)
FROM node:24-bookworm-slim
WORKDIR /opt/odop
COPY package.json package-lock.json ./
# The node package (Node 24 for hosts with an older one) is not needed: the image has Node 24.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force \
 && printf '#!/bin/sh\nexec node /opt/odop/src/cli/odop.ts "$@"\n' > /usr/local/bin/odop && chmod 0755 /usr/local/bin/odop
COPY src ./src
COPY crds ./crds
# The restricted security context runs it as a non-root user with a read-only root.
USER 65532:65532
ENV ODOP_PATH=/var/lib/odop
ENTRYPOINT ["odop"]
CMD ["controller"]
