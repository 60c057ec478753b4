FROM busybox
SHELL ["/bin/sh", "-xc"]
RUN echo traced
HEALTHCHECK CMD echo healthy
CMD echo from cmd
ENTRYPOINT echo from entrypoint
