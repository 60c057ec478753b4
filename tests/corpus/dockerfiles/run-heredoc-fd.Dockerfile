FROM busybox
RUN cat 3<<X 4<<Y
three
X
four
Y
