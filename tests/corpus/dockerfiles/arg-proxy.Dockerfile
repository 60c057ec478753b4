FROM busybox
RUN echo "$HTTP_PROXY|$no_proxy" > /proxy
