FROM busybox
MAINTAINER sampan tests
ENV MYSQL_MAJOR=5.7 \
    MYSQL_VERSION=5.7.31
RUN mkdir -p /var/lib/mysql /var/run/mysqld \
    && chmod 777 /var/run/mysqld
VOLUME /var/lib/mysql
COPY docker-entrypoint.sh /usr/local/bin/
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 3306 33060
CMD ["mysqld"]
