FROM busybox
RUN --network=none echo offline
RUN --network=host --security=insecure echo host
