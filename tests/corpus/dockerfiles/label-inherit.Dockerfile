FROM busybox AS first
LABEL a=1 b=1
LABEL a=2
FROM first
LABEL c=3
