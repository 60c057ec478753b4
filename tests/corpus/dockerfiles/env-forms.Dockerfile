FROM busybox
ENV A=1 B="two words" C=three\ words
ENV LEGACY value with spaces
ENV D=$A E=${B}
ENV F=
ENV G="quoted \"inner\""
