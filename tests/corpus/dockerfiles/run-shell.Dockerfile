FROM busybox
RUN echo hello > /hello && cat /hello
