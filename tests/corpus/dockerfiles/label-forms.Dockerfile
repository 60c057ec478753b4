FROM busybox
LABEL version="1.0" description="a test image"
LABEL "com.example.vendor"="ACME Incorporated"
LABEL multi.label1="value1" \
      multi.label2="value2" other="value3"
LABEL legacy value with spaces
