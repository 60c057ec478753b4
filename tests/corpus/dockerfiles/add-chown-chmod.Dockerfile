FROM busybox
ADD --chown=1:2 --chmod=0750 tool.sh /opt/tool.sh
ADD --chown=daemon:daemon file.txt /opt/
ADD --chmod=600 dir/ /opt/dir/
