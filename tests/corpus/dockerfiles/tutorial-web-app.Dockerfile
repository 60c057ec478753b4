FROM busybox
LABEL org.opencontainers.image.title="hello docker"
WORKDIR /www
RUN mkdir -p /www && echo "hello docker" > /www/dockerfile
EXPOSE 8080
HEALTHCHECK --interval=30s CMD wget -q -O- http://127.0.0.1:8080/dockerfile || exit 1
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
