FROM busybox
ADD ["file with spaces.txt", "/dst dir/"]
