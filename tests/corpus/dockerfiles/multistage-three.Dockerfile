ARG VERSION=1
FROM busybox AS deps
RUN echo deps > /deps
FROM deps AS build
ARG VERSION
RUN echo $VERSION > /version
FROM busybox AS final
COPY --from=build /version /deps /
CMD ["cat", "/version"]
