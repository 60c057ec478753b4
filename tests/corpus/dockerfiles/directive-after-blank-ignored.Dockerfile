
# escape=`
FROM busybox
RUN echo ok \
  continued
