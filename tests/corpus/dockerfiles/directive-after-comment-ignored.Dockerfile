# a comment first
# escape=`
FROM busybox
RUN echo ok \
  continued
