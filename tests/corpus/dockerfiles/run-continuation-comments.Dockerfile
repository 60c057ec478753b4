FROM busybox
RUN echo a \
# a comment inside
    && echo b \
  # indented comment
    && echo c
