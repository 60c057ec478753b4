FROM busybox
CMD   [  "a" ,"b"  ]  
ENTRYPOINT []
