FROM busybox
SHELL ["/bin/sh", "-ec"]
RUN echo with custom shell
