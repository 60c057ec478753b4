FROM busybox AS Build
RUN echo hi > /out
FROM busybox as final
COPY --from=build /out /out
