FROM busybox
RUN echo one \
    && echo two \
    && echo three
