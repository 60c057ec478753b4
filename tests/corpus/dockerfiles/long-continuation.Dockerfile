FROM busybox
RUN set -e; \
    echo line0; \
    echo line1; \
    echo line2; \
    echo line3; \
    echo line4; \
    echo line5; \
    echo line6; \
    echo line7; \
    echo line8; \
    echo line9; \
    echo line10; \
    echo line11; \
    echo line12; \
    echo line13; \
    echo line14; \
    echo line15; \
    echo line16; \
    echo line17; \
    echo line18; \
    echo line19; \
    echo line20; \
    echo line21; \
    echo line22; \
    echo line23; \
    echo line24; \
    echo line25; \
    echo line26; \
    echo line27; \
    echo line28; \
    echo line29; \
    true
