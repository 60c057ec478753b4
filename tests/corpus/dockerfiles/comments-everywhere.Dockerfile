# leading comment

   # indented comment
FROM busybox
# between
RUN echo a # not a comment inside the line
