FROM busybox
WORKDIR a
WORKDIR b/c
ENV BASE=/srv NAME=app
WORKDIR $BASE/${NAME}
WORKDIR ../data
RUN pwd > /pwd
